-- Tenancy, defence in depth: row-level security on every base table where PostgreSQL and TimescaleDB
-- allow it, and the one result a writer moves (a meter replacement lowers the point's rollup watermark).
--
-- Readers hold no privilege on any base table (0500): they read the views of schema reader, which run
-- with the owner's rights, and the owner is not subject to its tables' policies. RLS here guards against
-- a mistake: were SELECT on a base table ever granted to a reader, it would still see no row, because
-- the only policy lets the collector and the flows through. It is not enabled on TimescaleDB
-- hypertables (no RLS with compression, chunks do not inherit policies: timescale/timescaledb #6827,
-- #6832, #7830) nor on continuous aggregates: there the reader views are the only protection, as
-- designed.

ALTER FUNCTION tenancy_refresh() RENAME TO tenancy_refresh_views;

CREATE FUNCTION tenancy_refresh() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    p      text := tenancy_prefix();
    rel    record;
    hyper  boolean;
BEGIN
    PERFORM tenancy_refresh_views();
    FOR rel IN
        SELECT c.oid, c.relname, c.relrowsecurity FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
        ORDER BY c.relname
    LOOP
        hyper := false;
        IF to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL THEN
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM _timescaledb_catalog.hypertable
                                    WHERE schema_name = ''public'' AND table_name = $1)'
                INTO hyper USING rel.relname;
        END IF;
        CONTINUE WHEN hyper;
        IF NOT rel.relrowsecurity THEN
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', rel.relname);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = rel.oid AND polname = 'tenancy_jobs') THEN
            EXECUTE format('CREATE POLICY tenancy_jobs ON public.%I TO %I, %I USING (true) WITH CHECK (true)',
                           rel.relname, p || 'collector', p || 'flows');
        END IF;
    END LOOP;
    -- store.events.record_replacement lowers the point's rollup watermark in the same transaction, so
    -- the next rollup recomputes from the swap: a writer may move the watermark of its own points
    IF to_regclass('reader.rollup_watermark') IS NOT NULL THEN
        EXECUTE format('GRANT UPDATE (last_reading_ts, rolled_at) ON reader.rollup_watermark TO %I', p || 'writer');
    END IF;
END
$fn$;
REVOKE EXECUTE ON FUNCTION tenancy_refresh() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy_refresh_views() FROM PUBLIC;

SELECT tenancy_refresh();
