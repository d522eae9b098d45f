-- Rollups kept current by flows/rollup.py: 15-minute interval energy per counter point, hourly and
-- daily sums, and a per-point watermark.
--
-- interval_energy is written by the flow in both storage modes (it is computed in Python from the
-- counters by metrics/energy.py: interpolation at the boundaries, resets, estimated intervals).
-- energy_hourly and energy_daily have the same names and columns in both modes:
--   plain PostgreSQL: tables the flow maintains for the buckets whose intervals changed;
--   TimescaleDB: energy_hourly is a continuous aggregate over interval_energy (real-time, so
--   recent intervals show before the refresh policy materialises them) and energy_daily a view
--   summing it by the local day of the point's enterprise (a continuous aggregate cannot bucket
--   by a time zone that differs per enterprise).
-- Hourly buckets are UTC hours (equal to local hours in every whole-hour zone, Asia/Shanghai
-- included); daily buckets start at local midnight in the enterprise's time zone.

CREATE TABLE interval_energy (
    point_id      bigint NOT NULL REFERENCES point ON DELETE CASCADE,
    bucket_start  timestamptz NOT NULL,          -- interval start, UTC, aligned to 15 minutes
    energy_wh     bigint NOT NULL CHECK (energy_wh >= 0),
    estimated     boolean NOT NULL,              -- interpolated across a gap or only partly covered
    suspect       boolean NOT NULL DEFAULT false,-- a suspect-quality reading took part
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (point_id, bucket_start)
);

CREATE TABLE rollup_watermark (
    point_id         bigint PRIMARY KEY REFERENCES point ON DELETE CASCADE,
    last_reading_ts  timestamptz NOT NULL,      -- newest usable reading rolled up so far
    rolled_at        timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('interval_energy', 'bucket_start', chunk_time_interval => interval '30 days',
                                  migrate_data => true, if_not_exists => true);
        EXECUTE $sql$
            CREATE MATERIALIZED VIEW energy_hourly
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT point_id,
                   time_bucket(interval '1 hour', bucket_start) AS bucket_start,
                   sum(energy_wh)::bigint AS energy_wh,
                   count(*)::int AS intervals,
                   (count(*) FILTER (WHERE estimated))::int AS estimated_intervals,
                   (count(*) FILTER (WHERE suspect))::int AS suspect_intervals
            FROM interval_energy
            GROUP BY point_id, time_bucket(interval '1 hour', bucket_start)
            WITH NO DATA $sql$;
        PERFORM add_continuous_aggregate_policy('energy_hourly', start_offset => interval '3 days',
                                                end_offset => interval '15 minutes',
                                                schedule_interval => interval '5 minutes');
        -- readings older than 30 days are compressed, one segment per point
        EXECUTE $sql$ALTER TABLE reading SET (timescaledb.compress, timescaledb.compress_segmentby = 'point_id',
                                              timescaledb.compress_orderby = 'ts')$sql$;
        PERFORM add_compression_policy('reading', interval '30 days', if_not_exists => true);
    ELSE
        CREATE TABLE energy_hourly (
            point_id             bigint NOT NULL REFERENCES point ON DELETE CASCADE,
            bucket_start         timestamptz NOT NULL,
            energy_wh            bigint NOT NULL,
            intervals            int NOT NULL,
            estimated_intervals  int NOT NULL,
            suspect_intervals    int NOT NULL,
            PRIMARY KEY (point_id, bucket_start)
        );
    END IF;
END
$$;

-- Offered, not applied: raw readings are the evidence behind every published figure, so dropping
-- them is an operator's decision. TimescaleDB only: SELECT greengauge_reading_retention('3 years');
CREATE FUNCTION greengauge_reading_retention(keep interval) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RAISE EXCEPTION 'a retention policy needs TimescaleDB; on plain PostgreSQL delete old readings yourself';
    END IF;
    PERFORM remove_retention_policy('reading', if_exists => true);
    PERFORM add_retention_policy('reading', keep);
    RETURN format('readings older than %s will be dropped chunk by chunk', keep);
END
$$;

-- Daily sums by local calendar day of the point's enterprise (same columns in both modes).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        CREATE VIEW energy_daily AS
        SELECT h.point_id,
               date_trunc('day', h.bucket_start, e.timezone) AS bucket_start,
               (date_trunc('day', h.bucket_start, e.timezone) AT TIME ZONE e.timezone)::date AS day,
               sum(h.energy_wh)::bigint AS energy_wh,
               sum(h.intervals)::int AS intervals,
               sum(h.estimated_intervals)::int AS estimated_intervals,
               sum(h.suspect_intervals)::int AS suspect_intervals
        FROM energy_hourly h
        JOIN point p USING (point_id) JOIN device d USING (device_id) JOIN site s USING (site_id)
        JOIN enterprise e USING (enterprise_id)
        GROUP BY h.point_id, 2, 3;
    ELSE
        CREATE TABLE energy_daily (
            point_id             bigint NOT NULL REFERENCES point ON DELETE CASCADE,
            bucket_start         timestamptz NOT NULL,   -- local midnight of the enterprise, as UTC
            day                  date NOT NULL,          -- the local calendar day
            energy_wh            bigint NOT NULL,
            intervals            int NOT NULL,
            estimated_intervals  int NOT NULL,
            suspect_intervals    int NOT NULL,
            PRIMARY KEY (point_id, bucket_start)
        );
    END IF;
END
$$;
