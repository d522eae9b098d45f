"""Meter replacement events a person records; energy is continuous across them.

A replacement is checked against the readings around the swap before it is stored, can be listed,
and is revoked (with a reason, kept for audit), never deleted. Recording or revoking one marks the
point for the next rollup from the swap on, whatever its age: the database does it (trigger
``meter_replacement_marks_dirty``, migration 0790, as :func:`store.rollups.mark_dirty` does), for
whoever records it — the command line as the owner, or the API as a tenant writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import errors

from metrics.counters import MeterReplacement
from metrics.intervals import Resolution


class ImpossibleReplacement(ValueError):
    """The figures of a replacement contradict the readings around the swap (``force`` overrides)."""


@dataclass(frozen=True)
class ReplacementRow:
    replacement_id: int
    point: str
    ts: datetime
    old_final_wh: float
    new_initial_wh: float
    reason: str
    recorded_at: datetime
    forced: bool
    revoked_at: datetime | None
    revoked_reason: str | None


def check_replacement(conn: psycopg.Connection, point_id: int, ts: datetime, old_final_wh: float,
                      new_initial_wh: float) -> list[str]:
    """What makes a replacement impossible given the point's usable readings around ``ts``: the
    old meter's final reading below its last reading at or before the swap (a reading at the
    instant of the swap is the old meter's), the new meter's first reading after it below its
    initial reading, or either step implying more than the point's rated power. Empty: possible."""
    rated = conn.execute("SELECT rated_power_w FROM point WHERE point_id = %s", (point_id,)).fetchone()[0]
    before = conn.execute(
        """SELECT ts, value FROM reading WHERE point_id = %s AND ts <= %s AND quality < 2
           ORDER BY ts DESC LIMIT 1""", (point_id, ts)).fetchone()
    after = conn.execute(
        """SELECT ts, value FROM reading WHERE point_id = %s AND ts > %s AND quality < 2
           ORDER BY ts LIMIT 1""", (point_id, ts)).fetchone()
    problems = []
    if before is not None:
        bts, bv = before
        if old_final_wh < bv - 0.5:
            problems.append(f"the old meter's final reading {old_final_wh:g} Wh is below its reading {bv:g} Wh "
                            f"at {bts.isoformat()}")
        elif rated is not None and old_final_wh - bv > rated * (ts - bts).total_seconds() / 3600 + 1:
            problems.append(f"from its reading {bv:g} Wh at {bts.isoformat()} to the final {old_final_wh:g} Wh the "
                            f"old meter would have carried more than the rated {rated} W")
    if after is not None:
        ats, av = after
        if av < new_initial_wh - 0.5:
            problems.append(f"the new meter's first reading {av:g} Wh at {ats.isoformat()} is below its initial "
                            f"reading {new_initial_wh:g} Wh")
        elif rated is not None and av - new_initial_wh > rated * (ats - ts).total_seconds() / 3600 + 1:
            problems.append(f"from the initial {new_initial_wh:g} Wh to its reading {av:g} Wh at {ats.isoformat()} "
                            f"the new meter would have carried more than the rated {rated} W")
    return problems


def record_replacement(conn: psycopg.Connection, point: str, ts: datetime, old_final_wh: float,
                       new_initial_wh: float, reason: str, *, force: bool = False) -> int:
    """Record a replacement of the meter behind ``point`` (by name); return its id.

    Checked first (:func:`check_replacement`): an impossible one raises
    :class:`ImpossibleReplacement` unless ``force`` (stored as forced). The point is marked for the
    next rollup from ``ts`` on by the insert's trigger.

    Raises ValueError naming the value for an unknown point, a naive time, a negative reading,
    an empty reason or a second live event at the same instant.
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
    problems = check_replacement(conn, row[0], ts, old_final_wh, new_initial_wh)
    if problems and not force:
        raise ImpossibleReplacement(
            f"replacement of {point} at {ts.isoformat()} refused: " + "; ".join(problems)
            + " (check the figures; to record it anyway use --force with a --reason saying why)")
    try:
        with conn.transaction():
            rid = conn.execute(
                """INSERT INTO meter_replacement (point_id, ts, old_final_wh, new_initial_wh, reason, forced)
                   VALUES (%s, %s, %s, %s, %s, %s) RETURNING replacement_id""",
                (row[0], ts, old_final_wh, new_initial_wh, reason.strip(), bool(problems))).fetchone()[0]
            # the stored intervals from the swap on were computed without it: the insert's trigger
            # marks the point for the next rollup
            return rid
    except errors.UniqueViolation:
        raise ValueError(f"point {point!r} already has a replacement recorded at {ts.isoformat()} "
                         "(revoke it first: greengauge meter revoke)") from None


def revoke_replacement(conn: psycopg.Connection, replacement_id: int, reason: str) -> ReplacementRow:
    """Revoke a recorded replacement (kept, with the time and reason); its point is marked for the
    next rollup from the swap on (by the update's trigger). ValueError for an unknown or already
    revoked one or no reason."""
    if not reason.strip():
        raise ValueError("revoking a replacement needs a reason")
    with conn.transaction():
        row = conn.execute(
            """UPDATE meter_replacement SET revoked_at = now(), revoked_reason = %s
               WHERE replacement_id = %s AND revoked_at IS NULL RETURNING point_id, ts""",
            (reason.strip(), replacement_id)).fetchone()
        if row is None:
            known = conn.execute("SELECT revoked_at FROM meter_replacement WHERE replacement_id = %s",
                                 (replacement_id,)).fetchone()
            if known is None:
                raise ValueError(f"no replacement {replacement_id} (see greengauge meter list)")
            raise ValueError(f"replacement {replacement_id} was already revoked at {known[0].isoformat()}")
        # the update's trigger marks the point for the next rollup from the swap on
    return list_replacements(conn, replacement_id=replacement_id)[0]


def list_replacements(conn: psycopg.Connection, *, enterprise: str | None = None, point: str | None = None,
                      replacement_id: int | None = None) -> list[ReplacementRow]:
    """Recorded replacements, revoked ones included, in point and time order."""
    rows = conn.execute(
        """SELECT m.replacement_id, p.name, m.ts, m.old_final_wh, m.new_initial_wh, m.reason, m.recorded_at,
                  m.forced, m.revoked_at, m.revoked_reason
           FROM meter_replacement m JOIN point p USING (point_id) JOIN device d USING (device_id)
           JOIN site s USING (site_id) JOIN enterprise e USING (enterprise_id)
           WHERE (%(e)s::text IS NULL OR e.code = %(e)s) AND (%(p)s::text IS NULL OR p.name = %(p)s)
             AND (%(i)s::bigint IS NULL OR m.replacement_id = %(i)s)
           ORDER BY p.name, m.ts, m.replacement_id""",
        {"e": enterprise, "p": point, "i": replacement_id}).fetchall()
    return [ReplacementRow(*r) for r in rows]


#: the live (unrevoked) replacements of the points of parameter 1 (an array of ids), for :func:`replacements_from`
REPLACEMENTS_SQL = """SELECT point_id, ts, old_final_wh, new_initial_wh, reason FROM meter_replacement
                      WHERE point_id = ANY(%s) AND revoked_at IS NULL ORDER BY point_id, ts"""


def replacements(conn: psycopg.Connection, point_ids: list[int]) -> dict[int, list[MeterReplacement]]:
    """The live (unrevoked) replacements of each point, in time order."""
    return replacements_from(point_ids, conn.execute(REPLACEMENTS_SQL, (point_ids,)).fetchall())


def replacements_from(point_ids: list[int], rows) -> dict[int, list[MeterReplacement]]:
    """:data:`REPLACEMENTS_SQL`'s rows per point (every point of ``point_ids`` a key)."""
    out: dict[int, list[MeterReplacement]] = {pid: [] for pid in point_ids}
    for pid, ts, old, new, reason in rows:
        out[pid].append(MeterReplacement(ts, old, new, reason))
    return out


RESOLUTIONS_SQL = """SELECT point_id, since, until, interval_s FROM reading_resolution
                     WHERE point_id = ANY(%s) ORDER BY point_id, since, until, interval_s"""


def resolutions(conn: psycopg.Connection, point_ids: list[int]) -> dict[int, list[Resolution]]:
    """The expected intervals stated on import (``reading_resolution``) of each point, in time
    order, joined across the gaps between them (:func:`join_resolutions`)."""
    return resolutions_from(point_ids, conn.execute(RESOLUTIONS_SQL, (point_ids,)).fetchall())


def resolutions_from(point_ids: list[int], rows) -> dict[int, list[Resolution]]:
    """:data:`RESOLUTIONS_SQL`'s rows per point (every point of ``point_ids`` a key), joined."""
    raw: dict[int, list[Resolution]] = {pid: [] for pid in point_ids}
    for pid, since, until, interval_s in rows:
        raw.setdefault(pid, []).append(Resolution(since, until, interval_s))
    return {pid: join_resolutions(v) for pid, v in raw.items()}


def join_resolutions(ranges: list[Resolution]) -> list[Resolution]:
    """A point's stated ranges as the rollup and the report judge gaps by (docs/accounting.md
    "Importing history").

    Each import stores the [first, last] reading of its file; the time between two files is in
    neither range. Ranges of the same resolution that overlap, touch or are at most that resolution
    apart are one range (hourly history in two files 1 h apart is hourly history throughout). Two
    ranges of different resolutions at most the smaller of the two apart are bridged by a range of
    the smaller one from the end of the first to the start of the second: the gap between them is
    judged by the resolutions on both sides, so it is measured only if no longer than either.
    Farther apart, the gap is judged by the device's own poll interval, as before. In time order.
    """
    merged: list[Resolution] = []
    for interval_s in sorted({r.interval_s for r in ranges}):
        step = timedelta(seconds=interval_s)
        cur: Resolution | None = None
        for r in sorted((r for r in ranges if r.interval_s == interval_s), key=lambda r: (r.since, r.until)):
            if cur is not None and r.since - cur.until <= step:
                cur = Resolution(cur.since, max(cur.until, r.until), interval_s)
            else:
                if cur is not None:
                    merged.append(cur)
                cur = r
        if cur is not None:
            merged.append(cur)
    merged.sort(key=lambda r: (r.since, r.until, r.interval_s))
    bridges: list[Resolution] = []
    for k, b in enumerate(merged):
        # the range reaching furthest among those that start before b: nothing stated lies between
        before = [a for a in merged[:k] if a.since < b.since]
        if not before:
            continue
        a = max(before, key=lambda r: r.until)
        smaller = min(a.interval_s, b.interval_s)
        if a.interval_s != b.interval_s and a.until < b.since and b.since - a.until <= timedelta(seconds=smaller):
            bridges.append(Resolution(a.until, b.since, smaller))
    return sorted(merged + bridges, key=lambda r: (r.since, r.until, r.interval_s))


def point_enterprise(conn: psycopg.Connection, point: str) -> tuple[str, str]:
    """(enterprise code, time zone) of the point named ``point``; LookupError when there is none."""
    row = conn.execute(
        """SELECT e.code, e.timezone FROM point p JOIN device d USING (device_id) JOIN site s USING (site_id)
           JOIN enterprise e USING (enterprise_id) WHERE p.name = %s""", (point,)).fetchone()
    if row is None:
        raise LookupError(f"no point {point!r}")
    return row[0], row[1]
