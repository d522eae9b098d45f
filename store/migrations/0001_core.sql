-- Core model: park -> enterprise -> site -> device -> point, and raw readings.
-- Times are UTC timestamptz; calendar periods are computed in the enterprise's time zone.

CREATE TABLE park (
    park_id   bigserial PRIMARY KEY,
    code      text NOT NULL UNIQUE,
    name      text NOT NULL
);

CREATE TABLE enterprise (
    enterprise_id bigserial PRIMARY KEY,
    code          text NOT NULL UNIQUE,
    name          text NOT NULL,
    park_id       bigint REFERENCES park ON DELETE SET NULL,
    timezone      text NOT NULL DEFAULT 'Asia/Shanghai',
    industry      text
);

CREATE TABLE site (
    site_id       bigserial PRIMARY KEY,
    enterprise_id bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    code          text NOT NULL,
    name          text NOT NULL,
    UNIQUE (enterprise_id, code)
);

CREATE TABLE device (
    device_id        bigserial PRIMARY KEY,
    site_id          bigint NOT NULL REFERENCES site ON DELETE CASCADE,
    name             text NOT NULL,
    profile          text NOT NULL,
    transport        jsonb NOT NULL,           -- host, port, unit id, timeouts
    poll_interval_s  numeric NOT NULL CHECK (poll_interval_s > 0),
    UNIQUE (site_id, name)
);

CREATE TABLE point (
    point_id       bigserial PRIMARY KEY,
    device_id      bigint NOT NULL REFERENCES device ON DELETE CASCADE,
    name           text NOT NULL UNIQUE,
    quantity       text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('counter', 'gauge')),
    unit           text NOT NULL,
    role           text CHECK (role IN ('grid_import', 'grid_export', 'pv_generation',
                                        'storage_charge', 'storage_discharge', 'subproject')),
    subproject     text,
    rated_power_w  bigint CHECK (rated_power_w > 0),
    CHECK ((role = 'subproject') = (subproject IS NOT NULL)),
    CHECK (role IS NULL OR kind = 'counter'),
    UNIQUE (device_id, quantity)
);
CREATE INDEX point_role_idx ON point (role);

-- quality: 0 good, 1 suspect, 2 bad (model/readings.py). A bad reading may carry no value.
CREATE TABLE reading (
    point_id     bigint NOT NULL REFERENCES point ON DELETE CASCADE,
    ts           timestamptz NOT NULL,
    value        double precision,
    quality      smallint NOT NULL DEFAULT 0 CHECK (quality IN (0, 1, 2)),
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (point_id, ts),
    CHECK (value IS NOT NULL OR quality = 2)
);
CREATE INDEX reading_ts_idx ON reading (ts);
