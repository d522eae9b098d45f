-- Collectors: MQTT sources as devices, per-device health, and the collector's data-quality findings.

-- An MQTT source (a gateway or meter that publishes) is a device without a profile; its transport
-- is {"kind": "mqtt", "broker": "host:port"} and its poll_interval_s is the interval it is expected
-- to publish at (so stale-device, gap and completeness findings treat it like a polled device).
ALTER TABLE device ALTER COLUMN profile DROP NOT NULL;
ALTER TABLE device ADD CONSTRAINT device_profile_unless_mqtt
    CHECK (profile IS NOT NULL OR transport->>'kind' = 'mqtt');

-- One row per device, upserted by the running collector (collectors/health.py).
CREATE TABLE device_health (
    device_id             bigint PRIMARY KEY REFERENCES device ON DELETE CASCADE,
    status                text NOT NULL CHECK (status IN ('ok', 'away')),
    since                 timestamptz NOT NULL,      -- when the status last changed
    last_attempt          timestamptz NOT NULL,
    last_success          timestamptz,
    consecutive_failures  integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    latency_ms            double precision,          -- of the last successful poll (Modbus)
    last_error            text,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Findings the collector reports instead of raising: unknown_topic, malformed_payload,
-- wrong_type, missing_field, future_timestamp, counter_spike, device_error. One row per kind and
-- source (a topic or a device name), counted, so a chattering source cannot flood the table.
CREATE TABLE collector_finding (
    kind        text NOT NULL,
    source      text NOT NULL,
    device_id   bigint REFERENCES device ON DELETE CASCADE,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    count       bigint NOT NULL CHECK (count > 0),
    detail      text NOT NULL,
    PRIMARY KEY (kind, source)
);
CREATE INDEX collector_finding_last_seen_idx ON collector_finding (last_seen);
