"""Queries over readings. The same SQL serves plain PostgreSQL and TimescaleDB."""

from __future__ import annotations

from datetime import datetime

import psycopg

from store.db import no_jit
from store.rollups import edge_bounds_sql

Series = tuple[list[datetime], list[float]]


def counter_series(conn: psycopg.Connection, point_ids: list[int], start: datetime, end: datetime) -> dict[int, Series]:
    """Usable readings (good or suspect, with a value) of each point in [start, end), plus those
    around it that the judgement of its edges needs: the same window as the rollup
    (store/rollups.py stream_readings, :func:`store.rollups.edge_bounds_sql`), so a glitch or a run
    of glitches on the readings just before the period or at its edge is judged by the readings
    around it (an outlier, a confirmed reset) as in a run over the whole series."""
    lo, hi = edge_bounds_sql("p.point_id", "%(start)s::timestamptz", "%(end)s::timestamptz")
    sql = f"""
        WITH p AS (SELECT unnest(%(ids)s::bigint[]) AS point_id),
             b AS (SELECT p.point_id, {lo} AS lo, {hi} AS hi FROM p)
        SELECT r.point_id, r.ts, r.value FROM b CROSS JOIN LATERAL (
            SELECT r.point_id, r.ts, r.value FROM reading r
            WHERE r.point_id = b.point_id AND r.ts >= b.lo AND r.ts <= b.hi AND r.quality < 2) r
        ORDER BY 1, 2"""
    out: dict[int, Series] = {pid: ([], []) for pid in point_ids}
    with conn.transaction():
        no_jit(conn)  # (edge_bounds_sql)
        for pid, ts, value in conn.execute(sql, {"ids": point_ids, "start": start, "end": end}):
            out[pid][0].append(ts)
            out[pid][1].append(value)
    return out


def gauge_series(conn: psycopg.Connection, point_ids: list[int], start: datetime, end: datetime) -> dict[int, Series]:
    """Usable readings of each point in [start, end)."""
    out: dict[int, Series] = {pid: ([], []) for pid in point_ids}
    rows = conn.execute(
        """SELECT point_id, ts, value FROM reading
           WHERE point_id = ANY(%s) AND ts >= %s AND ts < %s AND quality < 2 ORDER BY point_id, ts""",
        (point_ids, start, end),
    )
    for pid, ts, value in rows:
        out[pid][0].append(ts)
        out[pid][1].append(value)
    return out
