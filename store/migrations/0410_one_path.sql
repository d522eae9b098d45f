-- One path from readings to every figure (docs/accounting.md "One path").
--
-- counter_finding: what the rollup found turning a counter point's readings into interval energy
-- (counter_rollover, meter_replacement, counter_outlier, counter_drop_unexplained,
-- counter_drop_provisional, spike, ...), for the range it recomputed. The figures' evidence reads
-- them from here instead of re-reading raw readings.
CREATE TABLE counter_finding (
    point_id     bigint NOT NULL REFERENCES point ON DELETE CASCADE,
    ts           timestamptz NOT NULL,
    kind         text NOT NULL,
    detail       text NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX counter_finding_point_ts ON counter_finding (point_id, ts);

-- The stored R1 result carries what the report prints: intervals measured for the site (every
-- balance point measured), the exact share, the period end it was read to and the inputs digest.
ALTER TABLE green_share_ytd
    ADD COLUMN measured_intervals  int,
    ADD COLUMN expected_intervals  int,
    ADD COLUMN share_exact         text,            -- 'num/den', the exact share; NULL without consumption
    ADD COLUMN completeness_exact  text,            -- 'num/den'
    ADD COLUMN inputs_sha256       text;

ALTER TABLE daily_balance
    ADD COLUMN measured_intervals  int;             -- intervals every balance point measured

COMMENT ON COLUMN green_share_ytd.estimated_intervals IS
    'balance intervals not measured for the site: estimated, or a balance point has no measurement';

-- Which intervals changed since the metrics flow last looked (any age: a year-old import too):
-- the flow keeps the newest interval_energy.computed_at it has taken in, per enterprise, and finds
-- the local days and years to recompute through this index.
CREATE INDEX interval_energy_changed ON interval_energy (point_id, computed_at);
CREATE TABLE metrics_watermark (
    enterprise_id  bigint PRIMARY KEY REFERENCES enterprise ON DELETE CASCADE,
    seen_through   timestamptz NOT NULL,   -- newest interval_energy.computed_at taken in
    run_at         timestamptz NOT NULL DEFAULT now()
);

-- The year to date's additive parts up to the last local midnight (metrics.figures.Segment), so the
-- next metrics run reads only the days after it; dropped (recomputed in full) when an earlier day
-- changed. Private to the metrics flow: dashboards read green_share_ytd.
CREATE TABLE metrics_prefix (
    enterprise_id  bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    year           int NOT NULL,
    through        timestamptz NOT NULL,
    state          jsonb NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, year)
);
