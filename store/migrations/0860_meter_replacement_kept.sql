-- A recorded meter replacement is audited, never deleted (docs/accounting.md, "From meter counters to energy": replacements):
-- a person revokes it once, with a reason; what was recorded stays as it was. The database holds
-- to it, not only the commands: a DELETE is refused — unless the point itself is deleted (the
-- foreign key's cascade runs from a trigger, so pg_trigger_depth() is above 1 there) — and an
-- UPDATE may only revoke a live replacement.
CREATE FUNCTION meter_replacement_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF pg_trigger_depth() > 1 THEN
            RETURN OLD;  -- its point is being deleted
        END IF;
        RAISE EXCEPTION 'meter replacement % is never deleted: revoke it (greengauge meter revoke)', OLD.replacement_id;
    END IF;
    IF OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
       OR (NEW.replacement_id, NEW.point_id, NEW.ts, NEW.old_final_wh, NEW.new_initial_wh, NEW.reason, NEW.recorded_at,
           NEW.forced)
          IS DISTINCT FROM (OLD.replacement_id, OLD.point_id, OLD.ts, OLD.old_final_wh, OLD.new_initial_wh, OLD.reason,
                            OLD.recorded_at, OLD.forced) THEN
        RAISE EXCEPTION 'meter replacement % is changed only by revoking it, once', OLD.replacement_id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER meter_replacement_kept BEFORE UPDATE OR DELETE ON meter_replacement
    FOR EACH ROW EXECUTE FUNCTION meter_replacement_kept();
REVOKE ALL ON FUNCTION meter_replacement_kept() FROM PUBLIC;  -- a trigger's function needs no EXECUTE (tenancy: nothing of the application is executable by PUBLIC)
