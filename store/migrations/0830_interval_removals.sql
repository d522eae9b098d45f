-- What an eligibility decision read is fingerprinted (store.results.input_fingerprint) by the
-- newest change of its intervals: an insert or an update stamps interval_energy.computed_at, a
-- removal leaves no row to stamp. Each removed interval is recorded here instead (the rollup
-- removes the intervals a recomputed range no longer has; a person may DELETE by hand), so the
-- fingerprint no longer counts a year of intervals per point on every pass (44 ms an
-- enterprise-year, most of an hourly pass: docs/accounting.md "Eligibility fingerprint").
-- No foreign key: deleting a point cascades to its intervals, whose removal is recorded while
-- the point goes. A row-level trigger, not a transition table: TimescaleDB refuses transition
-- tables on hypertables; removals are rare, so one row each is cheap.
CREATE TABLE interval_energy_removed (
    point_id      bigint NOT NULL,
    bucket_start  timestamptz NOT NULL,
    removed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX interval_energy_removed_point ON interval_energy_removed (point_id, removed_at);

CREATE FUNCTION interval_energy_removed_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO interval_energy_removed (point_id, bucket_start) VALUES (OLD.point_id, OLD.bucket_start);
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION interval_energy_removed_log() FROM PUBLIC;  -- a trigger's function needs no EXECUTE

CREATE TRIGGER interval_energy_removed AFTER DELETE ON interval_energy
    FOR EACH ROW EXECUTE FUNCTION interval_energy_removed_log();

INSERT INTO tenancy_table VALUES ('interval_energy_removed', 'result') ON CONFLICT DO NOTHING;
