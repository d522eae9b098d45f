-- Counters to interval energy (docs/accounting.md "From meter counters to energy").
--
-- rollup_dirty: a reading stored older than its point's rollup watermark (an import of history, a
-- gateway's backlog, a spool replayed after a long outage, a meter replacement recorded or
-- revoked late) marks the point here with the earliest such time; the next rollup recomputes the
-- point from there and deletes the mark in the same transaction. Written by store/ingest.py in
-- the statement that stores the batch (no trigger: TimescaleDB hypertables refuse triggers with
-- transition tables), so it works the same on plain PostgreSQL and TimescaleDB.
CREATE TABLE rollup_dirty (
    point_id   bigint PRIMARY KEY REFERENCES point ON DELETE CASCADE,
    since      timestamptz NOT NULL,                         -- earliest late reading (or event) time
    marked_at  timestamptz NOT NULL DEFAULT clock_timestamp() -- moves on every new mark
);

-- A recorded replacement is never deleted: a person revokes it, with a reason.
ALTER TABLE meter_replacement ADD COLUMN revoked_at timestamptz,
                              ADD COLUMN revoked_reason text,
                              ADD CONSTRAINT meter_replacement_revoked_reason
                                  CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)
                                         AND (revoked_reason IS NULL OR revoked_reason <> ''));

-- The interval readings of a range are expected at, stated on import (`import readings
-- --resolution 1h`); elsewhere the device's poll_interval_s (MQTT: interval_s) applies.
-- Readings no further apart than this are measured time, not estimated.
CREATE TABLE reading_resolution (
    point_id    bigint NOT NULL REFERENCES point ON DELETE CASCADE,
    since       timestamptz NOT NULL,
    until       timestamptz NOT NULL,                        -- inclusive: the range's last reading
    interval_s  integer NOT NULL CHECK (interval_s > 0),
    source      text NOT NULL,                               -- e.g. the imported file's name
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CHECK (until >= since)
);
CREATE INDEX reading_resolution_point_idx ON reading_resolution (point_id, since);

-- A meter behind current/voltage transformers reports secondary values that the collector
-- multiplies by these ratios (model/profile.py ratio_factor), so its stored counter wraps at
-- 2**bits × scale × ct × pt, not 2**bits × scale. Kept from the site file by `site apply`.
ALTER TABLE device ADD COLUMN ct_ratio numeric NOT NULL DEFAULT 1 CHECK (ct_ratio > 0),
                   ADD COLUMN pt_ratio numeric NOT NULL DEFAULT 1 CHECK (pt_ratio > 0);

-- A replacement whose figures the readings around the swap make impossible is refused unless a
-- person forces it; the forced ones say so. Only one live (unrevoked) replacement per instant.
ALTER TABLE meter_replacement ADD COLUMN forced boolean NOT NULL DEFAULT false;
ALTER TABLE meter_replacement DROP CONSTRAINT meter_replacement_point_id_ts_key;
CREATE UNIQUE INDEX meter_replacement_live_idx ON meter_replacement (point_id, ts) WHERE revoked_at IS NULL;
