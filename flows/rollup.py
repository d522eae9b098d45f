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
from datetime import datetime, timedelta

import psycopg
from prefect import flow, get_run_logger

from flows.tasks import io_task, resolve_url
from accounting.site_energy import CounterSettings, counter_settings, settings_intervals
from metrics.counters import CounterFinding
from metrics.intervals import INTERVAL_S, floor_interval
from store.bundle import write_counter_findings
from store.db import storage_mode
from store.rollups import (IntervalWriter, PointReadings, clear_dirty, counter_points, dirty_marks,
                           refresh_continuous_aggregate, stream_readings, watermarks)

#: how far back each incremental run recomputes, before the newest reading already rolled up
TRAILING_WINDOW = timedelta(hours=2)
_STEP = timedelta(seconds=INTERVAL_S)
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
    """Interval rows (start, energy_wh, estimated, suspect) of one point for [since, until).

    The same path as the report (:func:`accounting.site_energy.settings_intervals`), with the point's
    wrap width, recorded replacements and rated power (``settings``; none when omitted): outliers
    skipped, wraps and replacements bridged. An interval is suspect when a spike (a step above the
    rated power) overlaps it or a suspect-quality reading took part in interpolating it (one the
    counter skipped, e.g. the collector's suspect zero judged an outlier, took part in nothing).
    """
    ivs, findings = settings_intervals(r.ts, r.values, settings or CounterSettings())
    # a reading the counter did not use (an outlier, a provisional drop or rise: its finding says
    # so) interpolates nothing, so a suspect glitch taints no interval; a used suspect reading
    # taints the intervals from the used reading before it to the used reading after it
    unused = {f.ts for f in findings if f.kind in NOT_USED}
    used = [i for i, t in enumerate(r.ts) if t not in unused]
    suspect: set[datetime] = set()
    for k, i in enumerate(used):
        if r.suspect[i]:
            t = floor_interval(r.ts[used[max(k - 1, 0)]])
            hi = floor_interval(r.ts[used[min(k + 1, len(used) - 1)]])
            while t <= hi:
                suspect.add(t)
                t += _STEP
    rows = [(iv.start, iv.energy_wh, iv.estimated, iv.suspect or iv.start in suspect) for iv in ivs
            if (since is None or iv.start >= since) and (until is None or iv.start < until)]
    return rows, findings


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
    itersize: int = 50_000,
) -> RollupResult:
    """Roll up every counter point (of ``enterprise``, or all), in one transaction.

    Without ``start``/``end``: incremental from each point's watermark minus ``trailing_window``
    (from the first reading for a point never rolled up), or from its late-data mark when that is
    earlier (three readings before the earliest late reading: see
    :data:`store.rollups.CONTEXT_READINGS`); the marks recomputed are cleared in the same transaction. With them: recompute the intervals
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
            ranges = {pid: (_incremental_since(marks.get(pid), dirty.get(pid), trailing_window), None)
                      for pid in ids}
        settings = counter_settings(read, ids)
        readings = findings = done = 0
        with write.transaction():
            # one rollup at a time per database; a second waits for the first to commit
            write.execute("SELECT pg_advisory_xact_lock(hashtext('greengauge.flows.rollup'))")
            writer = IntervalWriter(write)
            for r in stream_readings(read, ranges, itersize=itersize):
                since, until = ranges[r.point_id]
                rows, f = compute_intervals(r, since, until, settings[r.point_id])
                readings += len(r.ts)
                findings += len(f)
                writer.add(r.point_id, since, until, rows, r.ts[-1] if start is None else None)
                write_counter_findings(write, r.point_id, since, until, f)  # the figures' evidence
                done += 1
                if on_point:
                    on_point(done, len(ids), len(r.ts))
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
