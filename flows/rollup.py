"""Raw readings -> 15-minute interval energy per counter point -> hourly and daily sums.

Incremental: each point is recomputed from its watermark (the newest reading already rolled up)
minus a trailing window, and from further back when a late reading marked it (``rollup_dirty``,
set by :mod:`store.ingest` for a reading older than the watermark, whatever its age: an import of
history, a gateway's backlog, a spool replayed after a long outage); the mark is cleared in the
run's transaction. A rerun with no new readings changes nothing. A whole run is
one transaction: a failed run leaves the previous rollup in place. A backfill (``start``/``end``)
recomputes exactly that range and leaves the watermarks alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
from prefect import flow, get_run_logger

from flows.tasks import io_task, resolve_url
from accounting.site_energy import CounterSettings, counter_settings
from metrics.counters import CounterFinding
from metrics.intervals import INTERVAL_S, IntervalColumns, counter_interval_columns, floor_interval
from store.db import storage_mode
from store.rollups import (IntervalWriter, PointReadings, clear_dirty, counter_points, dirty_marks,
                           refresh_continuous_aggregate, settled_since, stream_readings, watermarks)

#: how far back each incremental run recomputes, before the newest reading already rolled up
TRAILING_WINDOW = timedelta(hours=2)
_STEP = timedelta(seconds=INTERVAL_S)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
#: finding kinds of a reading the counter skipped (metrics/counters.py): it moves no energy
NOT_USED = ("counter_outlier", "counter_drop_provisional", "counter_rise_provisional")


@dataclass
class RollupResult:
    points: int
    readings: int
    intervals_written: int
    intervals_deleted: int
    hours_changed: int
    days_changed: int
    counter_findings: int
    changed_from: datetime | None
    changed_to: datetime | None

    @property
    def changed(self) -> bool:
        return bool(self.intervals_written or self.intervals_deleted)


def compute_intervals(
    r: PointReadings, since: datetime | None, until: datetime | None, settings: CounterSettings | None = None,
) -> tuple[list[tuple[datetime, int, bool, bool]], list[CounterFinding]]:
    """Interval rows (start, energy_wh, estimated, suspect) of one point for [since, until):
    :func:`point_columns` as rows."""
    cols, findings = point_columns(r, since, until, settings)
    return [(iv.start, iv.energy_wh, iv.estimated, iv.suspect) for iv in cols.intervals()], findings


def point_columns(
    r: PointReadings, since: datetime | None, until: datetime | None, settings: CounterSettings | None = None,
) -> tuple[IntervalColumns, list[CounterFinding]]:
    """The intervals of one point starting in [since, until), as columns, and its findings.

    The same path as the report (:func:`metrics.intervals.counter_intervals`, here on columns:
    :func:`metrics.intervals.counter_interval_columns`), with the point's wrap width, recorded
    replacements and rated power (``settings``; none when omitted): outliers skipped, wraps and
    replacements bridged. An interval is suspect when a spike (a step above the rated power)
    overlaps it or a suspect-quality reading took part in interpolating it (one the counter
    skipped, e.g. the collector's suspect zero judged an outlier, took part in nothing).
    """
    st = settings or CounterSettings()
    cols, findings = counter_interval_columns(
        r.us, r.values, rollover_wh=st.rollover_wh, replacements=st.replacements, rated_power_w=st.rated_power_w,
        max_gap_s=st.max_gap_s, resolutions=st.resolutions)
    suspect = cols.suspect
    if r.suspect.any() and len(cols):
        # a reading the counter did not use (an outlier, a provisional drop or rise: its finding says
        # so) interpolates nothing, so a suspect glitch taints no interval; a used suspect reading
        # taints the intervals from the used reading before it to the used reading after it
        used = np.ones(len(r.us), dtype=bool)
        skipped = [f.ts for f in findings if f.kind in NOT_USED]
        if skipped:
            used &= ~np.isin(r.us, [_us(t) for t in skipped])
        t, sus = r.us[used], r.suspect[used]
        k = np.flatnonzero(sus)
        lo = _floor_us(t[np.maximum(k - 1, 0)])
        hi = _floor_us(t[np.minimum(k + 1, len(t) - 1)])
        # every interval start in [lo, hi] of each suspect reading: +1 at the first, -1 after the last
        marks = np.zeros(len(cols) + 1, dtype=np.int64)
        np.add.at(marks, np.searchsorted(cols.start_us, lo, side="left"), 1)
        np.add.at(marks, np.searchsorted(cols.start_us, hi, side="right"), -1)
        suspect = suspect | (np.cumsum(marks[:-1]) > 0)
    keep = np.ones(len(cols), dtype=bool)
    if since is not None:
        keep &= cols.start_us >= _us(since)
    if until is not None:
        keep &= cols.start_us < _us(until)
    return IntervalColumns(cols.start_us[keep], cols.energy_wh[keep], cols.estimated[keep], suspect[keep]), findings


def _us(t: datetime) -> int:
    """A timezone-aware time in microseconds since the Unix epoch."""
    return (t - _EPOCH) // _MICROSECOND


def _floor_us(us: np.ndarray) -> np.ndarray:
    step = INTERVAL_S * 1_000_000
    return (us // step) * step


def _ceil_interval(ts: datetime) -> datetime:
    f = floor_interval(ts)
    return f if f == ts else f + _STEP


def _incremental_since(mark: datetime | None, dirty, trailing_window: timedelta) -> datetime | None:
    """Where an incremental run recomputes a point from: None (the first reading) when never
    rolled up or when a late reading precedes all but two of its readings."""
    if mark is None:
        return None
    since = floor_interval(mark - trailing_window)
    if dirty is not None:
        if dirty.context_ts is None:
            return None
        since = min(since, floor_interval(dirty.context_ts))
    return since


def rollup(
    url: str,
    *,
    enterprise: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    trailing_window: timedelta = TRAILING_WINDOW,
    on_point: Callable[[int, int, int], None] | None = None,
) -> RollupResult:
    """Roll up every counter point (of ``enterprise``, or all), in one transaction.

    Without ``start``/``end``: incremental from each point's watermark minus ``trailing_window``
    (from the first reading for a point never rolled up), or from its late-data mark when that is
    earlier (readings before the earliest late reading: see :data:`store.rollups.CONTEXT_READINGS`),
    and further back to the last steady stretch before that (:func:`store.rollups.settled_since`:
    the intervals the new readings can change); the marks recomputed are cleared in the same
    transaction. With them: recompute the intervals
    starting in [start, end) (a backfill), watermarks untouched.
    ``on_point(done, total, readings)`` is called after each point, for progress display.
    """
    if (start is None) != (end is None):
        raise ValueError("give both start and end for a range, or neither for an incremental run")
    with psycopg.connect(url) as read, psycopg.connect(url) as write:
        points = counter_points(read, enterprise)
        ids = [p.point_id for p in points]
        dirty = {}
        if start is not None:
            lo, hi = floor_interval(start), _ceil_interval(end)
            ranges = {pid: (lo, hi) for pid in ids}
        else:
            marks = watermarks(read, ids)
            dirty = dirty_marks(read, ids)
            naive = {pid: _incremental_since(marks.get(pid), dirty.get(pid), trailing_window) for pid in ids}
            # back to where the new readings' influence ends: a run of glitches they resolve, or a
            # reading they make a glitch, may lie before the window (store.rollups.settled_since)
            # (a stretch wholly before `since`: its middle is earlier, so it is where the run starts)
            settled = settled_since(read, {pid: t for pid, t in naive.items() if t is not None})
            ranges = {pid: (None if settled.get(pid) is None else floor_interval(settled[pid]), None) for pid in ids}
        settings = counter_settings(read, ids)
        readings = findings = done = 0
        with write.transaction():
            # one rollup at a time per database; a second waits for the first to commit
            write.execute("SELECT pg_advisory_xact_lock(hashtext('greengauge.flows.rollup'))")
            writer = IntervalWriter(write)
            for r in stream_readings(read, ranges):
                since, until = ranges[r.point_id]
                cols, f = point_columns(r, since, until, settings[r.point_id])
                readings += len(r.us)
                findings += len(f)
                # the intervals and the counter findings (the figures' evidence) of the range
                writer.add(r.point_id, since, until, cols, r.last_ts if start is None else None, f)
                done += 1
                if on_point:
                    on_point(done, len(ids), len(r.us))
            stats = writer.finish()
            clear_dirty(write, list(dirty.values()))
        read.rollback()
        mode = storage_mode(read)
    if mode == "timescaledb" and stats.changed_range:
        lo_c, hi_c = stats.changed_range
        refresh_continuous_aggregate(url, lo_c - timedelta(hours=1), hi_c + timedelta(hours=1))
    lo_c, hi_c = stats.changed_range or (None, None)
    return RollupResult(len(ids), readings, stats.intervals_written, stats.intervals_deleted,
                        stats.hours_changed, stats.days_changed, findings, lo_c, hi_c)


@io_task(task_run_name="rollup-points")
def rollup_points(url: str, enterprise: str | None = None, start: datetime | None = None,
                  end: datetime | None = None, trailing_window_s: int = int(TRAILING_WINDOW.total_seconds())
                  ) -> RollupResult:
    return rollup(url, enterprise=enterprise, start=start, end=end,
                  trailing_window=timedelta(seconds=trailing_window_s))


@flow(name="rollup")
def rollup_flow(database_url: str | None = None, enterprise: str | None = None,
                trailing_window_s: int = int(TRAILING_WINDOW.total_seconds())) -> RollupResult:
    """Roll readings up to interval energy and hourly/daily sums, incrementally."""
    result = rollup_points(resolve_url(database_url), enterprise, trailing_window_s=trailing_window_s)
    get_run_logger().info(
        "rollup: %d points, %d readings, %d intervals written, %d deleted, %d hourly and %d daily sums changed",
        result.points, result.readings, result.intervals_written, result.intervals_deleted,
        result.hours_changed, result.days_changed)
    return result
