"""Data-quality findings (``origin`` quality in the one ``finding`` table) and the queries that find them.

Each is a :class:`model.findings.Finding`: a kind, a subject (device, point), times and data (the
values its text is made from; the sentence is made where it is shown). Two shapes:
- a *state* (``stale_device``, ``clock_skew``, ``low_completeness``): opened when the condition
  starts, left open while it lasts (at most one open per kind and device/point), closed with the
  time it ended;
- an *event* (``gap``, ``counter_drop``, ``spike``): recorded once with its start and end; found
  again by a later run, it is the same row (unique on kind, device, point and start).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from model.findings import EVENTS, STATES, Finding, FindingKind, Subject, kind_of

__all__ = ["EVENTS", "STATES", "Finding", "FindingKind", "findings", "open_states", "open_state", "close_state",
           "record_event"]

_COLUMNS = "finding_id, kind, device_id, point_id, source, opened_at, closed_at, last_seen, count, data"


def _finding(row) -> Finding:
    fid, kind, device_id, point_id, source, opened, closed, last, count, data = row
    return Finding(kind_of(kind), Subject(device_id, point_id, source), opened, closed, data, count, last, fid)


def findings(conn: psycopg.Connection, *, open_only: bool = False, kind: str | None = None) -> list[Finding]:
    rows = conn.execute(
        f"""SELECT {_COLUMNS} FROM finding
            WHERE origin = 'quality' AND (NOT %(o)s OR closed_at IS NULL) AND (%(k)s::text IS NULL OR kind = %(k)s)
            ORDER BY opened_at, finding_id""",
        {"o": open_only, "k": None if kind is None else str(kind)},
    ).fetchall()
    return [_finding(r) for r in rows]


def open_states(conn: psycopg.Connection, kind: str) -> dict[tuple[int, int | None], Finding]:
    return {(f.device_id, f.point_id): f for f in findings(conn, open_only=True, kind=kind)}


def open_state(conn: psycopg.Connection, kind: str, device_id: int, point_id: int | None,
               opened_at: datetime, data: dict[str, Any]) -> bool:
    """Open a state finding unless one of this kind is open for the device/point; True when opened."""
    cur = conn.execute(
        """INSERT INTO finding (origin, kind, device_id, point_id, opened_at, last_seen, data)
           VALUES ('quality', %s, %s, %s, %s, now(), %s) ON CONFLICT DO NOTHING""",
        (str(kind), device_id, point_id, opened_at, Jsonb(data)),
    )
    return cur.rowcount == 1


def close_state(conn: psycopg.Connection, finding_id: int, closed_at: datetime) -> None:
    conn.execute("""UPDATE finding SET closed_at = greatest(%s, opened_at), last_seen = now()
                    WHERE finding_id = %s AND closed_at IS NULL AND origin = 'quality'""",
                 (closed_at, finding_id))


def record_event(conn: psycopg.Connection, kind: str, device_id: int, point_id: int | None,
                 opened_at: datetime, closed_at: datetime, data: dict[str, Any]) -> bool:
    """Record an event once; a later run that sees it longer moves its end. True when new."""
    cur = conn.execute(
        """INSERT INTO finding AS f (origin, kind, device_id, point_id, opened_at, closed_at, last_seen, data)
           VALUES ('quality', %s, %s, %s, %s, %s, now(), %s)
           ON CONFLICT (kind, device_id, coalesce(point_id, 0), opened_at) WHERE origin = 'quality' DO UPDATE
               SET closed_at = greatest(f.closed_at, EXCLUDED.closed_at), data = EXCLUDED.data, last_seen = now()
               WHERE f.closed_at < EXCLUDED.closed_at
           RETURNING (xmax = 0)""",
        (str(kind), device_id, point_id, opened_at, closed_at, Jsonb(data)),
    ).fetchone()
    return bool(cur and cur[0])


# -- queries ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DevicePoll:
    device_id: int
    name: str
    poll_interval_s: float
    last_ts: datetime | None  #: newest reading of any of its points, any quality, at or before as_of


def device_last_readings(conn: psycopg.Connection, as_of: datetime, enterprise: str | None = None) -> list[DevicePoll]:
    rows = conn.execute(
        """SELECT d.device_id, d.name, d.poll_interval_s::float8,
                  (SELECT max(l.ts) FROM point p CROSS JOIN LATERAL (
                       SELECT ts FROM reading r WHERE r.point_id = p.point_id AND r.ts <= %(as_of)s
                       ORDER BY ts DESC LIMIT 1) l WHERE p.device_id = d.device_id)
           FROM device d JOIN site s USING (site_id) JOIN enterprise e USING (enterprise_id)
           WHERE %(e)s::text IS NULL OR e.code = %(e)s ORDER BY d.device_id""",
        {"as_of": as_of, "e": enterprise},
    ).fetchall()
    return [DevicePoll(*r) for r in rows]


def first_reading_after(conn: psycopg.Connection, device_id: int, after: datetime, as_of: datetime) -> datetime | None:
    return conn.execute(
        """SELECT min(f.ts) FROM point p CROSS JOIN LATERAL (
               SELECT ts FROM reading r WHERE r.point_id = p.point_id AND r.ts > %s AND r.ts <= %s
               ORDER BY ts LIMIT 1) f WHERE p.device_id = %s""",
        (after, as_of, device_id),
    ).fetchone()[0]


_ENT = """JOIN point p USING (point_id) JOIN device d USING (device_id) JOIN site s USING (site_id)
          JOIN enterprise e USING (enterprise_id)"""


def gaps(conn: psycopg.Connection, start: datetime, end: datetime, factor: float, enterprise: str | None = None):
    """(point_id, device_id, before, after) where readings of a point in [start, end] are more
    than ``factor`` poll intervals apart."""
    return conn.execute(
        f"""SELECT point_id, device_id, prev_ts, ts FROM (
                SELECT r.point_id, p.device_id, r.ts, d.poll_interval_s,
                       lag(r.ts) OVER (PARTITION BY r.point_id ORDER BY r.ts) AS prev_ts
                FROM reading r {_ENT}
                WHERE r.ts >= %(start)s AND r.ts <= %(end)s AND (%(e)s::text IS NULL OR e.code = %(e)s)) x
            WHERE prev_ts IS NOT NULL AND ts - prev_ts > make_interval(secs => poll_interval_s * %(f)s)
            ORDER BY point_id, prev_ts""",
        {"start": start, "end": end, "f": factor, "e": enterprise},
    ).fetchall()


def counter_drops(conn: psycopg.Connection, start: datetime, end: datetime, enterprise: str | None = None):
    """(point_id, device_id, ts, previous value, value) where a counter fell."""
    return conn.execute(
        f"""SELECT point_id, device_id, ts, prev_v, value FROM (
                SELECT r.point_id, p.device_id, r.ts, r.value,
                       lag(r.value) OVER (PARTITION BY r.point_id ORDER BY r.ts) AS prev_v
                FROM reading r {_ENT}
                WHERE p.kind = 'counter' AND r.quality < 2 AND r.ts >= %(start)s AND r.ts <= %(end)s
                  AND (%(e)s::text IS NULL OR e.code = %(e)s)) x
            WHERE value < prev_v ORDER BY point_id, ts""",
        {"start": start, "end": end, "e": enterprise},
    ).fetchall()


def suspect_runs(conn: psycopg.Connection, start: datetime, end: datetime, enterprise: str | None = None):
    """(point_id, device_id, first ts, last ts, readings) of each run of consecutive suspect readings."""
    return conn.execute(
        f"""SELECT point_id, device_id, min(ts), max(ts), count(*) FROM (
                SELECT r.point_id, p.device_id, r.ts, r.quality,
                       row_number() OVER (PARTITION BY r.point_id ORDER BY r.ts)
                     - row_number() OVER (PARTITION BY r.point_id, r.quality = 1 ORDER BY r.ts) AS island
                FROM reading r {_ENT}
                WHERE r.ts >= %(start)s AND r.ts <= %(end)s AND (%(e)s::text IS NULL OR e.code = %(e)s)) x
            WHERE quality = 1 GROUP BY point_id, device_id, island ORDER BY point_id, 3""",
        {"start": start, "end": end, "e": enterprise},
    ).fetchall()


def clock_offsets(conn: psycopg.Connection, since_received: datetime, enterprise: str | None = None):
    """(device_id, median of received_at - ts in seconds, readings) over readings received since
    ``since_received`` (live data only: imports and replays of old readings are not skew)."""
    return conn.execute(
        f"""SELECT p.device_id,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.received_at - r.ts)),
                   count(*)
            FROM reading r {_ENT}
            WHERE r.received_at >= %(since)s AND r.ts >= %(since)s - interval '1 hour'
              AND (%(e)s::text IS NULL OR e.code = %(e)s)
            GROUP BY p.device_id""",
        {"since": since_received, "e": enterprise},
    ).fetchall()


def completeness(conn: psycopg.Connection, start: datetime, end: datetime, enterprise: str | None = None):
    """(point_id, device_id, usable readings in [start, end), expected readings) for points that
    had a reading before ``end`` (points never read are not incomplete, they are unconfigured)."""
    return conn.execute(
        """SELECT p.point_id, p.device_id,
                  (SELECT count(*) FROM reading r WHERE r.point_id = p.point_id AND r.ts >= %(start)s
                     AND r.ts < %(end)s AND r.quality < 2),
                  floor(extract(epoch FROM %(end)s::timestamptz - %(start)s::timestamptz) / d.poll_interval_s)::bigint
           FROM point p JOIN device d USING (device_id) JOIN site s USING (site_id) JOIN enterprise e USING (enterprise_id)
           WHERE (%(e)s::text IS NULL OR e.code = %(e)s)
             AND EXISTS (SELECT 1 FROM reading r WHERE r.point_id = p.point_id AND r.ts < %(end)s)""",
        {"start": start, "end": end, "e": enterprise},
    ).fetchall()
