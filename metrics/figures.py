"""Every balance figure of an enterprise, from its stored interval energy: one function per figure.

The flows (flows/metrics.py, flows/eligibility.py) and the reports (``greengauge report …``) call
these same functions on a :class:`metrics.bundle.EnterprisePeriod` loaded the same way
(``store.bundle.load_enterprise_period``), so a stored result and the report agree to the Wh and
the status (docs/accounting.md "One path").

Rules defined here once:

- **Balance roles**: :data:`metrics.balance.ROLES`.
- **Measured interval** (:func:`site_energy`): a quarter hour is measured for the site only when
  *every* balance point has a stored, not estimated interval in it. A balance point with no
  measurement (a dead export meter) makes the interval unmeasured — its energy is counted as
  far as it is known, but it does not count towards completeness.
- **Completeness** of a period = measured site intervals ÷ intervals in the period; below the
  threshold (95 % by default) R1 is ``unknown``.
- **Period end** of a year to date (:func:`year_to_date`): ``min(year end, as_of floored to the
  quarter hour)``; the ledger counts local days up to :func:`metrics.periods.local_end_day`.
- **Suspect energy**: with ``count_suspect=False`` a suspect interval's energy is capped at the
  point's rated power × 15 min.

Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction

import numpy as np

from metrics.balance import (
    ROLES, BalanceColumns, BalanceTotals, BatteryPool, IntervalBalance, balance_columns, column_totals,
)
from metrics.bundle import EnterprisePeriod, Point, PointSeries, epoch_s, interval_count
from metrics.counters import CounterFinding
from metrics.intervals import INTERVAL_S, IntervalEnergy, Resolution, floor_interval  # noqa: F401
from metrics.evidence import Evidence, FindingEvidence, InputDigest, PointEvidence
from metrics.green_share import (
    COMPLETENESS_THRESHOLD, GreenShare, GreenShareResult, assess_green_share, green_share, project_year_end,
)
from metrics.hourly_match import HourlyParts, hourly_from_parts, hourly_match, hourly_parts_of  # noqa: F401
from metrics.ledger import LedgerGreen, ledger_green
from metrics.periods import local_bounds, local_end_day

BALANCE_ROLES = ROLES  #: the one list (metrics/balance.py)


@dataclass(frozen=True)
class PointSummary:
    """One point's stored intervals over a period: counts and energy."""

    point: Point
    expected: int
    measured: int
    estimated: int
    missing: int
    suspect: int
    energy_wh: int  #: [Wh]
    #: the resolutions stated on import for ranges overlapping the period (joined, as the rollup used them)
    resolutions: tuple[Resolution, ...] = ()

    @property
    def completeness(self) -> Fraction:
        return Fraction(self.measured, self.expected) if self.expected else Fraction(0)

    @property
    def expected_interval_s(self) -> int:
        """The device's poll interval (MQTT: interval_s), at least one interval: readings no further
        apart are measured time (as ``accounting.site_energy.counter_settings`` gives the rollup) [s]."""
        return expected_interval_s(self.point)

    def evidence(self) -> PointEvidence:
        return PointEvidence(self.point.name, self.point.role or "", None, self.expected, self.measured,
                             self.estimated, self.missing, self.suspect, self.completeness, self.energy_wh,
                             self.point.rollover_wh, self.point.rated_power_w, self.expected_interval_s,
                             tuple({"since": r.since, "until": r.until, "interval_s": r.interval_s}
                                   for r in self.resolutions))


def expected_interval_s(p: Point) -> int:
    """A point's expected interval between readings: its device's poll interval (MQTT:
    ``interval_s``), at least one interval [s] (the rollup's ``max_gap_s``)."""
    return int(max(INTERVAL_S, p.poll_interval_s or INTERVAL_S))


def stated_resolutions(period: EnterprisePeriod, p: Point, start: datetime, end: datetime
                       ) -> tuple[Resolution, ...]:
    """The point's import resolutions overlapping [start, end), as ``counter_energy`` picks its
    ``resolution_s`` (a range ending at ``start`` held the reading before the period)."""
    return tuple(r for r in period.resolutions.get(p.point_id, ()) if r.since < end and r.until >= start)


@dataclass
class SiteEnergy:
    """The site balance of [start, end) from stored intervals."""

    enterprise: str
    start: datetime
    end: datetime
    points: list[Point]
    totals: BalanceTotals
    share: GreenShare | None  #: on-site green / consumption (no ledger), None without consumption
    findings: list[CounterFinding]
    per_point: dict[int, PointSummary] = field(default_factory=dict)
    measured_intervals: int = 0  #: intervals every balance point measured
    expected_intervals: int = 0
    inputs_sha256: str = ""
    count_suspect: bool = True
    point_findings: list[FindingEvidence] = field(default_factory=list)
    segment: "Segment | None" = None  #: the additive parts (hourly match, pool, per-point counts)

    @property
    def balance(self) -> list[IntervalBalance]:
        """The balance of each interval of the period computed here, in time order."""
        return self.segment.balance if self.segment is not None else []

    @property
    def completeness(self) -> Fraction:
        """Measured site intervals ÷ intervals in the period (0 for an empty period)."""
        return Fraction(self.measured_intervals, self.expected_intervals) if self.expected_intervals else Fraction(0)

    @property
    def onsite_status(self) -> str:
        """Rule R1 on the on-site green alone (no ledger), decided as every R1 figure is
        (:func:`metrics.green_share.assess_green_share`): ``qualifies``, ``does_not_qualify``, or
        ``unknown`` without consumption or with completeness below the threshold — a period a
        balance meter did not measure is not decided by the meters that did."""
        t = self.totals
        return assess_green_share(t.green_wh, t.consumption_wh, completeness=self.completeness).status


def _point_columns(period: EnterprisePeriod, p: Point, start: datetime, end: datetime, count_suspect: bool
                   ) -> tuple[PointSeries, np.ndarray]:
    """A point's stored intervals of [start, end) and their energy, a suspect interval's capped at
    rated power × interval length (floor) unless ``count_suspect`` [Wh]."""
    col = period.columns_of(p.point_id, start, end)
    wh = col.wh
    if not count_suspect and p.rated_power_w is not None and col.sus.any():
        cap = p.rated_power_w * INTERVAL_S // 3600
        wh = np.where(col.sus & (wh > cap), cap, wh)
    return col, wh


def _summary(col: PointSeries, wh: np.ndarray, expected: int) -> list[int]:
    """[expected, measured, estimated, missing, suspect, energy_wh] of a point's intervals."""
    measured = len(col) - int(col.est.sum())
    return [expected, measured, len(col) - measured, expected - len(col), int(col.sus.sum()), int(wh.sum())]


def digest_columns(digest: InputDigest, p: Point, col: PointSeries, wh: np.ndarray) -> None:
    """A point's intervals into a digest: its settings, then starts, energies and flags packed
    (the settings' JSON as ``InputDigest.add_json`` writes it, made once per point)."""
    head = _digest_head(p)
    digest.add_bytes(f'{{"n": {len(col)}, {head}'.encode())
    digest.add_bytes(np.ascontiguousarray(col.t, np.int64).tobytes())
    digest.add_bytes(np.ascontiguousarray(wh, np.int64).tobytes())
    digest.add_bytes((col.est.astype(np.uint8) | (col.sus.astype(np.uint8) << 1)).tobytes())


@lru_cache(maxsize=65536)
def _digest_head(p: Point) -> str:
    """A point's settings as ``InputDigest.add_json`` writes them with ``n`` first (sorted keys:
    n, point, rated_power_w, role, rollover_wh), without the opening brace and "n"; the line end
    included."""
    import json

    text = json.dumps({"point": p.name, "role": p.role, "rated_power_w": p.rated_power_w,
                       "rollover_wh": p.rollover_wh}, sort_keys=True, ensure_ascii=False, default=str)
    return text[1:] + "\n"


@dataclass
class Segment:
    """The additive parts of the site balance over [start, end): what a year to date needs from a
    run of local days, so the metrics flow can carry the days already counted (``bundle.prefix``)
    and read only the days after them. Parts of consecutive segments add up exactly (integer Wh,
    the battery pool carried) to the parts of the whole."""

    start: datetime
    end: datetime
    totals: BalanceTotals
    pool_total_wh: int  #: battery pool at ``end``
    pool_green_wh: int
    measured: int  #: intervals every balance point measured
    per_point: dict[int, list[int]]  #: point -> [expected, measured, estimated, missing, suspect, energy_wh]
    hourly: HourlyParts
    day_digests: list[str]  #: sha256 of each local day's stored intervals (the last one may be partial)
    chunks: list[BalanceColumns] = field(default_factory=list)  #: the intervals computed here, as columns

    @property
    def balance(self) -> list[IntervalBalance]:
        """The intervals computed here (not the carried ones), one by one."""
        return [b for c in self.chunks for b in c.objects()]

    def __add__(self, o: "Segment") -> "Segment":
        if o.start != self.end:
            raise ValueError(f"segments {self.start}..{self.end} and {o.start}..{o.end} are not consecutive")
        t = BalanceTotals(**{k: getattr(self.totals, k) + getattr(o.totals, k) for k in _TOTAL_FIELDS})
        pp = {pid: list(v) for pid, v in self.per_point.items()}
        for pid, v in o.per_point.items():
            pp[pid] = [x + y for x, y in zip(pp.get(pid, [0] * 6), v)]
        return Segment(self.start, o.end, t, o.pool_total_wh, o.pool_green_wh, self.measured + o.measured, pp,
                       self.hourly + o.hourly, self.day_digests + o.day_digests, self.chunks + o.chunks)

    def to_json(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "totals": dataclasses.asdict(self.totals),
                "pool": [self.pool_total_wh, self.pool_green_wh], "measured": self.measured,
                "per_point": {str(k): v for k, v in self.per_point.items()},
                "hourly": {"hours": self.hourly.hours, "consumption_wh": self.hourly.consumption_wh,
                           "onsite_matched_wh": self.hourly.onsite_matched_wh,
                           "residual_by_month": {m.isoformat(): v for m, v in self.hourly.residual_by_month.items()}},
                "day_digests": self.day_digests}

    @classmethod
    def from_json(cls, d: dict) -> "Segment":
        h = d["hourly"]
        return cls(datetime.fromisoformat(d["start"]), datetime.fromisoformat(d["end"]), BalanceTotals(**d["totals"]),
                   d["pool"][0], d["pool"][1], d["measured"], {int(k): list(v) for k, v in d["per_point"].items()},
                   HourlyParts(h["hours"], h["consumption_wh"], h["onsite_matched_wh"],
                               {date.fromisoformat(m): v for m, v in h["residual_by_month"].items()}),
                   list(d["day_digests"]))


_TOTAL_FIELDS = [f.name for f in dataclasses.fields(BalanceTotals)]


@dataclass
class _Grid:
    """The stored intervals of [start, end) on the quarter-hour grid of the period."""

    start: datetime
    n: int
    per_point: dict[int, list[int]]
    balance_points: list[tuple[Point, PointSeries, np.ndarray]]  #: point, its columns, its (capped) energy
    present: np.ndarray  #: bool: some balance point has an interval
    measured: np.ndarray  #: bool: every balance point measured it
    energy: dict[str, np.ndarray]  #: per role, summed over its points [Wh]


def _grid(period: EnterprisePeriod, start: datetime, end: datetime, count_suspect: bool) -> _Grid:
    n = interval_count(start, end)
    s0 = epoch_s(start)
    per_point: dict[int, list[int]] = {}
    balance_points = []
    present = np.zeros(n, bool)
    measured = np.ones(n, bool)
    energy = {role: np.zeros(n, np.int64) for role in BALANCE_ROLES}
    for p in period.points:
        col, wh = _point_columns(period, p, start, end, count_suspect)
        per_point[p.point_id] = _summary(col, wh, n)
        if p.role in BALANCE_ROLES:
            balance_points.append((p, col, wh))
            idx = (col.t - s0) // INTERVAL_S
            energy[p.role][idx] += wh  # one interval per point and start
            present[idx] = True
            mine = np.zeros(n, bool)
            mine[idx[~col.est]] = True
            measured &= mine
    if not balance_points:
        measured[:] = False
    return _Grid(start, n, per_point, balance_points, present, measured, energy)


def _balance(g: _Grid, pool: BatteryPool | None, resets: np.ndarray | None = None
             ) -> tuple[BalanceColumns, BatteryPool, np.ndarray]:
    """The site balance of the grid's intervals that some balance point has (estimated unless
    every balance point measured it: the missing-meter rule); and their grid indices."""
    at = np.flatnonzero(g.present)
    if resets is not None:
        resets = np.searchsorted(at, resets)
    cols, pool = balance_columns(epoch_s(g.start) + INTERVAL_S * at, {r: e[at] for r, e in g.energy.items()},
                                 ~g.measured[at], pool, resets)
    return cols, pool, at


def _segment(period: EnterprisePeriod, start: datetime, end: datetime, count_suspect: bool,
             pool: BatteryPool | None) -> Segment:
    """Compute the parts of [start, end) from the bundle's intervals (pool at ``start`` given)."""
    g = _grid(period, start, end, count_suspect)
    balance, pool, _ = _balance(g, pool)
    # one digest per local day (days cut at local midnight, as segments are), each point's packed
    # columns made once and cut by day
    edges = [start]
    while edges[-1] < end:
        edges.append(min(end, _next_midnight(edges[-1], period.timezone)))
    cut = np.array([epoch_s(x) for x in edges], np.int64)
    packed = []
    for p, col, wh in g.balance_points:
        flags = col.est.astype(np.uint8) | (col.sus.astype(np.uint8) << 1)
        packed.append((_digest_head(p), memoryview(np.ascontiguousarray(col.t, np.int64).tobytes()),
                       memoryview(np.ascontiguousarray(wh, np.int64).tobytes()), memoryview(flags.tobytes()),
                       np.searchsorted(col.t, cut).tolist()))
    digests = []
    for k in range(len(edges) - 1):
        d = InputDigest()
        for head, tb, wb, fb, at in packed:
            a, b = at[k], at[k + 1]
            d.add_bytes(f'{{"n": {b - a}, {head}'.encode())
            d.add_bytes(tb[8 * a:8 * b])
            d.add_bytes(wb[8 * a:8 * b])
            d.add_bytes(fb[a:b])
        digests.append(d.hexdigest())
    return Segment(start, end, column_totals(balance), pool.total_wh, pool.green_wh, int(g.measured.sum()),
                   g.per_point, hourly_parts_of(balance.t, balance.consumption_wh, balance.green_wh, period.timezone),
                   digests, [balance])


def _next_midnight(t: datetime, tz: str) -> datetime:
    from zoneinfo import ZoneInfo

    local = t.astimezone(ZoneInfo(tz)).date()
    return local_bounds("day", local, tz)[1]


def _last_midnight(t: datetime, tz: str) -> datetime:
    from zoneinfo import ZoneInfo

    return local_bounds("day", t.astimezone(ZoneInfo(tz)).date(), tz)[0]


def span(period: EnterprisePeriod, start: datetime, end: datetime, count_suspect: bool = True,
         pool: BatteryPool | None = None) -> Segment:
    """The parts of [start, end), always cut the same way — the days before ``end``'s local day,
    then that day — so a flow that carried the first part (``period.prefix``) and a report that
    computes everything get the same figures to the Wh and the same digest."""
    pre = period.prefix
    if pool is None and pre is not None and pre.start == start and pre.end == period.start <= end:
        head = pre
        rest = span(period, pre.end, end, count_suspect, BatteryPool(pre.pool_total_wh, pre.pool_green_wh))
        return head + rest
    cut = _last_midnight(end, period.timezone)
    if start < cut < end:
        key = ("span", start, cut, count_suspect, None if pool is None else (pool.total_wh, pool.green_wh))
        head = period.memo(key, lambda: _segment(period, start, cut, count_suspect, pool))
        return head + _segment(period, cut, end, count_suspect, BatteryPool(head.pool_total_wh, head.pool_green_wh))
    return _segment(period, start, end, count_suspect, pool)


def head_of(period: EnterprisePeriod, start: datetime, end: datetime, count_suspect: bool = True) -> Segment | None:
    """The parts of [start, the local midnight before ``end``): what the metrics flow keeps as the
    next run's ``prefix`` (None when that is empty)."""
    cut = _last_midnight(end, period.timezone)
    if cut <= start:
        return None
    return span(period, start, cut, count_suspect)


def site_energy(period: EnterprisePeriod, start: datetime, end: datetime, *, count_suspect: bool = True,
                pool: BatteryPool | None = None) -> SiteEnergy:
    """The site balance of [start, end) (an empty battery pool at ``start`` unless given), with
    per-point counts, the measured-interval rule and a digest of the stored intervals used.
    Computed once per bundle and period (R1, carbon and the balance ask for the same one)."""
    if pool is None:
        return period.memo(("site_energy", start, end, count_suspect),
                           lambda: _site_energy(period, start, end, count_suspect, None))
    return _site_energy(period, start, end, count_suspect, pool)


def _site_energy(period: EnterprisePeriod, start: datetime, end: datetime, count_suspect: bool,
                 pool: BatteryPool | None) -> SiteEnergy:
    seg = span(period, start, end, count_suspect, pool)
    points = period.with_role(*BALANCE_ROLES)
    digest = InputDigest()
    digest.add_json({"enterprise": period.enterprise, "start": start, "end": end, "count_suspect": count_suspect,
                     "points": [(p.name, p.role, p.rated_power_w, p.rollover_wh) for p in points],
                     "replacements": [[(r.ts, r.old_final_wh, r.new_initial_wh)
                                       for r in period.replacements.get(p.point_id, ())] for p in points]})
    digest.add_json(seg.day_digests)
    stated = {p.point_id: stated_resolutions(period, p, start, end) for p in points}
    if any(stated.values()):  # only then, so the digest of a site without any stays as it was
        digest.add_json({"import_resolutions": {p.name: [(r.since, r.until, r.interval_s) for r in stated[p.point_id]]
                                                for p in points if stated[p.point_id]}})
    per_point = {p.point_id: PointSummary(p, *seg.per_point.get(p.point_id, [interval_count(start, end), 0, 0,
                                                                            interval_count(start, end), 0, 0]),
                                          stated[p.point_id])
                 for p in points}
    t = seg.totals
    names = {p.point_id: p.name for p in points}
    pf = sorted((FindingEvidence(names[f.point_id], f.finding.kind, f.finding.ts, f.finding.detail)
                 for f in period.point_findings(list(names), start, end)), key=lambda f: (f.ts, f.point, f.kind))
    findings = [CounterFinding(f.kind, f.ts, f.detail) for f in pf]
    share = None
    if 0 < t.consumption_wh and t.green_wh <= t.consumption_wh:
        share = green_share(t.green_wh, t.consumption_wh)
    elif t.green_wh > t.consumption_wh:
        # the meters disagree (e.g. export metered without the PV that produced it): no share, said so
        findings.append(CounterFinding("balance_inconsistent", start, f"on-site green {t.green_wh} Wh exceeds "
                                       f"consumption {t.consumption_wh} Wh over the period: check the meters"))
    return SiteEnergy(period.enterprise, start, end, points, t, share, findings, per_point, seg.measured,
                      interval_count(start, end), digest.hexdigest(), count_suspect, pf, seg)


def points_energy(period: EnterprisePeriod, points: list[Point], start: datetime, end: datetime) -> int:
    """Sum of the stored energy of ``points`` in [start, end), counting the carried ``prefix``
    (the counter's own unit: Wh, or m3/kg/MJ for fuels)."""
    return sum(span(period, start, end).per_point.get(p.point_id, [0] * 6)[5] for p in points)


def day_balance(period: EnterprisePeriod, day: date) -> tuple[BalanceTotals, int]:
    """One local day's balance totals (an empty battery pool at local midnight, as ``report balance
    --day`` gives) and its measured intervals (:func:`day_balances` for one day)."""
    return day_balances(period, [day])[day]


def day_balances(period: EnterprisePeriod, days: list[date]) -> dict[date, tuple[BalanceTotals, int]]:
    """Each local day's balance totals (an empty battery pool at each local midnight) and measured
    intervals, computed over the days' span at once. A day is read up to the end of the data
    loaded (today: the intervals so far)."""
    if not days:
        return {}
    bounds = {}
    for day in days:
        ds, de = local_bounds("day", day, period.timezone)
        a = max(ds, period.start)
        bounds[day] = (a, max(a, min(de, period.end)))
    lo, hi = min(a for a, _ in bounds.values()), max(b for _, b in bounds.values())
    g = _grid(period, lo, hi, True)
    s0 = epoch_s(lo)
    cuts = {day: ((epoch_s(a) - s0) // INTERVAL_S, (epoch_s(b) - s0) // INTERVAL_S) for day, (a, b) in bounds.items()}
    balance, _, at = _balance(g, None, np.array(sorted({ia for ia, _ in cuts.values()}), np.int64))
    # cumulative sums over the balanced intervals; a day is the difference at its two ends
    sums = {f: np.concatenate(([0], np.cumsum(getattr(balance, f)))) for f in _TOTAL_COLUMNS}
    sums["green_wh"] = np.concatenate(([0], np.cumsum(balance.green_wh)))
    sums["estimated"] = np.concatenate(([0], np.cumsum(balance.estimated)))
    measured = np.concatenate(([0], np.cumsum(g.measured)))
    out = {}
    for day, (ia, ib) in cuts.items():
        ka, kb = np.searchsorted(at, [ia, ib])
        d = {f: int(v[kb] - v[ka]) for f, v in sums.items()}
        out[day] = (BalanceTotals(int(kb - ka), d.pop("estimated"), **d), int(measured[ib] - measured[ia]))
    return out


_TOTAL_COLUMNS = ("import_wh", "export_wh", "pv_wh", "charge_wh", "discharge_wh", "consumption_wh",
                  "pv_self_consumed_wh")


def year_to_date(year: int, tz: str, as_of: datetime) -> tuple[datetime, datetime, datetime]:
    """(year start, period end, year end) of a local year read at ``as_of``: the period ends at
    ``min(year end, as_of floored to 15 min)``. Raises ``ValueError`` for a year not begun."""
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of} has no time zone")
    ystart, yend = local_bounds("year", date(year, 1, 1), tz)
    if as_of <= ystart:
        raise ValueError(f"year {year} has not begun at {as_of.isoformat()}")
    return ystart, min(yend, floor_interval(as_of)), yend


def ledger_of(period: EnterprisePeriod, start: datetime, end: datetime) -> tuple[LedgerGreen, date, date]:
    """Trades and certificates counted for [start, end): by local days ``start``'s day up to
    :func:`local_end_day` of ``end`` (exclusive)."""
    from zoneinfo import ZoneInfo

    lstart = start.astimezone(ZoneInfo(period.timezone)).date()
    lend = max(lstart, local_end_day(end, period.timezone))
    return ledger_green(list(period.trades), list(period.certificates), lstart, lend), lstart, lend


def green_share_figure(period: EnterprisePeriod, year: int, as_of: datetime, *, count_suspect: bool = True,
                       completeness_threshold: Fraction = COMPLETENESS_THRESHOLD,
                       code_version: str = "") -> GreenShareResult:
    """Rule R1 for an enterprise's local year to date at ``as_of`` (the whole year once it is over).

    On-site green and consumption from the site balance of the stored intervals; trades settled and
    certificates retired from the ledger for the period's local days; completeness by the
    measured-interval rule; the hourly-matched share, the year-end projection and the evidence.

    References
    ----------
    晋政规〔2024〕2号 §三(一), 晋政規〔2025〕5號 §三(三) (rule R1, docs/accounting.md).
    """
    ystart, end, yend = year_to_date(year, period.timezone, as_of)
    se = site_energy(period, ystart, end, count_suspect=count_suspect)
    led, lstart, lend = ledger_of(period, ystart, end)
    digest = InputDigest()
    digest.add_json({"site_inputs": se.inputs_sha256, "trades": [vars(t) for t in led.trades],
                     "certificates": [(str(c.first), str(c.last), c.production_month, c.used_on, c.trade_reference)
                                      for c in period.certificates],
                     "completeness_threshold": completeness_threshold, "ledger_period": [lstart, lend]})
    elapsed = interval_count(ystart, end)
    t = se.totals
    projection = None
    if end < yend and elapsed > 0:
        projection = project_year_end(t.green_wh, t.consumption_wh, led.green_wh, elapsed, interval_count(ystart, yend))
    evidence = Evidence(
        enterprise=period.enterprise, period_start=ystart, period_end=end, timezone=period.timezone,
        points=tuple(s.evidence() for s in se.per_point.values()),
        findings=tuple(se.point_findings),
        ledger_entries=tuple(
            [f"trade {x.reference} settled {x.settled_on} {x.settled_wh / 1e6:g} MWh (counted)" for x in led.trades]
            + [f"GEC {c.label} produced {c.production_month:%Y-%m} retired {c.used_on} ({c.count} MWh, counted)"
               for c in led.certificates]
            + [f"GEC {c.label} delivered with trade {c.trade_reference} (bundled, counted in the trade)"
               for c in led.bundled]
            + [f"GEC {c.label} rejected: {why}" for c, why in led.rejected]),
        count_suspect=count_suspect, completeness_threshold=completeness_threshold,
        inputs_sha256=digest.hexdigest(), code_version=code_version,
        notes=(f"ledger counted by local dates {lstart} to {lend} (exclusive)",
               "from the stored interval energy (interval_energy); an interval is measured only when every "
               "balance point measured it; completeness = measured intervals / intervals in the period",
               f"intervals measured for the site: {se.measured_intervals} of {se.expected_intervals}"),
    )
    return assess_green_share(
        t.green_wh, t.consumption_wh, trade_wh=led.trade_wh, certificate_wh=led.certificate_wh,
        completeness=se.completeness, count_suspect=count_suspect, completeness_threshold=completeness_threshold,
        projection=projection, hourly=hourly_from_parts(se.segment.hourly, led), evidence=evidence)


def role_columns(period: EnterprisePeriod, points: list[Point], start: datetime, end: datetime
                 ) -> tuple[PointSeries | None, dict]:
    """Several points' stored intervals of [start, end) summed per interval (estimated or suspect
    when any part is), as columns, and their evidence (None when no point is given)."""
    if not points:
        return None, {"points": []}
    cols = [period.columns_of(p.point_id, start, end) for p in points]
    if len(cols) == 1:
        c = cols[0]
    else:
        t = np.unique(np.concatenate([c.t for c in cols]))
        wh = np.zeros(len(t), np.int64)
        est = np.zeros(len(t), bool)
        sus = np.zeros(len(t), bool)
        for c in cols:
            k = np.searchsorted(t, c.t)
            wh[k] += c.wh
            est[k] |= c.est
            sus[k] |= c.sus
        c = PointSeries(t, wh, est, sus)
    found = period.point_findings([p.point_id for p in points], start, end)
    return c, {"points": [p.name for p in points], "intervals": len(c),
               "estimated_intervals": int(c.est.sum()), "suspect_intervals": int(c.sus.sum()),
               "energy_wh": int(c.wh.sum()),
               "findings": [f"{f.finding.kind} {f.finding.ts.isoformat()} {f.finding.detail}" for f in found]}


def role_series(period: EnterprisePeriod, points: list[Point], start: datetime, end: datetime
                ) -> tuple[list[IntervalEnergy] | None, dict]:
    """:func:`role_columns` as interval objects (what the storage checks take)."""
    c, ev = role_columns(period, points, start, end)
    return (None if c is None else c.objects()), ev


__all__ = ["BALANCE_ROLES", "PointSummary", "SiteEnergy", "day_balance", "green_share_figure",
           "ledger_of", "role_columns", "role_series", "site_energy", "year_to_date"]
