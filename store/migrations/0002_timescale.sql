-- TimescaleDB mode: when the extension can be created, readings become a hypertable.
-- On plain PostgreSQL this is a no-op and reading stays a table with the indexes of 0001.
-- Queries never depend on the mode (date_bin, not time_bucket).
--
-- The extension is created only when it is installed AND in shared_preload_libraries: installed
-- but not preloaded (the usual state right after installing the package), CREATE EXTENSION raises
-- FATAL and closes the session, which no EXCEPTION block catches. store/migrate.py says which case
-- applied (timescale_status).
-- previous checksum: 48110c0fe67778c095a4cf4abab6e7e84c34cfdbaaae0c5b2dabb66ea174d1b9
DO $$
DECLARE
    preload text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        RAISE NOTICE 'timescaledb is not installed: readings stay a plain table';
        RETURN;
    END IF;
    BEGIN
        preload := current_setting('shared_preload_libraries');
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'cannot read shared_preload_libraries (%): readings stay a plain table', SQLERRM;
        RETURN;
    END;
    IF preload !~ '(^|[ ,])"?timescaledb"?($|[ ,])' THEN
        RAISE NOTICE 'timescaledb is installed but not in shared_preload_libraries: readings stay a plain table';
        RETURN;
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'timescaledb is not available (%): readings stay a plain table', SQLERRM;
        RETURN;
    END;
    PERFORM create_hypertable('reading', 'ts', chunk_time_interval => interval '7 days',
                              migrate_data => true, if_not_exists => true);
END
$$;
