-- The one path's tables (0410) under tenancy (0500): results the flows write (job role grants) and
-- readers see in their own scope. metrics_prefix and metrics_watermark are the metrics flow's
-- bookkeeping, keyed by enterprise like its results.
INSERT INTO tenancy_table VALUES
    ('counter_finding', 'result'), ('metrics_watermark', 'result'), ('metrics_prefix', 'result')
ON CONFLICT (relname) DO NOTHING;
