-- Collector health and findings, made robust (docs/collectors.md).

-- A device whose collector stopped (SIGTERM, or the process exiting on a fault) is not being
-- collected: stopped_at says since when (NULL while a collector records it); status keeps what
-- was last seen ('ok'/'away').
ALTER TABLE device_health ADD COLUMN stopped_at timestamptz;

-- One findings table for the collector's findings and the data-quality findings (model/findings.py).
-- A finding is a kind, a subject (device, point, or the source the collector saw), times and data:
-- the values its text is made from. No sentence is stored: text is made where it is shown
-- (greengauge/findings_text.py; the views below render data for SQL readers).
--   origin 'collector': counted, one row per (kind, source): count occurrences from opened_at (first
--                       seen) to last_seen; closed_at stays NULL.
--   origin 'quality':   a state (opened_at, closed_at NULL while it lasts) or an event (start, end),
--                       at most one open per (kind, device, point), never the same start twice.
CREATE TABLE finding (
    finding_id   bigserial PRIMARY KEY,
    origin       text NOT NULL CHECK (origin IN ('collector', 'quality')),
    kind         text NOT NULL,                      -- model.findings.FindingKind
    device_id    bigint REFERENCES device ON DELETE CASCADE,
    point_id     bigint REFERENCES point ON DELETE CASCADE,
    source       text,                               -- collector: a topic, point or device name, a file
    opened_at    timestamptz NOT NULL,
    closed_at    timestamptz,
    last_seen    timestamptz NOT NULL,
    count        bigint NOT NULL DEFAULT 1 CHECK (count > 0),
    data         jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    detected_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (closed_at IS NULL OR closed_at >= opened_at),
    CHECK (origin = 'quality' OR source IS NOT NULL),
    CHECK (origin = 'collector' OR device_id IS NOT NULL)
);
CREATE UNIQUE INDEX finding_collector_once ON finding (kind, source) WHERE origin = 'collector';
CREATE UNIQUE INDEX finding_quality_once ON finding (kind, device_id, coalesce(point_id, 0), opened_at)
    WHERE origin = 'quality';
CREATE UNIQUE INDEX finding_quality_open ON finding (kind, device_id, coalesce(point_id, 0))
    WHERE origin = 'quality' AND closed_at IS NULL;
CREATE INDEX finding_open_idx ON finding (closed_at) WHERE closed_at IS NULL;
CREATE INDEX finding_last_seen_idx ON finding (last_seen);
CREATE INDEX finding_device_idx ON finding (device_id);

-- The rows of both old tables, with their ids (data-quality findings) and their sentence as data.
INSERT INTO finding (finding_id, origin, kind, device_id, point_id, opened_at, closed_at, last_seen, data,
                     detected_at)
SELECT finding_id, 'quality', kind, device_id, point_id, opened_at, closed_at, detected_at,
       jsonb_build_object('text', detail), detected_at
FROM dq_finding;
SELECT setval(pg_get_serial_sequence('finding', 'finding_id'),
              greatest((SELECT max(finding_id) FROM finding), 1), (SELECT count(*) > 0 FROM finding));
INSERT INTO finding (origin, kind, device_id, source, opened_at, last_seen, count, data)
SELECT 'collector', kind, device_id, source, first_seen, last_seen, count, jsonb_build_object('text', detail)
FROM collector_finding;
-- CASCADE: the reader views tenancy made over them (0500) go too; store/migrate.py runs
-- tenancy_refresh() after this upgrade, which makes them again over the views below and finding.
DROP TABLE collector_finding CASCADE;
DROP TABLE dq_finding CASCADE;

-- The old names and columns, for readers that still use them (dashboards, alerts). Their detail
-- is the English sentence of a row moved from the old tables, otherwise the data as one line
-- (kind: key value, …, keys in order). Built-in functions only: a reader of a view must be allowed
-- to execute every function it calls, and readers may execute none of the application's.
CREATE VIEW collector_finding AS
SELECT kind, source, device_id, opened_at AS first_seen, last_seen, count,
       coalesce(data->>'text', kind || ': ' || coalesce((SELECT string_agg(key || ' ' || value, ', ' ORDER BY key)
                                                         FROM jsonb_each_text(data)), '')) AS detail
FROM finding WHERE origin = 'collector';
CREATE VIEW dq_finding AS
SELECT finding_id, kind, device_id, point_id, opened_at, closed_at,
       coalesce(data->>'text', kind || ': ' || coalesce((SELECT string_agg(key || ' ' || value, ', ' ORDER BY key)
                                                         FROM jsonb_each_text(data)), '')) AS detail,
       detected_at
FROM finding WHERE origin = 'quality';

-- Writers of the old names keep working too (an operator's SQL, fixtures): an insert into a view
-- becomes a finding.
CREATE FUNCTION collector_finding_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO finding AS f (origin, kind, source, device_id, opened_at, last_seen, count, data)
    VALUES ('collector', NEW.kind, NEW.source, NEW.device_id, NEW.first_seen, NEW.last_seen, NEW.count,
            jsonb_build_object('text', NEW.detail))
    ON CONFLICT (kind, source) WHERE origin = 'collector' DO UPDATE SET
        last_seen = greatest(f.last_seen, EXCLUDED.last_seen), count = f.count + EXCLUDED.count,
        data = EXCLUDED.data, device_id = coalesce(EXCLUDED.device_id, f.device_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER collector_finding_insert INSTEAD OF INSERT ON collector_finding
    FOR EACH ROW EXECUTE FUNCTION collector_finding_insert();

CREATE FUNCTION dq_finding_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO finding (origin, kind, device_id, point_id, opened_at, closed_at, last_seen, data, detected_at)
    VALUES ('quality', NEW.kind, NEW.device_id, NEW.point_id, NEW.opened_at, NEW.closed_at,
            coalesce(NEW.detected_at, now()), jsonb_build_object('text', NEW.detail), coalesce(NEW.detected_at, now()))
    RETURNING finding_id INTO NEW.finding_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER dq_finding_insert INSTEAD OF INSERT ON dq_finding
    FOR EACH ROW EXECUTE FUNCTION dq_finding_insert();
-- (a trigger function's EXECUTE is checked when the trigger is made, not when it fires)
REVOKE EXECUTE ON FUNCTION collector_finding_insert() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION dq_finding_insert() FROM PUBLIC;

-- Tenancy (0500): finding is a result table (the flows write it) that the collector also writes,
-- with exactly the columns store/health.py add_findings needs, and the collector marks its devices
-- stopped (device_health.stopped_at).
DO $$
DECLARE c text;
BEGIN
    IF to_regclass('public.tenancy_table') IS NULL THEN
        RETURN;  -- no tenancy in this database
    END IF;
    INSERT INTO tenancy_table VALUES ('finding', 'result') ON CONFLICT DO NOTHING;
    c := tenancy_prefix() || 'collector';
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = c) THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT INSERT (origin, kind, source, device_id, opened_at, last_seen, count, data) '
                   'ON finding TO %I', c);
    EXECUTE format('GRANT SELECT (origin, kind, source, device_id, last_seen, count, data) ON finding TO %I', c);
    EXECUTE format('GRANT UPDATE (last_seen, count, data, device_id) ON finding TO %I', c);
    EXECUTE format('GRANT USAGE ON SEQUENCE finding_finding_id_seq TO %I', c);
    EXECUTE format('GRANT INSERT (stopped_at), SELECT (stopped_at), UPDATE (stopped_at) ON device_health TO %I', c);
END
$$;
