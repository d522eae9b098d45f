-- Collector health and findings, made robust (docs/collectors.md).

-- A device whose collector stopped (SIGTERM, or the process exiting on a fault) is 'stopped': not
-- being collected, rather than the 'ok' of its last poll.
ALTER TABLE device_health DROP CONSTRAINT device_health_status_check;
ALTER TABLE device_health ADD CONSTRAINT device_health_status_check CHECK (status IN ('ok', 'away', 'stopped'));
