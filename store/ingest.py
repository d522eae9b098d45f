"""Bulk ingest of readings: COPY into a staging table, then insert what is new.

Idempotent on (point, timestamp): a batch written twice, a retry, or a replay from the spool
leaves one row per (point, timestamp) and the first value stored. A batch is one transaction, so
a failure leaves nothing half-written.
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
_MERGE = """INSERT INTO reading (point_id, ts, value, quality)
            SELECT DISTINCT ON (point_id, ts) point_id, ts, value, quality FROM reading_stage
            ORDER BY point_id, ts
            ON CONFLICT (point_id, ts) DO NOTHING"""


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
            inserted = cur.rowcount
        return inserted

