"""Queries over readings. The same SQL serves plain PostgreSQL and TimescaleDB."""

from __future__ import annotations

from datetime import datetime

import psycopg

Series = tuple[list[datetime], list[float]]


def counter_series(conn: psycopg.Connection, point_ids: list[int], start: datetime, end: datetime) -> dict[int, Series]:
    """Usable readings (good or suspect, with a value) of each point in [start, end), plus the
    last three before ``start`` and the first three at or after ``end``: the same window as the
    rollup (store/rollups.py stream_readings), so a glitch on the reading just before the period or
    at its edge is judged by the readings around it (an isolated outlier, a confirmed reset) as in
    a run over the whole series."""
    sql = """
        WITH p AS (SELECT unnest(%(ids)s::bigint[]) AS point_id)
        SELECT r.point_id, r.ts, r.value FROM reading r JOIN p USING (point_id)
        WHERE r.ts >= %(start)s AND r.ts < %(end)s AND r.quality < 2
        UNION ALL
        SELECT p.point_id, b.ts, b.value FROM p CROSS JOIN LATERAL (
            SELECT ts, value FROM reading r WHERE r.point_id = p.point_id AND r.ts < %(start)s AND r.quality < 2
            ORDER BY ts DESC LIMIT 3) b
        UNION ALL
        SELECT p.point_id, a.ts, a.value FROM p CROSS JOIN LATERAL (
            SELECT ts, value FROM reading r WHERE r.point_id = p.point_id AND r.ts >= %(end)s AND r.quality < 2
            ORDER BY ts LIMIT 3) a
        ORDER BY 1, 2"""
    out: dict[int, Series] = {pid: ([], []) for pid in point_ids}
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
