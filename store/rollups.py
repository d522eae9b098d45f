"""Interval energy, hourly and daily sums, and the per-point rollup watermark.

Reading streams one row per point, each column of its readings packed in one ``bytea`` that numpy
reads as it is (memory bounded by one point's readings, no Python object per reading); writing
COPYs computed intervals into a staging table (binary COPY data made by numpy) and merges them,
touching only rows that changed, so a rerun writes nothing. The hourly and daily sums of the
buckets that changed are refreshed in the same transaction (plain PostgreSQL) or by refreshing the
continuous aggregate after commit (TimescaleDB).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import psycopg

from metrics.counters import GLITCH_RUN, CounterFinding
from metrics.intervals import INTERVAL_S, IntervalColumns, epoch_us, utc_times
from store.db import no_jit, storage_mode

EPOCH_SQL = "timestamptz '1970-01-01 00:00:00+00'"
#: 2000-01-01 UTC (PostgreSQL's binary time epoch) in microseconds since the Unix epoch
PG_EPOCH_US = 946_684_800_000_000


@dataclass(frozen=True)
class CounterPoint:
    point_id: int
    device_id: int
    enterprise: str
    timezone: str


@dataclass(frozen=True)
class PointReadings:
    """One point's usable readings in time order, as columns."""

    point_id: int
    us: np.ndarray  #: reading times, UTC, microseconds since the Unix epoch (int64, increasing)
    values: np.ndarray  #: raw counter readings [Wh] (float64)
    suspect: np.ndarray  #: stored with quality suspect (bool)

    @classmethod
    def of(cls, point_id: int, ts: Sequence[datetime], values: Sequence[float], suspect: Sequence[bool]
           ) -> PointReadings:
        """Readings given as timezone-aware datetimes, values and suspect flags."""
        return cls(point_id, epoch_us(ts), np.asarray(values, dtype=np.float64), np.asarray(suspect, dtype=bool))

    @property
    def ts(self) -> list[datetime]:
        """The reading times as UTC datetimes."""
        return utc_times(self.us)

    @property
    def last_ts(self) -> datetime:
        """The time of the newest reading, UTC."""
        return utc_times(self.us[-1:])[0]


@dataclass
class MergeStats:
    intervals_written: int = 0  #: rows inserted or changed
    intervals_deleted: int = 0
    hours_changed: int = 0
    days_changed: int = 0
    changed_range: tuple[datetime, datetime] | None = None
    changed_points: set[int] = field(default_factory=set)


def counter_points(conn: psycopg.Connection, enterprise: str | None = None) -> list[CounterPoint]:
    """Every counter point (of one enterprise, or of all)."""
    rows = conn.execute(
        """SELECT p.point_id, p.device_id, e.code, e.timezone
           FROM point p JOIN device d USING (device_id) JOIN site s USING (site_id)
           JOIN enterprise e USING (enterprise_id)
           WHERE p.kind = 'counter' AND (%(e)s::text IS NULL OR e.code = %(e)s)
           ORDER BY p.point_id""",
        {"e": enterprise},
    ).fetchall()
    return [CounterPoint(*r) for r in rows]


def watermarks(conn: psycopg.Connection, point_ids: list[int]) -> dict[int, datetime]:
    rows = conn.execute(
        "SELECT point_id, last_reading_ts FROM rollup_watermark WHERE point_id = ANY(%s)", (point_ids,)
    ).fetchall()
    return dict(rows)


def mark_dirty(conn: psycopg.Connection, point_id: int, ts: datetime) -> bool:
    """Have the next rollup recompute a point's intervals from ``ts`` on (e.g. a meter replacement
    recorded or revoked after its time was rolled up), whatever its age. A point never rolled up is
    computed in full anyway and is not marked. Returns whether a mark was set or moved earlier."""
    cur = conn.execute(
        """INSERT INTO rollup_dirty AS d (point_id, since)
           SELECT point_id, %(ts)s FROM rollup_watermark WHERE point_id = %(p)s
           ON CONFLICT (point_id) DO UPDATE SET since = least(d.since, EXCLUDED.since),
                                                marked_at = clock_timestamp()""",
        {"p": point_id, "ts": ts})
    return cur.rowcount > 0


@dataclass(frozen=True)
class DirtyMark:
    """A point's late-data mark (``rollup_dirty``) and where recomputing it must start."""

    point_id: int
    since: datetime  #: the earliest late reading or event
    marked_at: datetime  #: identifies this version of the mark (cleared only if unchanged)
    context_ts: datetime | None  #: the third usable reading before ``since``; None: fewer exist


#: readings searched on each side of a recomputed range for a steady stretch (edge_bounds_sql);
#: when none is found there, every reading on that side is read, up to EDGE_LIMIT of them
EDGE_SEARCH = 64
#: at most this many readings on a side of a range, whatever the counter does: a counter with no
#: steady stretch for this long (falling every few readings) would otherwise be read from its first
#: reading at every incremental rollup
EDGE_LIMIT = 4096


def _stretch_sql(point: str, edge: str, before: int, after: int, where: str, order: str, pick: str) -> str:
    """The time ``pick`` of the first (``order``) reading around ``edge`` meeting ``where`` that is
    the middle of a steady stretch: itself, the GLITCH_RUN usable readings before it and the
    GLITCH_RUN after it never falling (finite values), no live meter replacement among them.
    ``pick``: an expression of ``s.x0`` (the stretch's first reading), ``s.xn`` (the reading
    after its last). ``before``/``after``: how many readings before / at or after ``edge`` are searched."""
    k = GLITCH_RUN
    return f"""(SELECT {pick} FROM (
            SELECT u.ts, lag(u.ts, {k}) OVER o AS x0, lead(u.ts, {k}) OVER o AS xe,
                   lead(u.ts, {k + 1}) OVER o AS xn,
                   sum(u.up) OVER (o ROWS BETWEEN {k - 1} PRECEDING AND {k} FOLLOWING) AS ups
            FROM (SELECT q.ts, (q.value >= lag(q.value) OVER (ORDER BY q.ts) AND q.value < 'Infinity'
                                AND lag(q.value) OVER (ORDER BY q.ts) > '-Infinity')::int AS up
                  FROM ((SELECT r.ts, r.value FROM reading r WHERE r.point_id = {point} AND r.ts < {edge}
                         AND r.quality < 2 ORDER BY r.ts DESC LIMIT {before})
                        UNION ALL
                        (SELECT r.ts, r.value FROM reading r WHERE r.point_id = {point} AND r.ts >= {edge}
                         AND r.quality < 2 ORDER BY r.ts LIMIT {after})) q) u
            WINDOW o AS (ORDER BY u.ts)) s
        WHERE {where} AND s.ups = {2 * k} AND s.x0 IS NOT NULL AND s.xe IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM meter_replacement m WHERE m.point_id = {point}
                          AND m.revoked_at IS NULL AND m.ts >= s.x0 AND m.ts <= s.xe)
        ORDER BY s.ts {order} LIMIT 1)"""


def _last_stretch_before(point: str, edge: str, where: str, pick: str) -> str:
    """SQL: ``pick`` of the last steady stretch before ``edge`` meeting ``where`` — looked for among
    the nearest readings first (a steady counter has it there, and the last one is the nearest, so
    the answer is the same), then among :data:`EDGE_SEARCH`, the wide search run by COALESCE only
    where the near one finds none — else the time :data:`EDGE_LIMIT` usable readings back (NULL:
    fewer exist)."""
    k = GLITCH_RUN
    near = _stretch_sql(point, edge, 2 * k + 1, k, where, "DESC", pick)
    wide = _stretch_sql(point, edge, EDGE_SEARCH, k, where, "DESC", pick)
    far = (f"(SELECT r.ts FROM reading r WHERE r.point_id = {point} AND r.ts < {edge} AND r.quality < 2 "
           f"ORDER BY r.ts DESC OFFSET {EDGE_LIMIT - 1} LIMIT 1)")
    return f"coalesce({near}, {wide}, {far})"


def edge_bounds_sql(point: str, since: str, until: str) -> tuple[str, str]:
    """SQL expressions of the first and last reading time to read for recomputing [since, until)
    of a point (column expressions; NULL: unbounded) so that every reading whose judgement decides
    an interval in the range is judged as in a run over the whole series (docs/accounting.md "Edges").

    Before ``since``: from the first reading of the last steady stretch whose middle reading is
    before ``since`` (see :func:`_stretch_sql`): whatever the readings before such a stretch, its
    middle reading is used as it is (metrics.counters: a run of unusual readings is at most
    GLITCH_RUN long, and a reading followed by GLITCH_RUN readings at or above it is never one),
    so the counter is judged the same from there on. After ``until``: to GLITCH_RUN + 1 readings
    after the middle of the first steady stretch whose middle is at or after ``until`` (a reading
    is judged by at most GLITCH_RUN + 1 readings after it). With no such stretch among
    :data:`EDGE_SEARCH` readings, every reading on that side, up to :data:`EDGE_LIMIT` of them.
    Statements using them want :func:`store.db.no_jit`."""
    k = GLITCH_RUN
    lo = _last_stretch_before(point, since, f"s.ts < {since}", "s.x0")
    # after: the first stretch, near then wide (the near one only where the reading past the
    # stretch's end is inside its window), else EDGE_LIMIT readings on
    near_hi = _stretch_sql(point, until, k, 2 * k + 2, f"s.ts >= {until} AND s.xn IS NOT NULL", "", "s.xn")
    hi = _stretch_sql(point, until, k, EDGE_SEARCH + k + 1, f"s.ts >= {until}", "", "coalesce(s.xn, 'infinity')")
    far_hi = (f"(SELECT r.ts FROM reading r WHERE r.point_id = {point} AND r.ts >= {until} AND r.quality < 2 "
              f"ORDER BY r.ts OFFSET {EDGE_LIMIT - 1} LIMIT 1)")
    return (f"CASE WHEN {since} IS NULL THEN '-infinity'::timestamptz ELSE coalesce({lo}, '-infinity') END",
            f"CASE WHEN {until} IS NULL THEN 'infinity'::timestamptz "
            f"ELSE coalesce({near_hi}, {hi}, {far_hi}, 'infinity') END")


def settled_since(conn: psycopg.Connection, sinces: dict[int, datetime]) -> dict[int, datetime | None]:
    """For an incremental run: the time from which each point's intervals may change, given the
    time ``since`` from which its readings are new (the watermark's trailing window, a late
    reading's context, a replacement's): the middle reading of the last steady stretch wholly
    before ``since`` (:func:`_stretch_sql`; among the readings the run that wrote the intervals
    saw). New readings change how up to GLITCH_RUN + 1 readings before them are judged, and
    through a run of skipped readings the energy from the last reading kept before them; neither
    reaches back past such a middle reading, which is used as it is and stays so — the intervals
    before it are final. None: from the point's first reading (no stretch within EDGE_LIMIT
    readings: at most that many back, as :func:`edge_bounds_sql`)."""
    if not sinces:
        return {}
    ids = list(sinces)
    with conn.transaction():
        no_jit(conn)
        rows = conn.execute(
            f"""SELECT g.point_id, {_last_stretch_before("g.point_id", "g.since", "s.xe < g.since", "s.ts")}
                FROM unnest(%s::bigint[], %s::timestamptz[]) g(point_id, since)""",
            (ids, [sinces[i] for i in ids])).fetchall()
    return dict(rows)


#: usable readings read before a late reading's recomputed range (and judged again), so that a
#: late reading changes how the readings before it are judged as in a run over the whole series:
#: the energy between the last reading before it and it, and the outlier decisions, which look up
#: to GLITCH_RUN + 1 readings ahead (docs/accounting.md "Late data")
CONTEXT_READINGS = GLITCH_RUN + 2


def dirty_marks(conn: psycopg.Connection, point_ids: list[int]) -> dict[int, DirtyMark]:
    """The late-data marks of these points (see :data:`CONTEXT_READINGS`)."""
    rows = conn.execute(
        """SELECT d.point_id, d.since, d.marked_at,
                  (SELECT r.ts FROM reading r WHERE r.point_id = d.point_id AND r.ts < d.since
                   AND r.quality < 2 ORDER BY r.ts DESC OFFSET %s LIMIT 1)
           FROM rollup_dirty d WHERE d.point_id = ANY(%s)""", (CONTEXT_READINGS - 1, point_ids)).fetchall()
    return {r[0]: DirtyMark(*r) for r in rows}


def clear_dirty(conn: psycopg.Connection, marks: list[DirtyMark]) -> int:
    """Delete the marks a rollup has recomputed, in its transaction; a mark moved meanwhile (a
    reading stored during the run) stays for the next run."""
    if not marks:
        return 0
    with conn.cursor() as cur:
        cur.executemany("DELETE FROM rollup_dirty WHERE point_id = %s AND marked_at = %s",
                        [(m.point_id, m.marked_at) for m in marks])
        return cur.rowcount


def stream_readings(
    conn: psycopg.Connection,
    ranges: dict[int, tuple[datetime | None, datetime | None]],
) -> Iterator[PointReadings]:
    """Usable readings (good or suspect) of each point for recomputing [since, until), one point at
    a time in point order, plus the last three readings before ``since`` and the first three at or
    after ``until``: the counter is interpolated at the edges, a glitch on the reading just before
    ``since`` is judged by the readings around it, and a drop or a rise at the first reading after
    ``until`` by the readings that follow it (outlier, reset or wrap), as in a run over the whole
    series. ``None`` means unbounded. A point without such readings is not yielded.

    Each point comes as one row whose columns are packed in a ``bytea`` each (``string_agg`` of
    ``timestamptz_send``: int64 microseconds since 2000-01-01 UTC; ``float8send``; ``boolsend``;
    big-endian), read by numpy as they are: 17 bytes a reading and no Python object per reading.
    The rows are streamed as the server makes them (no round trip per point). The aggregates take
    a point's rows in one order, so its columns line up; that the times increase is checked and the
    columns are sorted by time when the scan gave another order. A point's readings in one run are
    limited by PostgreSQL's 1 GB value size (about 130 million readings).

    ``conn`` must not be in autocommit mode and is used only for this stream.
    """
    conn.execute("""CREATE TEMP TABLE IF NOT EXISTS rollup_range (
                        point_id bigint PRIMARY KEY, since timestamptz, until timestamptz,
                        lo timestamptz, hi timestamptz)""")
    conn.execute("TRUNCATE rollup_range")
    with conn.cursor() as cur:
        with cur.copy("COPY rollup_range (point_id, since, until) FROM STDIN") as copy:
            for pid, (since, until) in ranges.items():
                copy.write_row((pid, since, until))
    # the readings to fetch: from the start of a steady stretch before `since` to a few readings past
    # one at or after `until` (edge_bounds_sql); no JIT for this transaction's statements
    no_jit(conn)
    lo_sql, hi_sql = edge_bounds_sql("g.point_id", "g.since", "g.until")
    conn.execute(f"UPDATE rollup_range g SET lo = {lo_sql}, hi = {hi_sql}")
    conn.execute("ANALYZE rollup_range")
    # One ordered range scan of the (point_id, ts) primary key per point, no sort: the planner
    # would otherwise pick a bitmap scan plus a sort per point, or the ts index for a full run.
    conn.execute("SET LOCAL enable_bitmapscan = off")
    sql = """
        SELECT g.point_id, a.n, a.ts, a.value, a.suspect
        FROM (SELECT point_id, lo, hi FROM rollup_range ORDER BY point_id) g
        CROSS JOIN LATERAL (
            SELECT count(*) AS n, string_agg(timestamptz_send(r.ts), ''::bytea) AS ts,
                   string_agg(float8send(r.value), ''::bytea) AS value,
                   string_agg(boolsend(r.quality = 1), ''::bytea) AS suspect
            FROM (SELECT ts, value, quality FROM reading r
                  WHERE r.point_id = g.point_id AND (r.point_id, r.ts) >= (g.point_id, g.lo)
                    AND (r.point_id, r.ts) <= (g.point_id, g.hi) AND r.quality < 2
                  ORDER BY r.point_id, r.ts) r) a
        WHERE a.n > 0
        ORDER BY g.point_id"""
    with conn.cursor(binary=True) as cur:
        for pid, n, ts, value, suspect in cur.stream(sql):
            us = np.frombuffer(ts, ">i8").astype(np.int64) + PG_EPOCH_US
            v = np.frombuffer(value, ">f8").astype(np.float64)
            sus = np.frombuffer(suspect, np.uint8).astype(bool)
            if not (len(us) == len(v) == len(sus) == n):
                raise RuntimeError(f"point {pid}: {n} readings but columns of {len(us)}, {len(v)}, {len(sus)}")
            if n > 1 and not (np.diff(us) > 0).all():  # the scan gave another order: sort by time
                k = np.argsort(us, kind="stable")
                us, v, sus = us[k], v[k], sus[k]
            yield PointReadings(pid, us, v, sus)


#: one staged interval in PostgreSQL's binary COPY format: 5 fields, each its length and big-endian value
_STAGE_ROW = np.dtype([("fields", ">i2"), ("l_point", ">i4"), ("point", ">i8"), ("l_start", ">i4"), ("start", ">i8"),
                       ("l_wh", ">i4"), ("wh", ">i8"), ("l_est", ">i4"), ("est", "u1"), ("l_sus", ">i4"), ("sus", "u1")])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_COPY_TRAILER = b"\xff\xff"


def _nested_loops(cur: psycopg.Cursor, only: bool) -> None:
    """Plan the next statements as nested loops (``only``) or as the planner likes (until the
    transaction ends, as ``SET LOCAL``)."""
    on = "off" if only else "on"
    cur.execute("SELECT set_config('enable_hashjoin', %s, true), set_config('enable_mergejoin', %s, true)", (on, on))


def _copy_data(parts: list[tuple[int, IntervalColumns]]) -> bytes:
    """The binary COPY data of ``rollup_stage`` rows (point_id, bucket_start, energy_wh, estimated,
    suspect) for intervals of points, made by numpy."""
    rows = np.empty(sum(len(c) for _, c in parts), _STAGE_ROW)
    rows["fields"] = 5
    for name, size in (("l_point", 8), ("l_start", 8), ("l_wh", 8), ("l_est", 1), ("l_sus", 1)):
        rows[name] = size
    k = 0
    for pid, c in parts:
        n = len(c)
        rows["point"][k:k + n] = pid
        rows["start"][k:k + n] = c.start_us - PG_EPOCH_US
        rows["wh"][k:k + n] = c.energy_wh
        rows["est"][k:k + n] = c.estimated
        rows["sus"][k:k + n] = c.suspect
        k += n
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


class IntervalWriter:
    """Stages computed intervals and the rollup's counter findings and merges them into
    ``interval_energy`` and ``finding`` in the caller's transaction.

    Usage: ``add`` the intervals and findings of each point with the range they recompute, and
    ``finish`` once to refresh the hourly and daily sums and advance the watermarks; points are
    merged in batches of about ``batch_rows`` intervals (bounded memory), a few statements a batch
    whatever the number of points. Nothing is visible to others before the caller commits.
    """

    def __init__(self, conn: psycopg.Connection, *, batch_rows: int = 50_000) -> None:
        self.conn = conn
        self.batch_rows = batch_rows
        self.parts: list[tuple[int, IntervalColumns]] = []
        self.rows = 0
        self.ranges: list[tuple[int, datetime | None, datetime | None, datetime | None, datetime | None]] = []
        self.findings: list[tuple[int, str, datetime, str]] = []
        self.marks: dict[int, datetime] = {}
        self.stats = MergeStats()
        # sorts and hashes over a batch or the changed buckets stay in memory
        conn.execute("SET LOCAL work_mem = '64MB'")
        conn.execute("SET LOCAL jit = off")
        conn.execute("""CREATE TEMP TABLE IF NOT EXISTS rollup_stage (
                            point_id bigint, bucket_start timestamptz, energy_wh bigint,
                            estimated boolean, suspect boolean)""")
        # each point's recomputed range and its first and last staged interval (none: NULL)
        conn.execute("""CREATE TEMP TABLE IF NOT EXISTS rollup_stage_range (
                            point_id bigint, since timestamptz, until timestamptz,
                            first_start timestamptz, last_start timestamptz)""")
        conn.execute("""CREATE TEMP TABLE IF NOT EXISTS rollup_stage_finding (
                            seq int, point_id bigint, kind text, ts timestamptz, detail text)""")
        conn.execute("""CREATE TEMP TABLE IF NOT EXISTS rollup_changed (
                            point_id bigint, bucket_start timestamptz)""")
        conn.execute("TRUNCATE rollup_stage, rollup_stage_range, rollup_stage_finding, rollup_changed")

    def add(self, point_id: int, since: datetime | None, until: datetime | None, intervals: IntervalColumns,
            last_reading_ts: datetime | None, findings: Sequence[CounterFinding] = ()) -> None:
        """Intervals that replace [since, until) of a point, and its counter findings there (those
        outside the range are left out: the range's stored findings are replaced by them).

        The intervals of a point are consecutive quarter hours (one for each from its first
        reading's to its last's, :func:`metrics.intervals.counter_intervals`), so the stored
        intervals of the range that are not among them are those before the first or after the
        last; a gap among them is refused (``ValueError``)."""
        first = last = None
        if len(intervals):
            starts = intervals.start_us
            if not (np.diff(starts) == INTERVAL_S * 1_000_000).all():
                raise ValueError(f"point {point_id}: intervals are not consecutive quarter hours")
            first, last = utc_times(starts[[0, -1]])
            self.parts.append((point_id, intervals))
            self.rows += len(intervals)
        self.ranges.append((point_id, since, until, first, last))
        for f in findings:
            if (since is None or f.ts >= since) and (until is None or f.ts < until):
                self.findings.append((point_id, f.kind, f.ts, f.detail))
        if last_reading_ts is not None:
            prev = self.marks.get(point_id)
            self.marks[point_id] = last_reading_ts if prev is None else max(prev, last_reading_ts)
        if self.rows >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self.ranges:
            return
        with self.conn.cursor() as cur:
            with cur.copy("COPY rollup_stage FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(_copy_data(self.parts))
            with cur.copy("COPY rollup_stage_range FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "timestamptz", "timestamptz", "timestamptz", "timestamptz"])
                for row in self.ranges:
                    copy.write_row(row)
            if self.findings:
                with cur.copy("COPY rollup_stage_finding FROM STDIN") as copy:
                    for k, row in enumerate(self.findings):
                        copy.write_row((k, *row))
            # the planner needs the row count: unanalysed, the ranges were merge-joined with the whole
            # of interval_energy from its first point on, once a batch (quadratic in a run)
            cur.execute("ANALYZE rollup_stage_range")
            cur.execute("""
                WITH up AS (
                    INSERT INTO interval_energy AS t (point_id, bucket_start, energy_wh, estimated, suspect)
                    SELECT point_id, bucket_start, energy_wh, estimated, suspect FROM rollup_stage
                    ON CONFLICT (point_id, bucket_start) DO UPDATE
                        SET energy_wh = EXCLUDED.energy_wh, estimated = EXCLUDED.estimated,
                            suspect = EXCLUDED.suspect, computed_at = now()
                        WHERE (t.energy_wh, t.estimated, t.suspect)
                              IS DISTINCT FROM (EXCLUDED.energy_wh, EXCLUDED.estimated, EXCLUDED.suspect)
                    RETURNING t.point_id, t.bucket_start)
                INSERT INTO rollup_changed SELECT * FROM up""")
            self.stats.intervals_written += cur.rowcount
            # intervals the recomputed range no longer has (a reading removed or re-timed): those
            # before its first staged interval and after its last (all of it when none), two key
            # ranges a point that touch only the rows deleted. A nested loop over the ranges, each an
            # index range scan: within a run the planner does not see the rows the run inserted, and
            # hashed a sequential scan of the whole table once a batch (quadratic in a run)
            _nested_loops(cur, True)
            cur.execute("""
                WITH gone AS (
                    DELETE FROM interval_energy t USING (
                        SELECT point_id, coalesce(since, '-infinity') AS lo,
                               coalesce(first_start, until, 'infinity') AS hi
                        FROM rollup_stage_range
                        UNION ALL
                        SELECT point_id, last_start + interval '1 microsecond', coalesce(until, 'infinity')
                        FROM rollup_stage_range WHERE last_start IS NOT NULL) g
                    WHERE t.point_id = g.point_id AND t.bucket_start >= g.lo AND t.bucket_start < g.hi
                    RETURNING t.point_id, t.bucket_start)
                INSERT INTO rollup_changed SELECT * FROM gone""")
            self.stats.intervals_deleted += cur.rowcount
            # the range's counter findings (the figures' evidence): replaced by the run's
            cur.execute("""
                DELETE FROM finding f USING rollup_stage_range g
                WHERE f.origin = 'rollup' AND f.point_id = g.point_id
                  AND f.opened_at >= coalesce(g.since, '-infinity') AND f.opened_at < coalesce(g.until, 'infinity')""")
            _nested_loops(cur, False)
            if self.findings:
                # one findings table (model/findings.py): origin 'rollup', an event at the reading's time
                cur.execute("""
                    INSERT INTO finding (origin, kind, device_id, point_id, opened_at, closed_at, last_seen, data)
                    SELECT 'rollup', s.kind, p.device_id, s.point_id, s.ts, s.ts, s.ts, jsonb_build_object('text', s.detail)
                    FROM rollup_stage_finding s JOIN point p USING (point_id) ORDER BY s.seq""")
            cur.execute("TRUNCATE rollup_stage, rollup_stage_range, rollup_stage_finding")
        self.parts.clear()
        self.rows = 0
        self.ranges.clear()
        self.findings.clear()

    def finish(self) -> MergeStats:
        """Refresh the sums of the changed buckets (plain mode) and advance the watermarks."""
        self.flush()
        conn = self.conn
        span = conn.execute("SELECT min(bucket_start), max(bucket_start) FROM rollup_changed").fetchone()
        if span[0] is not None:
            self.stats.changed_range = (span[0], span[1])
            self.stats.changed_points = {r[0] for r in conn.execute("SELECT DISTINCT point_id FROM rollup_changed")}
            # the same counts in both storage modes: the hours and local days whose intervals changed
            self.stats.hours_changed, self.stats.days_changed = changed_buckets(conn)
            if storage_mode(conn) == "postgresql":
                _refresh_buckets(conn)
        if self.marks:
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO rollup_watermark (point_id, last_reading_ts) VALUES (%s, %s)
                       ON CONFLICT (point_id) DO UPDATE
                       SET last_reading_ts = greatest(rollup_watermark.last_reading_ts, EXCLUDED.last_reading_ts),
                           rolled_at = now()""",
                    list(self.marks.items()),
                )
        return self.stats


def changed_buckets(conn: psycopg.Connection) -> tuple[int, int]:
    """Fill the temp tables ``rollup_hours`` (point, UTC hour) and ``rollup_days`` (point, local
    midnight of its enterprise, time zone) with the buckets of the intervals in ``rollup_changed``;
    returns how many of each."""
    conn.execute(f"""
        CREATE TEMP TABLE IF NOT EXISTS rollup_hours (point_id bigint, bucket_start timestamptz);
        CREATE TEMP TABLE IF NOT EXISTS rollup_days (point_id bigint, bucket_start timestamptz, tz text);
        TRUNCATE rollup_hours, rollup_days;
        INSERT INTO rollup_hours
            SELECT DISTINCT point_id, date_bin('1 hour', bucket_start, {EPOCH_SQL}) FROM rollup_changed;
        INSERT INTO rollup_days
            SELECT DISTINCT c.point_id, date_trunc('day', c.bucket_start, z.tz), z.tz
            FROM rollup_changed c JOIN (
                SELECT p.point_id, e.timezone AS tz
                FROM point p JOIN device d USING (device_id) JOIN site s USING (site_id)
                JOIN enterprise e USING (enterprise_id)
                WHERE p.point_id IN (SELECT point_id FROM rollup_hours)) z USING (point_id);
        ANALYZE rollup_hours, rollup_days""")
    return conn.execute("SELECT (SELECT count(*) FROM rollup_hours), (SELECT count(*) FROM rollup_days)").fetchone()


def refresh_sums(conn: psycopg.Connection) -> tuple[int, int]:
    """Plain PostgreSQL mode: recompute the hourly and daily sums of the buckets in rollup_changed.

    Returns how many hourly and daily rows changed.
    """
    changed_buckets(conn)
    return _refresh_buckets(conn)


def _refresh_buckets(conn: psycopg.Connection) -> tuple[int, int]:
    """Recompute the hourly and daily sums of the buckets in ``rollup_hours`` and ``rollup_days``
    (:func:`changed_buckets`): upsert those that still have intervals, delete those that have none.

    Each bucket's sums are one aggregate over its own range of the ``interval_energy`` key (a
    lateral subquery, which the planner cannot turn into a join): the work is the changed
    intervals, whatever the number of buckets or the intervals a point has elsewhere. Joined
    instead, the planner hashed or merged on the point alone with the range as a filter (buckets ×
    intervals of the point: quadratic in a point's history)."""
    with conn.cursor() as cur:
        cur.execute("""
            CREATE TEMP TABLE IF NOT EXISTS rollup_sums (
                point_id bigint, bucket_start timestamptz, day date, energy_wh bigint, intervals int,
                estimated_intervals int, suspect_intervals int);
            TRUNCATE rollup_sums""")
        cur.execute("""
            INSERT INTO rollup_sums
            SELECT h.point_id, h.bucket_start, NULL, a.*
            FROM rollup_hours h CROSS JOIN LATERAL (
                SELECT sum(i.energy_wh)::bigint, count(*)::int, (count(*) FILTER (WHERE i.estimated))::int,
                       (count(*) FILTER (WHERE i.suspect))::int
                FROM interval_energy i
                WHERE i.point_id = h.point_id AND i.bucket_start >= h.bucket_start
                  AND i.bucket_start < h.bucket_start + interval '1 hour') a""")
        cur.execute("ANALYZE rollup_sums")
        cur.execute("""
            INSERT INTO energy_hourly AS t (point_id, bucket_start, energy_wh, intervals, estimated_intervals, suspect_intervals)
            SELECT point_id, bucket_start, energy_wh, intervals, estimated_intervals, suspect_intervals
            FROM rollup_sums WHERE intervals > 0
            ON CONFLICT (point_id, bucket_start) DO UPDATE
                SET energy_wh = EXCLUDED.energy_wh, intervals = EXCLUDED.intervals,
                    estimated_intervals = EXCLUDED.estimated_intervals, suspect_intervals = EXCLUDED.suspect_intervals
                WHERE (t.energy_wh, t.intervals, t.estimated_intervals, t.suspect_intervals) IS DISTINCT FROM
                      (EXCLUDED.energy_wh, EXCLUDED.intervals, EXCLUDED.estimated_intervals, EXCLUDED.suspect_intervals)""")
        hours = cur.rowcount
        cur.execute("""
            DELETE FROM energy_hourly t USING rollup_sums s
            WHERE s.intervals = 0 AND t.point_id = s.point_id AND t.bucket_start = s.bucket_start""")
        hours += cur.rowcount
        cur.execute("TRUNCATE rollup_sums")
        cur.execute("""
            INSERT INTO rollup_sums
            SELECT d.point_id, d.bucket_start, (d.bucket_start AT TIME ZONE d.tz)::date, a.*
            FROM rollup_days d CROSS JOIN LATERAL (
                SELECT sum(i.energy_wh)::bigint, count(*)::int, (count(*) FILTER (WHERE i.estimated))::int,
                       (count(*) FILTER (WHERE i.suspect))::int
                FROM interval_energy i
                WHERE i.point_id = d.point_id AND i.bucket_start >= d.bucket_start
                  AND i.bucket_start < d.bucket_start + interval '26 hours'
                  AND date_trunc('day', i.bucket_start, d.tz) = d.bucket_start) a""")
        cur.execute("ANALYZE rollup_sums")
        cur.execute("""
            INSERT INTO energy_daily AS t (point_id, bucket_start, day, energy_wh, intervals, estimated_intervals, suspect_intervals)
            SELECT point_id, bucket_start, day, energy_wh, intervals, estimated_intervals, suspect_intervals
            FROM rollup_sums WHERE intervals > 0
            ON CONFLICT (point_id, bucket_start) DO UPDATE
                SET energy_wh = EXCLUDED.energy_wh, intervals = EXCLUDED.intervals,
                    estimated_intervals = EXCLUDED.estimated_intervals, suspect_intervals = EXCLUDED.suspect_intervals
                WHERE (t.energy_wh, t.intervals, t.estimated_intervals, t.suspect_intervals) IS DISTINCT FROM
                      (EXCLUDED.energy_wh, EXCLUDED.intervals, EXCLUDED.estimated_intervals, EXCLUDED.suspect_intervals)""")
        days = cur.rowcount
        cur.execute("""
            DELETE FROM energy_daily t USING rollup_sums s
            WHERE s.intervals = 0 AND t.point_id = s.point_id AND t.bucket_start = s.bucket_start""")
        days += cur.rowcount
    return hours, days


def refresh_continuous_aggregate(url: str, start: datetime, end: datetime) -> None:
    """TimescaleDB mode: materialise the hourly aggregate over a changed range (needs autocommit)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CALL refresh_continuous_aggregate('energy_hourly', %s, %s)", (start, end))


def interval_rows(conn: psycopg.Connection, point_ids: list[int], start: datetime, end: datetime):
    """Stored interval energy of points for intervals starting in [start, end), in point and time order."""
    return conn.execute(
        """SELECT point_id, bucket_start, energy_wh, estimated FROM interval_energy
           WHERE point_id = ANY(%s) AND bucket_start >= %s AND bucket_start < %s
           ORDER BY point_id, bucket_start""",
        (point_ids, start, end),
    ).fetchall()
