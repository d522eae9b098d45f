-- TimescaleDB mode: when the extension can be created, readings become a hypertable.
-- On plain PostgreSQL this is a no-op and reading stays a table with the indexes of 0001.
-- Queries never depend on the mode (date_bin, not time_bucket).
DO $$
BEGIN
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
