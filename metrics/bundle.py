"""What every figure of one enterprise and period is computed from: one typed bundle.

``store.bundle.load_enterprise_period`` fills it in one pass (time zone, points with roles,
projects, ledger, facts, the stored interval energy with its estimated/suspect flags, the counter
findings the rollup recorded); the pure functions of :mod:`metrics.figures` and the policy engine
compute every figure from it. The flows write what they compute; ``greengauge report …`` calls the
same functions on a bundle loaded the same way, so the stored result and the report agree
(docs/accounting.md "One path").

Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from metrics.counters import CounterFinding, MeterReplacement
from metrics.intervals import INTERVAL_S, IntervalEnergy, Resolution, floor_interval
from metrics.ledger import CertificateBlock, Trade


@dataclass(frozen=True)
class Point:
    """A metered point of the enterprise, with what shapes its energy."""

    point_id: int
    name: str
    device: str
    quantity: str
    role: str | None
    subproject: str | None
    rated_power_w: int | None  #: [W]
    rollover_wh: float | None = None  #: counter wrap width [Wh], None when unknown
    poll_interval_s: float | None = None  #: the device's poll interval [s]


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_s(t: datetime) -> int:
    """Whole seconds since the Unix epoch of an aware time."""
    return (t - _EPOCH) // timedelta(seconds=1)


def from_epoch_s(s: int) -> datetime:
    return _EPOCH + timedelta(seconds=int(s))


@dataclass(frozen=True)
class PointSeries:
    """One point's stored intervals as columns, in time order: interval starts [s since the Unix
    epoch], energy [Wh] (int64, exact), and the estimated and suspect flags. What the figures
    compute from (numpy over a year of quarter hours instead of one object per interval)."""

    t: np.ndarray  #: int64
    wh: np.ndarray  #: int64
    est: np.ndarray  #: bool
    sus: np.ndarray  #: bool
    at: np.ndarray | None = None  #: when each was stored (``computed_at``) [µs since 2000-01-01 UTC], if read

    @classmethod
    def empty(cls) -> "PointSeries":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool))

    @classmethod
    def of(cls, ivs: list[IntervalEnergy]) -> "PointSeries":
        """Columns of a list of intervals (sorted by start)."""
        ivs = sorted(ivs, key=lambda iv: iv.start)
        return cls(np.array([epoch_s(iv.start) for iv in ivs], np.int64), np.array([iv.energy_wh for iv in ivs], np.int64),
                   np.array([iv.estimated for iv in ivs], bool), np.array([iv.suspect for iv in ivs], bool))

    def __len__(self) -> int:
        return len(self.t)

    def window(self, start: datetime, end: datetime) -> "PointSeries":
        """The intervals starting in [start, end)."""
        lo, hi = np.searchsorted(self.t, [epoch_s(start), epoch_s(end)])
        return PointSeries(self.t[lo:hi], self.wh[lo:hi], self.est[lo:hi], self.sus[lo:hi],
                           None if self.at is None else self.at[lo:hi])

    def objects(self) -> list[IntervalEnergy]:
        return [IntervalEnergy(from_epoch_s(t), int(w), bool(e), bool(s))
                for t, w, e, s in zip(self.t.tolist(), self.wh.tolist(), self.est.tolist(), self.sus.tolist())]


@dataclass(frozen=True)
class PointFinding:
    point_id: int
    finding: CounterFinding


@dataclass
class EnterprisePeriod:
    """One enterprise's stored data for the intervals starting in [start, end) (UTC)."""

    enterprise: str
    enterprise_id: int
    timezone: str
    start: datetime  #: first interval read (may precede the figure's period, e.g. R3's 7 days)
    end: datetime  #: end of the intervals read, exclusive
    points: tuple[Point, ...]
    columns: dict[int, PointSeries]  #: per point, its stored intervals as columns
    findings: tuple[PointFinding, ...] = ()
    replacements: dict[int, tuple[MeterReplacement, ...]] = field(default_factory=dict)
    trades: tuple[Trade, ...] = ()
    certificates: tuple[CertificateBlock, ...] = ()
    facts: tuple[Any, ...] = ()  #: metrics.policy.Fact
    projects: tuple[Any, ...] = ()  #: store.projects.ProjectRecord (nameplates as recorded, links)
    nameplates: dict[tuple[int, str], tuple[Any, ...]] = field(default_factory=dict)
    #: (device id, quantity) -> the latest SunSpec nameplate readings (store.projects.NameplateReading)
    products: tuple[dict, ...] = ()  #: production rows overlapping the period's years
    references: dict[str, Any] = field(default_factory=dict)  #: product -> reference values
    computed_at: datetime | None = None  #: newest ``computed_at`` of the intervals read (how current)
    rolled_up_to: datetime | None = None  #: oldest rollup watermark of the counter points (all data up to it)
    #: the parts of the year before ``start`` already counted (metrics.figures.Segment), carried by the
    #: metrics flow so it reads only the days after them; None: the bundle holds the whole period
    prefix: Any = None
    #: per point, the resolutions stated on import (all of them, joined as the rollup reads them:
    #: store.events.join_resolutions); the evidence names those overlapping a figure's period
    resolutions: dict[int, tuple[Resolution, ...]] = field(default_factory=dict)
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def point(self, point_id: int) -> Point:
        return self._by_id()[point_id]

    def _by_id(self) -> dict[int, Point]:
        return {p.point_id: p for p in self.points}

    def with_role(self, *roles: str) -> list[Point]:
        return [p for p in self.points if p.role in roles]

    def columns_of(self, point_id: int, start: datetime, end: datetime) -> PointSeries:
        """One point's stored intervals starting in [start, end), as columns."""
        self._check(start, end)
        col = self.columns.get(point_id)
        return PointSeries.empty() if col is None else col.window(start, end)

    def series(self, point_id: int, start: datetime, end: datetime) -> list[IntervalEnergy]:
        """One point's stored intervals starting in [start, end), in time order (objects)."""
        return self.columns_of(point_id, start, end).objects()

    @property
    def intervals(self) -> dict[int, dict[datetime, IntervalEnergy]]:
        """Per point, its intervals by start (objects: for callers that want them one by one)."""
        return self.memo(("intervals",), lambda: {pid: {iv.start: iv for iv in col.objects()}
                                                  for pid, col in self.columns.items()})

    def has_intervals(self, point_ids) -> bool:
        return any(len(self.columns.get(pid, ())) for pid in point_ids)

    def last_interval_end(self) -> datetime | None:
        """End of the last stored interval read (None when none was)."""
        last = max((int(c.t[-1]) for c in self.columns.values() if len(c)), default=None)
        return None if last is None else from_epoch_s(last + INTERVAL_S)

    def memo(self, key, make):
        """A figure computed once per bundle (the same period asked for by several figures)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def point_findings(self, point_ids: list[int], start: datetime, end: datetime) -> list[PointFinding]:
        ids = set(point_ids)
        return [f for f in self.findings if f.point_id in ids and start <= f.finding.ts <= end]

    def _check(self, start: datetime, end: datetime) -> None:
        if start < self.start or end > self.end:
            raise ValueError(f"[{start.isoformat()}, {end.isoformat()}) is outside the data loaded "
                             f"[{self.start.isoformat()}, {self.end.isoformat()})")


def interval_count(start: datetime, end: datetime) -> int:
    """Intervals in [start, end), both aligned."""
    return int((end - start).total_seconds()) // INTERVAL_S


__all__ = ["EnterprisePeriod", "Point", "PointFinding", "PointSeries", "epoch_s", "from_epoch_s", "interval_count", "floor_interval"]
