-- Tenancy (issue 11 §1): roles by job, and reader roles that see one enterprise, one park or the
-- bureau's every enterprise, enforced by PostgreSQL. docs/tenancy.md says what each role can do.
--
-- Design, safe on TimescaleDB as on plain PostgreSQL: readers never touch a base table. They read
-- schema `reader`, one security-barrier view per table with the same name and columns, rows limited
-- to the enterprises the caller's role is scoped to. Row-level security cannot do this job on
-- TimescaleDB (no RLS with compression or continuous aggregates; chunks do not inherit a hypertable's
-- policies: timescale/timescaledb #6827, #6832, #7830); views owned by the migrating user read
-- hypertables, chunks and continuous aggregates with the owner's rights, so the filter is the same.
--
-- Roles are cluster-wide, so every name starts with P = 'gg_' || 8 hex of md5(current_database()) || '_':
--   P||reader     NOLOGIN group of every reader login: USAGE on schema reader, SELECT on its views
--   P||writer     NOLOGIN group of data-entry logins: INSERT/UPDATE through the entry views of reader
--   P||collector  NOLOGIN: insert readings, collector findings and device health (least columns)
--   P||flows      NOLOGIN: read every table, write the result tables
--   the migrating user owns everything (no role of its own).
-- Scope is role membership, decided by the database: tenant_scope names the login role of each
-- reader and what it sees; a view shows a row when pg_has_role(current_user, <that login>, 'USAGE').

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
        RAISE EXCEPTION 'tenancy: the migrating user % needs CREATEROLE to create the job roles '
                        '(ALTER ROLE % CREATEROLE as a superuser, then run greengauge db upgrade again)',
                        current_user, current_user;
    END IF;
END
$$;

CREATE FUNCTION tenancy_prefix() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT 'gg_' || left(md5(current_database()), 8) || '_' $$;

-- the job roles (idempotent: a role left by an earlier database of the same name is reused; it sees
-- nothing here until tenant_scope of this database names it)
DO $$
DECLARE
    p text := tenancy_prefix();
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['reader', 'writer', 'collector', 'flows'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p || r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', p || r);
        END IF;
    END LOOP;
    -- nothing by default: not PUBLIC's CONNECT/TEMP on this database (a reader of another database of
    -- the cluster cannot connect here; no role can make temporary functions), not schema public
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I, %I, %I, %I', current_database(),
                   p || 'reader', p || 'writer', p || 'collector', p || 'flows');
    -- the collector's COPY stages into a temporary table (store/ingest.py), so do the flows' rollups
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I, %I', current_database(), p || 'collector', p || 'flows');
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I, %I', p || 'collector', p || 'flows');
END
$$;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

CREATE SCHEMA IF NOT EXISTS reader;
REVOKE ALL ON SCHEMA reader FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA reader REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA reader TO %I, %I', tenancy_prefix() || 'reader', tenancy_prefix() || 'writer');
END
$$;

-- Who sees what: one row per reader login role (store/tenancy.py add_reader writes it).
CREATE TABLE tenant_scope (
    role_name      name PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('enterprise', 'park', 'bureau')),
    enterprise_id  bigint REFERENCES enterprise ON DELETE CASCADE,
    park_id        bigint REFERENCES park ON DELETE CASCADE,
    can_write      boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'enterprise') = (enterprise_id IS NOT NULL)),
    CHECK ((kind = 'park') = (park_id IS NOT NULL)),
    CHECK (NOT (can_write AND kind = 'bureau'))        -- the bureau reads, never enters
);

-- How each table of schema public is treated by tenancy_refresh(). A table not listed is 'raw':
-- readers see it through its view (scoped by its key column), the flows read it.
--   result     flows read and write it; readers see it through its view
--   collector  the collector inserts (column grants in tenancy_refresh); readers see it
--   entry      data entry: writers insert/update through the view, in their own scope
--   shared     reference data every reader sees whole (no tenant key)
--   private    no view, no job role (bookkeeping)
CREATE TABLE tenancy_table (
    relname  name PRIMARY KEY,
    class    text NOT NULL CHECK (class IN ('result', 'collector', 'entry', 'shared', 'private'))
);
INSERT INTO tenancy_table VALUES
    ('interval_energy', 'result'), ('rollup_watermark', 'result'), ('energy_hourly', 'result'),
    ('energy_daily', 'result'), ('daily_balance', 'result'), ('green_share_ytd', 'result'),
    ('green_share_projection', 'result'), ('carbon_ytd', 'result'), ('eligibility_decision', 'result'),
    ('eligibility_input', 'result'), ('dq_finding', 'result'),
    ('reading', 'collector'), ('collector_finding', 'collector'), ('device_health', 'collector'),
    ('green_trade', 'entry'), ('certificate', 'entry'), ('enterprise_fact', 'entry'), ('production', 'entry'),
    ('meter_replacement', 'entry'), ('pv_project', 'entry'),
    ('product_reference', 'shared'),
    ('schema_migration', 'private'), ('tenant_scope', 'private'), ('tenancy_table', 'private');

-- The scope of the current role. current_user, not session_user: SET ROLE (and the API's
-- SET LOCAL ROLE) moves current_user to a role the session is a member of, whose memberships are a
-- subset, so it narrows and never widens. 'USAGE' (membership with inheritance), not 'MEMBER': the
-- API's NOINHERIT service login is a member of every tenant login yet sees nothing until SET ROLE.
-- These views are the owner's only: readers reach them through the views of schema reader.
CREATE VIEW tenancy_bureau AS
SELECT 1 AS bureau FROM tenant_scope t JOIN pg_catalog.pg_roles r ON r.rolname = t.role_name
WHERE t.kind = 'bureau' AND pg_catalog.pg_has_role(current_user, r.oid, 'USAGE');

CREATE VIEW tenancy_enterprise AS
SELECT e.enterprise_id FROM enterprise e
WHERE EXISTS (SELECT 1 FROM tenant_scope t JOIN pg_catalog.pg_roles r ON r.rolname = t.role_name
              WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')
                AND (t.kind = 'bureau' OR t.enterprise_id = e.enterprise_id OR t.park_id = e.park_id));

CREATE VIEW tenancy_park AS
SELECT p.park_id FROM park p
WHERE EXISTS (SELECT 1 FROM tenant_scope t JOIN pg_catalog.pg_roles r ON r.rolname = t.role_name
              WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')
                AND (t.kind = 'bureau' OR t.park_id = p.park_id))
   OR p.park_id IN (SELECT e.park_id FROM enterprise e JOIN tenancy_enterprise v USING (enterprise_id));

CREATE VIEW tenancy_site AS
SELECT s.site_id FROM site s JOIN tenancy_enterprise v USING (enterprise_id);

CREATE VIEW tenancy_device AS
SELECT d.device_id FROM device d JOIN site s USING (site_id) JOIN tenancy_enterprise v USING (enterprise_id);

CREATE VIEW tenancy_point AS
SELECT p.point_id FROM point p JOIN device d USING (device_id) JOIN site s USING (site_id)
JOIN tenancy_enterprise v USING (enterprise_id);

-- (Re)build the views of schema reader and the job roles' grants from the tables of schema public.
-- Idempotent; store/migrate.py runs it after every upgrade that applied a migration, so a table added
-- later gets its view by the same rule: scoped by its first column among enterprise_id, park_id,
-- site_id, device_id, point_id (a NULL key: bureau only); its class from tenancy_table. A table with
-- no key that is not 'shared' gets no view (readers cannot see it at all).
CREATE FUNCTION tenancy_refresh() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    p       text := tenancy_prefix();
    rel     record;
    keycol  text;
    scope   text;
    cols    text;
    filter  text;
    body    text;
    cls     text;
    nullable boolean;
    seq     text;
BEGIN
    FOR rel IN
        SELECT c.oid, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
          AND c.relname NOT LIKE 'tenancy\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')  -- extensions' own
        ORDER BY c.relname
    LOOP
        cls := coalesce((SELECT t.class FROM tenancy_table t WHERE t.relname = rel.relname), 'raw');
        IF cls = 'private' THEN
            CONTINUE;
        END IF;
        SELECT a.attname, NOT a.attnotnull INTO keycol, nullable
        FROM pg_attribute a
        WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attname IN ('enterprise_id', 'park_id', 'site_id', 'device_id', 'point_id')
        ORDER BY array_position(ARRAY['enterprise_id', 'park_id', 'site_id', 'device_id', 'point_id']::name[], a.attname)
        LIMIT 1;
        IF keycol IS NULL AND cls <> 'shared' THEN
            RAISE NOTICE 'tenancy: table % has no tenant key column and is not shared: no reader view', rel.relname;
            CONTINUE;
        END IF;
        SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY a.attnum) INTO cols
        FROM pg_attribute a WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped;
        IF cls = 'shared' THEN
            filter := 'true';
        ELSE
            scope := 'tenancy_' || replace(keycol, '_id', '');
            filter := format('t.%I IN (SELECT v.%I FROM public.%I v)', keycol, keycol, scope);
            IF nullable THEN  -- a row tied to no tenant (e.g. a finding about an unknown MQTT topic)
                filter := filter || format(' OR (t.%I IS NULL AND EXISTS (SELECT 1 FROM public.tenancy_bureau))', keycol);
            END IF;
        END IF;
        body := format('SELECT %s FROM public.%I t WHERE %s', cols, rel.relname, filter);
        BEGIN
            EXECUTE format('CREATE OR REPLACE VIEW reader.%I WITH (security_barrier = true%s) AS %s',
                           rel.relname, CASE WHEN cls = 'entry' THEN ', check_option = local' ELSE '' END, body);
        EXCEPTION WHEN invalid_table_definition OR feature_not_supported OR duplicate_column THEN
            -- a column dropped or renamed in the base table: CREATE OR REPLACE cannot follow
            EXECUTE format('DROP VIEW reader.%I', rel.relname);
            EXECUTE format('CREATE VIEW reader.%I WITH (security_barrier = true%s) AS %s',
                           rel.relname, CASE WHEN cls = 'entry' THEN ', check_option = local' ELSE '' END, body);
        END;
        EXECUTE format('REVOKE ALL ON reader.%I FROM PUBLIC', rel.relname);
        EXECUTE format('GRANT SELECT ON reader.%I TO %I', rel.relname, p || 'reader');
        IF cls = 'entry' THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE ON reader.%I TO %I', rel.relname, p || 'writer');
            FOR seq IN SELECT pg_get_serial_sequence(format('public.%I', rel.relname), a.attname)
                       FROM pg_attribute a WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
                         AND pg_get_serial_sequence(format('public.%I', rel.relname), a.attname) IS NOT NULL
            LOOP
                EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', seq, p || 'writer');
            END LOOP;
        END IF;
        -- the flows read every table and write the results
        EXECUTE format('GRANT SELECT ON public.%I TO %I', rel.relname, p || 'flows');
        IF cls = 'result' THEN
            EXECUTE format('GRANT INSERT, UPDATE, DELETE ON public.%I TO %I', rel.relname, p || 'flows');
            FOR seq IN SELECT pg_get_serial_sequence(format('public.%I', rel.relname), a.attname)
                       FROM pg_attribute a WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
                         AND pg_get_serial_sequence(format('public.%I', rel.relname), a.attname) IS NOT NULL
            LOOP
                EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', seq, p || 'flows');
            END LOOP;
        END IF;
    END LOOP;
END
$fn$;
REVOKE EXECUTE ON FUNCTION tenancy_refresh() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy_prefix() FROM PUBLIC;

-- The collector: exactly what store/ingest.py, store/health.py (upsert_health, add_findings,
-- device_ids) need. INSERT … ON CONFLICT DO UPDATE needs UPDATE on the columns it sets and SELECT on
-- every column it reads, EXCLUDED.* included: so SELECT on the columns it writes (never a reading's value).
DO $$
DECLARE c text := tenancy_prefix() || 'collector';
BEGIN
    EXECUTE format('GRANT INSERT (point_id, ts, value, quality) ON reading TO %I', c);
    EXECUTE format('GRANT SELECT (point_id, ts) ON reading TO %I', c);
    EXECUTE format('GRANT INSERT (device_id, status, since, last_attempt, last_success, consecutive_failures, '
                   'latency_ms, last_error, updated_at) ON device_health TO %I', c);
    EXECUTE format('GRANT SELECT (device_id, status, since, last_attempt, last_success, consecutive_failures, '
                   'latency_ms, last_error, updated_at) ON device_health TO %I', c);
    EXECUTE format('GRANT UPDATE (status, since, last_attempt, last_success, consecutive_failures, latency_ms, '
                   'last_error, updated_at) ON device_health TO %I', c);
    EXECUTE format('GRANT INSERT (kind, source, device_id, first_seen, last_seen, count, detail) '
                   'ON collector_finding TO %I', c);
    EXECUTE format('GRANT SELECT (kind, source, device_id, last_seen, count, detail) ON collector_finding TO %I', c);
    EXECUTE format('GRANT UPDATE (last_seen, count, detail, device_id) ON collector_finding TO %I', c);
    -- device names to ids for its health rows (store.health.device_ids): names and codes, no data
    EXECUTE format('GRANT SELECT (device_id, site_id, name) ON device TO %I', c);
    EXECUTE format('GRANT SELECT (site_id, enterprise_id, code) ON site TO %I', c);
    EXECUTE format('GRANT SELECT (enterprise_id, code) ON enterprise TO %I', c);
END
$$;

SELECT tenancy_refresh();
