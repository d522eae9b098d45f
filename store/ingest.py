"""Bulk ingest of readings: COPY into a staging table, then insert what is new.

Idempotent on (point, timestamp): a batch written twice, a retry, or a replay from the spool
leaves one row per (point, timestamp) and the first value stored. A batch is one transaction, so
a failure leaves nothing half-written.

Late data: the statement that stores the batch also marks, per point, the earliest new usable
reading older than the point's rollup watermark in ``rollup_dirty``, so the next rollup
recomputes from there whatever its age (docs/accounting.md "Late data"). One statement per
batch, no trigger, the same on plain PostgreSQL and TimescaleDB.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from model.readings import Reading

_STAGE = """CREATE TEMP TABLE IF NOT EXISTS reading_stage (
                point_id bigint, ts timestamptz, value double precision, quality smallint
            ) ON COMMIT DELETE ROWS"""
_COPY = "COPY reading_stage (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)"
_TYPES = ["int8", "timestamptz", "float8", "int2"]
# DISTINCT ON keeps the batch itself idempotent: two readings of one point and instant in one
# batch (a replay racing a live write) become one row.
# Only rows actually inserted can be late: a replayed duplicate changes nothing and marks nothing.
# Quality 2 and above (bad) never takes part in a rollup, so it marks nothing either (read from the
# staged batch: the collector's role may read a stored reading's key, not its quality or value).
_MERGE = """WITH ins AS (
                INSERT INTO reading (point_id, ts, value, quality)
                SELECT DISTINCT ON (point_id, ts) point_id, ts, value, quality FROM reading_stage
                ORDER BY point_id, ts
                ON CONFLICT (point_id, ts) DO NOTHING
                RETURNING point_id, ts),
            late AS (
                INSERT INTO rollup_dirty AS d (point_id, since)
                SELECT i.point_id, min(i.ts) FROM ins i JOIN rollup_watermark w USING (point_id)
                WHERE i.ts < w.last_reading_ts
                  AND EXISTS (SELECT 1 FROM reading_stage s WHERE s.point_id = i.point_id AND s.ts = i.ts
                              AND s.quality < 2)
                GROUP BY i.point_id
                ON CONFLICT (point_id) DO UPDATE
                    SET since = least(d.since, EXCLUDED.since), marked_at = clock_timestamp()
                RETURNING 1)
            SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM late)"""


def _rows(readings: Iterable[Reading]):
    for r in readings:
        yield (r.point_id, r.ts, r.value, int(r.quality))


def write_readings(conn: psycopg.Connection, readings: list[Reading]) -> int:
    """Write a batch; return how many rows were new."""
    if not readings:
        return 0
    with conn.transaction():
        conn.execute(_STAGE)
        with conn.cursor() as cur:
            with cur.copy(_COPY) as copy:
                copy.set_types(_TYPES)
                for row in _rows(readings):
                    copy.write_row(row)
            cur.execute(_MERGE)
            inserted, _late = cur.fetchone()
        return inserted

