"""Meter replacement events a person records; energy is continuous across them."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg import errors

from metrics.energy import MeterReplacement


def record_replacement(conn: psycopg.Connection, point: str, ts: datetime, old_final_wh: float,
                       new_initial_wh: float, reason: str) -> int:
    """Record a replacement of the meter behind ``point`` (by name); return its id.

    The point's rollup watermark is moved back to ``ts`` by the database (trigger
    ``meter_replacement_lowers_watermark``, migration 0600, as :func:`store.rollups.lower_watermark`
    does), so the next rollup recomputes its stored intervals from the swap on, whoever records it:
    the command line as the owner, or the API as a tenant writer who may not touch rollup state.

    Raises ValueError naming the value for an unknown point, a naive time, a negative reading,
    an empty reason or a second event at the same instant.
    """
    if ts.tzinfo is None:
        raise ValueError(f"time {ts} has no UTC offset")
    for name, v in (("old final reading", old_final_wh), ("new initial reading", new_initial_wh)):
        if v < 0:
            raise ValueError(f"{name} {v} Wh is negative")
    if not reason.strip():
        raise ValueError("a replacement needs a reason")
    row = conn.execute("SELECT point_id, kind FROM point WHERE name = %s", (point,)).fetchone()
    if row is None:
        raise ValueError(f"no point {point!r}")
    if row[1] != "counter":
        raise ValueError(f"point {point!r} is a {row[1]}, not a counter")
    try:
        with conn.transaction():
            rid = conn.execute(
                """INSERT INTO meter_replacement (point_id, ts, old_final_wh, new_initial_wh, reason)
                   VALUES (%s, %s, %s, %s, %s) RETURNING replacement_id""",
                (row[0], ts, old_final_wh, new_initial_wh, reason.strip())).fetchone()[0]
            # the stored intervals from the swap on were computed without it: the insert's trigger
            # lowers the watermark, so the next incremental rollup recomputes them (daily balances
            # and year-to-date figures need a backfill)
            return rid
    except errors.UniqueViolation:
        raise ValueError(f"point {point!r} already has a replacement recorded at {ts.isoformat()}") from None


def replacements(conn: psycopg.Connection, point_ids: list[int]) -> dict[int, list[MeterReplacement]]:
    out: dict[int, list[MeterReplacement]] = {pid: [] for pid in point_ids}
    for pid, ts, old, new, reason in conn.execute(
        """SELECT point_id, ts, old_final_wh, new_initial_wh, reason FROM meter_replacement
           WHERE point_id = ANY(%s) ORDER BY point_id, ts""", (point_ids,)):
        out[pid].append(MeterReplacement(ts, old, new, reason))
    return out


def point_enterprise(conn: psycopg.Connection, point: str) -> tuple[str, str]:
    """(enterprise code, time zone) of the point named ``point``; LookupError when there is none."""
    row = conn.execute(
        """SELECT e.code, e.timezone FROM point p JOIN device d USING (device_id) JOIN site s USING (site_id)
           JOIN enterprise e USING (enterprise_id) WHERE p.name = %s""", (point,)).fetchone()
    if row is None:
        raise LookupError(f"no point {point!r}")
    return row[0], row[1]
