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

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from metrics.counters import CounterFinding, MeterReplacement
from metrics.intervals import INTERVAL_S, IntervalEnergy, floor_interval
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
    intervals: dict[int, dict[datetime, IntervalEnergy]]  #: per point, by interval start
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
    _idx: dict | None = field(default=None, repr=False, compare=False)
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def point(self, point_id: int) -> Point:
        return self._by_id()[point_id]

    def _by_id(self) -> dict[int, Point]:
        return {p.point_id: p for p in self.points}

    def with_role(self, *roles: str) -> list[Point]:
        return [p for p in self.points if p.role in roles]

    def series(self, point_id: int, start: datetime, end: datetime) -> list[IntervalEnergy]:
        """One point's stored intervals starting in [start, end), in time order."""
        self._check(start, end)
        idx = self._index().get(point_id)
        if idx is None:
            return []
        starts, ivs = idx
        return ivs[bisect_left(starts, start):bisect_left(starts, end)]

    def _index(self) -> dict[int, tuple[list[datetime], list[IntervalEnergy]]]:
        if self._idx is None:
            self._idx = {}
            for pid, d in self.intervals.items():
                keys = sorted(d)
                self._idx[pid] = (keys, [d[k] for k in keys])
        return self._idx

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


__all__ = ["EnterprisePeriod", "Point", "PointFinding", "interval_count", "floor_interval"]
