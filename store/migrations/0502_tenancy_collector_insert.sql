-- The collector's INSERT on reading becomes table-level (0500 granted the four columns it writes).
-- On TimescaleDB an insert that needs a new chunk is checked for INSERT on the hypertable itself
-- (timescale/timescaledb #2416, "Insert privileges required on … to create chunks"), which a column
-- grant does not give; the only column it adds, received_at, is the arrival time the collector
-- would otherwise leave to its default. Nothing else changes: no SELECT of values, no UPDATE/DELETE.
DO $$
BEGIN
    EXECUTE format('GRANT INSERT ON reading TO %I', tenancy_prefix() || 'collector');
END
$$;
