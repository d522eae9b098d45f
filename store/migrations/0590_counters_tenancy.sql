-- Tenancy for the tables of 0450 (counters): who may mark a point for the rollup, and read or clear
-- the marks. store/ingest.py marks late readings in the statement that stores them, so the
-- collector reads the watermark and upserts the mark (columns only, never a value); a writer who
-- records or revokes a meter replacement marks its own points through reader.rollup_dirty; the
-- flows' rollup deletes the marks it recomputed. reading_resolution is entered by the importer.
INSERT INTO tenancy_table VALUES ('rollup_dirty', 'entry'), ('reading_resolution', 'entry')
ON CONFLICT (relname) DO NOTHING;

DO $$
DECLARE c text := tenancy_prefix() || 'collector';
        f text := tenancy_prefix() || 'flows';
BEGIN
    EXECUTE format('GRANT SELECT (point_id, last_reading_ts) ON rollup_watermark TO %I', c);
    EXECUTE format('GRANT INSERT (point_id, since), SELECT (point_id, since), UPDATE (since, marked_at) '
                   'ON rollup_dirty TO %I', c);
    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON rollup_dirty TO %I', f);
END
$$;

SELECT tenancy_refresh();
