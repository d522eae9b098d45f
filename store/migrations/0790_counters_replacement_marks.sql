-- A recorded meter replacement, and its revocation, mark the point for the next rollup from the
-- swap on (rollup_dirty, 0450), instead of moving the watermark back (0600's trigger did, as
-- store.rollups.lower_watermark does): the watermark stays the newest reading rolled up, so late
-- readings are still recognised as late. In the database, as 0600 set out, so that a tenant writer
-- (the API's data entry) inserting through its scoped view gets the same effect as the owner's
-- command line. A trigger on meter_replacement, a plain table (TimescaleDB's limits on triggers
-- concern hypertables).
CREATE OR REPLACE FUNCTION meter_replacement_lowers_watermark() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.revoked_at IS NOT DISTINCT FROM OLD.revoked_at THEN
        RETURN NEW;
    END IF;
    INSERT INTO rollup_dirty AS d (point_id, since)
    SELECT point_id, NEW.ts FROM rollup_watermark WHERE point_id = NEW.point_id
    ON CONFLICT (point_id) DO UPDATE SET since = least(d.since, EXCLUDED.since), marked_at = clock_timestamp();
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION meter_replacement_lowers_watermark() FROM PUBLIC;
DROP TRIGGER meter_replacement_lowers_watermark ON meter_replacement;
CREATE TRIGGER meter_replacement_marks_dirty AFTER INSERT OR UPDATE OF revoked_at ON meter_replacement
    FOR EACH ROW EXECUTE FUNCTION meter_replacement_lowers_watermark();
