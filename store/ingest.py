"""Bulk ingest of readings: COPY straight into ``reading``, or through a staging table when a row is stored already.

Idempotent on (point, timestamp): a batch written twice, a retry, or a replay from the spool
leaves one row per (point, timestamp) and the first value stored. A batch is one transaction, so
a failure leaves nothing half-written.

Two ways, one result. A batch is first copied straight into ``reading`` (the common case: live
readings, all new): as cheap as a bare COPY. When a row of it is stored already (or appears twice in
it), that COPY fails as a whole (a unique violation) and is rolled back; the batch then takes the
merge: COPY into a staging table, ``INSERT … SELECT DISTINCT ON … ON CONFLICT DO NOTHING``. After a
conflict, the next :data:`MERGE_AFTER_CONFLICT` batches on that connection take the merge at once
(a spool replay or a re-import comes in runs of duplicates). A role that may not COPY into
``reading`` (row-level security: the tenancy collector login, docs/tenancy.md) copies into the
staging table and inserts from it with a plain ``INSERT`` instead (the merge's cost without its
sort, ``DISTINCT ON`` and conflict checks), after one refused COPY per connection; a stored row
sends that batch through the merge the same way.

Late data: per point, the earliest new usable reading older than the point's rollup watermark is
marked in ``rollup_dirty``, in the transaction that stores the batch, so the next rollup recomputes
from there whatever its age (docs/accounting.md "Late data"). The merge does it in its one statement;
the straight COPY asks which watermarks lie after the batch's earliest timestamp (none, for live
readings) and marks those points only. No trigger, the same on plain PostgreSQL and TimescaleDB.

Rows are ``(point_id, ts, value, quality)``: a :class:`model.readings.Reading` is one (a named tuple
of those fields, its quality an ``int``), so readings are copied as they are, with no row built per
reading.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter

import psycopg
from psycopg import errors

from model.readings import Reading

_STAGE = """CREATE TEMP TABLE IF NOT EXISTS reading_stage (
                point_id bigint, ts timestamptz, value double precision, quality smallint
            ) ON COMMIT DELETE ROWS"""
_COPY = "COPY reading_stage (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)"
_COPY_DIRECT = "COPY reading (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)"
_INSERT_STAGED = "INSERT INTO reading (point_id, ts, value, quality) SELECT point_id, ts, value, quality FROM reading_stage"
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
# the straight COPY inserted every row: the points whose watermark is after the batch's earliest
# timestamp are the only ones that can have a late reading in it
_WATERMARKS_AFTER = "SELECT point_id, last_reading_ts FROM rollup_watermark WHERE last_reading_ts > %s"
_MARK = """INSERT INTO rollup_dirty AS d (point_id, since)
           SELECT * FROM unnest(%s::bigint[], %s::timestamptz[])
           ON CONFLICT (point_id) DO UPDATE
               SET since = least(d.since, EXCLUDED.since), marked_at = clock_timestamp()"""

#: batches that take the merge at once after one met a stored row, on the same connection
MERGE_AFTER_CONFLICT = 20
_merge_next: weakref.WeakKeyDictionary[psycopg.Connection, int] = weakref.WeakKeyDictionary()
_copy_refused: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()  # (row-level security)
_ts = itemgetter(1)


def write_readings(conn: psycopg.Connection, readings: Sequence[Reading]) -> int:
    """Write a batch; return how many rows were new."""
    return write_rows(conn, readings)


def write_rows(conn: psycopg.Connection, rows: Sequence[tuple[int, datetime, float | None, int]]) -> int:
    """Write a batch of ``(point_id, ts, value, quality)`` rows (readings are such rows); return how
    many were new."""
    if not rows:
        return 0
    merge_next = _merge_next.get(conn, 0)
    if merge_next:
        _merge_next[conn] = merge_next - 1
    else:
        staged = conn in _copy_refused
        try:
            with conn.transaction():
                with conn.cursor() as cur:
                    if staged:  # COPY into reading refused: COPY into the stage, a plain INSERT from it
                        cur.execute(_STAGE)
                        with cur.copy(_COPY) as copy:
                            _copy_all(copy, rows)
                        cur.execute(_INSERT_STAGED)
                    else:
                        with cur.copy(_COPY_DIRECT) as copy:
                            _copy_all(copy, rows)
                    _mark_late(cur, rows)
            return len(rows)
        except (errors.UniqueViolation, errors.DeadlockDetected):
            # a row stored already, or twice in the batch (or a concurrent writer storing the same
            # rows): rolled back whole; the merge below stores what is new
            _merge_next[conn] = MERGE_AFTER_CONFLICT
        except errors.FeatureNotSupported:
            # COPY into reading refused for this role (row-level security: a tenancy collector
            # login, docs/tenancy.md) or this chunk (compressed, TimescaleDB)
            if staged:
                _merge_next[conn] = sys.maxsize  # (not expected: an INSERT is what the hint asks for)
            else:
                _copy_refused.add(conn)
                return write_rows(conn, rows)
    with conn.transaction():
        conn.execute(_STAGE)
        with conn.cursor() as cur:
            with cur.copy(_COPY) as copy:
                _copy_all(copy, rows)
            cur.execute(_MERGE)
            inserted, _late = cur.fetchone()
        return inserted


def _copy_all(copy: psycopg.Copy, rows: Sequence[tuple]) -> None:
    copy.set_types(_TYPES)
    write_row = copy.write_row
    for row in rows:
        write_row(row)


def _mark_late(cur: psycopg.Cursor, rows: Sequence[tuple]) -> None:
    """Every row was inserted: mark each point's earliest usable one older than its watermark."""
    watermarks = dict(cur.execute(_WATERMARKS_AFTER, (min(map(_ts, rows)),)).fetchall())
    if not watermarks:
        return
    since: dict[int, datetime] = {}
    for pid, ts, _value, quality in rows:
        mark = watermarks.get(pid)
        if mark is not None and quality < 2 and ts < mark and (pid not in since or ts < since[pid]):
            since[pid] = ts
    if since:
        cur.execute(_MARK, (list(since), list(since.values())))
