"""Data-quality findings, opened and closed with times, for dashboards and alerts.

- ``stale_device``: no reading from a device for more than 3 poll intervals (opened at its last
  reading, closed at the first reading after it);
- ``gap``: a point's readings more than 3 poll intervals apart (from the reading before to the one after);
- ``counter_drop``: a counter fell (the rollup treats it as a reset; nothing recorded explains it yet);
- ``spike``: a run of suspect readings (the collector marks values out of the profile's range or
  implying power above the rating as suspect);
- ``clock_skew``: the median delay from a live reading's timestamp to its arrival is beyond
  tolerance (device clock behind), or negative beyond 60 s (device clock ahead);
- ``low_completeness``: usable readings in the trailing window below a share of those expected.

Each is a :class:`model.findings.Finding` in the one ``finding`` table, with its values as data
(no sentence: ``greengauge/findings_text.py`` makes the text). All of a run's changes are written
in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import psycopg
from prefect import flow, get_run_logger

from flows.tasks import io_task, resolve_url
from store import findings as F

STALE_POLLS = 3
WINDOW = timedelta(hours=24)
COMPLETENESS = 0.9
SKEW_TOLERANCE_S = 300.0
AHEAD_TOLERANCE_S = 60.0


@dataclass
class QualityResult:
    opened: list[tuple] = field(default_factory=list)  # (kind, device_id, point_id, opened_at)
    closed: list[tuple] = field(default_factory=list)  # (kind, device_id, point_id, closed_at)

    def follow(self, conn: psycopg.Connection, kind: str, device_id: int, point_id: int | None,
               open_finding, holds: bool, opened_at: datetime, closed_at: datetime, data) -> None:
        """A state finding follows its condition: opened at ``opened_at`` when it starts to hold,
        closed at ``closed_at`` when it stops; ``data()`` (its values) is only built when one is opened."""
        if holds and open_finding is None:
            if F.open_state(conn, kind, device_id, point_id, opened_at, data()):
                self.opened.append((kind, device_id, point_id, opened_at))
        elif not holds and open_finding is not None:
            F.close_state(conn, open_finding.finding_id, closed_at)
            self.closed.append((kind, device_id, point_id, closed_at))


def check(url: str, as_of: datetime, *, enterprise: str | None = None, window: timedelta = WINDOW,
          completeness: float = COMPLETENESS, skew_tolerance_s: float = SKEW_TOLERANCE_S,
          now: datetime | None = None) -> QualityResult:
    """Find, open and close every kind of finding as of ``as_of`` (data time); ``now`` (wall
    clock, default now) bounds the live readings the clock check looks at."""
    res = QualityResult()
    start = as_of - window
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('greengauge.flows.quality'))")

        # stale devices: state
        open_stale = F.open_states(conn, "stale_device")
        for d in F.device_last_readings(conn, as_of, enterprise):
            f = open_stale.get((d.device_id, None))
            if f is not None:
                back = F.first_reading_after(conn, d.device_id, f.opened_at, as_of)
                if back is not None:
                    F.close_state(conn, f.finding_id, back)
                    res.closed.append(("stale_device", d.device_id, None, back))
                    f = None
            if d.last_ts is not None and as_of - d.last_ts > timedelta(seconds=STALE_POLLS * d.poll_interval_s) \
                    and f is None:
                if F.open_state(conn, "stale_device", d.device_id, None, d.last_ts,
                                {"last_reading": d.last_ts.isoformat(), "polls": STALE_POLLS,
                                 "poll_interval_s": d.poll_interval_s}):
                    res.opened.append(("stale_device", d.device_id, None, d.last_ts))

        # events
        for pid, did, before, after in F.gaps(conn, start, as_of, STALE_POLLS, enterprise):
            if F.record_event(conn, "gap", did, pid, before, after,
                              {"from": before.isoformat(), "to": after.isoformat()}):
                res.opened.append(("gap", did, pid, before))
        for pid, did, ts, prev_v, v in F.counter_drops(conn, start, as_of, enterprise):
            if F.record_event(conn, "counter_drop", did, pid, ts, ts, {"from_wh": prev_v, "to_wh": v}):
                res.opened.append(("counter_drop", did, pid, ts))
        for pid, did, first, last, n in F.suspect_runs(conn, start, as_of, enterprise):
            if F.record_event(conn, "spike", did, pid, first, last, {"readings": n}):
                res.opened.append(("spike", did, pid, first))

        # clock skew: state, from live readings only
        wall = now or datetime.now(timezone.utc)
        open_skew = F.open_states(conn, "clock_skew")
        offsets = {did: (med, n) for did, med, n in F.clock_offsets(conn, wall - timedelta(hours=1), enterprise)}
        for did, (med, n) in offsets.items():
            res.follow(conn, "clock_skew", did, None, open_skew.get((did, None)),
                       med > skew_tolerance_s or med < -AHEAD_TOLERANCE_S, wall, wall,
                       lambda med=med, n=n: {"median_delay_s": round(med), "readings": n,
                                             "tolerance_s": skew_tolerance_s, "ahead_tolerance_s": AHEAD_TOLERANCE_S})

        # completeness: state over the trailing window
        open_low = F.open_states(conn, "low_completeness")
        for pid, did, got, expected in F.completeness(conn, start, as_of, enterprise):
            res.follow(conn, "low_completeness", did, pid, open_low.get((did, pid)),
                       expected > 0 and got < completeness * expected, start, as_of,
                       lambda got=got, expected=expected: {"readings": got, "expected": expected,
                                                           "window_h": window.total_seconds() / 3600,
                                                           "until": as_of.isoformat(), "threshold": completeness})
    return res


check_task = io_task(check, task_run_name="data-quality-check")


@flow(name="data-quality")
def quality_flow(database_url: str | None = None, enterprise: str | None = None, as_of: datetime | None = None,
                 window_h: float = WINDOW.total_seconds() / 3600, completeness: float = COMPLETENESS) -> QualityResult:
    """Open and close data-quality findings."""
    now = datetime.now(timezone.utc)
    res = check_task(resolve_url(database_url), as_of or now, enterprise=enterprise,
                     window=timedelta(hours=window_h), completeness=completeness)
    get_run_logger().info("data quality: %d findings opened or extended, %d closed", len(res.opened), len(res.closed))
    return res
