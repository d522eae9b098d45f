-- Green-electricity ledger (rule R1: 2024-2 §三(一), 2025-5 §三(三)) and meter replacement events.
-- A certificate (绿证, GEC, 1 MWh each) serial counts once, ever: the exclusion constraint makes
-- two rows holding the same serial impossible, whatever enterprise, period or trade they name.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- A green-power trade (绿电交易): settled volume, counted in the local period holding settled_on.
CREATE TABLE green_trade (
    trade_id       bigserial PRIMARY KEY,
    enterprise_id  bigint NOT NULL REFERENCES enterprise ON DELETE RESTRICT,
    reference      text NOT NULL UNIQUE CHECK (reference <> ''),
    settled_on     date NOT NULL,
    settled_wh     bigint NOT NULL CHECK (settled_wh > 0),   -- settled MWh × 1 000 000, exact
    imported_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX green_trade_period_idx ON green_trade (enterprise_id, settled_on);

-- Certificates, one row per contiguous serial range (prefix + numeric tail first..last).
-- trade_id set: delivered with that trade, whose settled volume already counts it (never again).
-- trade_id null: retired for the enterprise on used_on, counted in the period holding used_on.
CREATE TABLE certificate (
    cert_id           bigserial PRIMARY KEY,
    enterprise_id     bigint NOT NULL REFERENCES enterprise ON DELETE RESTRICT,
    serial_prefix     text NOT NULL,
    serial_first      bigint NOT NULL CHECK (serial_first >= 0),
    serial_last       bigint NOT NULL,
    serial_digits     smallint NOT NULL CHECK (serial_digits BETWEEN 1 AND 18),
    production_month  date NOT NULL,
    used_on           date NOT NULL,
    trade_id          bigint REFERENCES green_trade ON DELETE RESTRICT,
    reference         text,
    imported_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT certificate_range_order CHECK (serial_last >= serial_first),
    CONSTRAINT certificate_month_start CHECK (production_month = date_trunc('month', production_month)::date),
    -- valid from its production month for 2 years
    CONSTRAINT certificate_validity CHECK (used_on >= production_month
                                           AND used_on < (production_month + interval '2 years')::date),
    CONSTRAINT certificate_serial_once EXCLUDE USING gist (
        serial_prefix WITH =, int8range(serial_first, serial_last, '[]') WITH &&)
);
CREATE INDEX certificate_period_idx ON certificate (enterprise_id, used_on);

-- Meter replacements a person recorded: energy is continuous across them.
CREATE TABLE meter_replacement (
    replacement_id  bigserial PRIMARY KEY,
    point_id        bigint NOT NULL REFERENCES point ON DELETE CASCADE,
    ts              timestamptz NOT NULL,
    old_final_wh    double precision NOT NULL CHECK (old_final_wh >= 0),
    new_initial_wh  double precision NOT NULL CHECK (new_initial_wh >= 0),
    reason          text NOT NULL CHECK (reason <> ''),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (point_id, ts)
);

-- A counter's wrap width in Wh when the device profile cannot tell it (e.g. imported history);
-- null: taken from the profile's counter_rollover_bits × the register's scale.
ALTER TABLE point ADD COLUMN IF NOT EXISTS counter_rollover_wh double precision
    CHECK (counter_rollover_wh > 0);
