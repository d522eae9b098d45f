"""A continuous counter to 15-minute interval energy, completeness, and sums over points
(docs/accounting.md "Intervals").

Energy comes from cumulative counters, not from integrating power: the energy of an interval is
the counter interpolated at the interval's end minus the counter interpolated at its start. A gap
in the readings loses the timing of the energy but never the total, and the intervals made from
interpolation across the gap are marked estimated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import numpy as np

from metrics.counters import CounterFinding, MeterReplacement, counter_knots, knot_columns, spikes

INTERVAL_S = 900  # 15 minutes

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy of one interval of one counter."""

    start: datetime  #: interval start, UTC
    energy_wh: int  #: [Wh]
    estimated: bool  #: interpolated across a gap, or only partly covered by readings
    suspect: bool = False  #: holds a counter step implying power above the point's rating (a spike)

def floor_interval(ts: datetime, interval_s: int = INTERVAL_S) -> datetime:
    """Start of the interval holding ``ts``; intervals are aligned to the Unix epoch.

    Every time zone in use today is offset from UTC by a whole number of quarter hours, so these
    15-minute intervals are also local quarter hours.
    """
    seconds = math.floor((ts - _EPOCH).total_seconds() / interval_s) * interval_s
    return _EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Resolution:
    """Readings of a point in [since, until] are expected ``interval_s`` apart (stated on import)."""

    since: datetime
    until: datetime  #: inclusive
    interval_s: int  #: [s]


def max_gap_between(t0: datetime, t1: datetime, max_gap_s: float, resolutions: Sequence[Resolution]) -> float:
    """The longest gap that still counts as measured time between readings at ``t0`` and ``t1``:
    ``max_gap_s``, or a stated resolution holding both readings when longer [s]."""
    limit = max_gap_s
    for r in resolutions:
        if r.since <= t0 and t1 <= r.until and r.interval_s > limit:
            limit = r.interval_s
    return limit


def whole_wh(x: float) -> int:
    """A counter value rounded to whole Wh, half up. Not Python's ``round`` (half to even): with it,
    the same boundary of two runs whose continuous counters differ by an odd whole offset (a reset
    seen from different first readings) could round 1 Wh apart."""
    return math.floor(x + 0.5)


def interval_energy(
    timestamps: Sequence[datetime],
    values: Sequence[float],
    *,
    interval_s: int = INTERVAL_S,
    max_gap_s: float = INTERVAL_S,
    rated_power_w: float | None = None,
    count_suspect: bool = True,
    spike_tolerance_wh: float = 1.0,
    resolutions: Sequence[Resolution] = (),
) -> list[IntervalEnergy]:
    """Interval energy from readings of a cumulative, continuous counter.

    Parameters
    ----------
    timestamps : reading times, strictly increasing, timezone-aware
    values : counter readings, never falling (see :func:`continuous_counter`) [Wh]
    interval_s : interval length [s]
    max_gap_s : readings further apart than this make the intervals between them estimated (the
        point's expected interval, at least the interval length) [s]
    rated_power_w : the most power the point can carry; a step implying more is a spike and the
        intervals it overlaps are marked suspect. None: no spike check [W]
    count_suspect : True counts a spike step's energy in full; False caps it at
        ``rated_power_w * dt`` (the most the point could have carried), so the excess is not counted
    resolutions : ranges with a stated, longer expected interval (hourly or daily history): gaps
        inside one no longer than it are measured time (:func:`max_gap_between`)

    Returns
    -------
    one :class:`IntervalEnergy` per interval from the first reading's to the last reading's,
    in time order. The counter is interpolated linearly at each interval boundary and rounded to
    whole Wh (half up, so an integer offset of the counter never moves a boundary), so the energies
    sum exactly to ``whole_wh(last) - whole_wh(first)``.

    Notes
    -----
    An interval only partly covered by readings (the first and the last) and every interval that
    a gap longer than ``max_gap_s`` overlaps are marked estimated.

    Raises
    ------
    ValueError
        when the lengths differ, a timestamp is naive or not increasing, or the counter falls.
    """
    n = len(timestamps)
    if n != len(values):
        raise ValueError(f"{n} timestamps but {len(values)} values")
    if n < 2:
        return []
    step = timedelta(seconds=interval_s)
    for i in range(n):
        if timestamps[i].tzinfo is None:
            raise ValueError(f"timestamp {timestamps[i]} has no time zone")
        if i and timestamps[i] <= timestamps[i - 1]:
            raise ValueError(f"timestamps not increasing at {timestamps[i]}")
        if i and values[i] < values[i - 1]:
            raise ValueError(
                f"counter falls from {values[i - 1]} to {values[i]} at {timestamps[i]}; "
                "make it continuous first (continuous_counter)"
            )
    spike_steps: list[tuple[datetime, datetime]] = []
    if rated_power_w is not None:
        idx = spikes(timestamps, values, rated_power_w, tolerance_wh=spike_tolerance_wh)
        spike_steps = [(timestamps[k - 1], timestamps[k]) for k in idx]
        if idx and not count_suspect:
            capped = [values[0]]
            ks = set(idx)
            for k in range(1, n):
                d = values[k] - values[k - 1]
                if k in ks:
                    d = rated_power_w * (timestamps[k] - timestamps[k - 1]).total_seconds() / 3600
                capped.append(capped[-1] + d)
            values = capped
    # knots: (time, rounded counter) at the first reading, every boundary inside, the last reading
    knots: list[tuple[datetime, int]] = [(timestamps[0], whole_wh(values[0]))]
    gaps: list[tuple[datetime, datetime]] = []
    i = 0
    boundary = floor_interval(timestamps[0], interval_s) + step
    while boundary < timestamps[-1]:
        while timestamps[i + 1] < boundary:
            i += 1
        t0, t1 = timestamps[i], timestamps[i + 1]
        frac = (boundary - t0) / (t1 - t0)
        knots.append((boundary, whole_wh(values[i] + (values[i + 1] - values[i]) * frac)))
        boundary += step
    knots.append((timestamps[-1], whole_wh(values[-1])))
    for j in range(1, n):
        limit = max_gap_between(timestamps[j - 1], timestamps[j], max_gap_s, resolutions) if resolutions else max_gap_s
        if (timestamps[j] - timestamps[j - 1]).total_seconds() > limit:
            gaps.append((timestamps[j - 1], timestamps[j]))

    out: list[IntervalEnergy] = []
    g = sp = 0
    for (ta, ca), (tb, cb) in zip(knots, knots[1:]):
        start = floor_interval(ta, interval_s)
        partial = ta != start or tb != start + step
        while g < len(gaps) and gaps[g][1] <= ta:
            g += 1
        in_gap = g < len(gaps) and gaps[g][0] < tb
        while sp < len(spike_steps) and spike_steps[sp][1] <= ta:
            sp += 1
        suspect = sp < len(spike_steps) and spike_steps[sp][0] < tb
        out.append(IntervalEnergy(start, cb - ca, partial or in_gap, suspect))
    return out


def sum_by_interval(series: Sequence[Sequence[IntervalEnergy]]) -> dict[datetime, IntervalEnergy]:
    """Add several points' interval energy (e.g. two PV meters); estimated if any part is."""
    out: dict[datetime, IntervalEnergy] = {}
    for s in series:
        for iv in s:
            prev = out.get(iv.start)
            if prev is None:
                out[iv.start] = iv
            else:
                out[iv.start] = IntervalEnergy(iv.start, prev.energy_wh + iv.energy_wh, prev.estimated or iv.estimated,
                                               prev.suspect or iv.suspect)
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Completeness:
    """How much of a period a point's intervals were measured rather than estimated."""

    expected: int  #: intervals in the period
    measured: int  #: intervals measured (not estimated)
    estimated: int  #: intervals present but estimated
    missing: int  #: intervals with no energy at all (no readings around them)

    @property
    def share(self) -> Fraction:
        """measured / expected, exact [1]; 0 for an empty period."""
        return Fraction(self.measured, self.expected) if self.expected else Fraction(0)


def completeness(
    intervals: Sequence[IntervalEnergy], start: datetime, end: datetime, *, interval_s: int = INTERVAL_S
) -> Completeness:
    """Completeness of one point in [start, end): the share of intervals measured, not estimated.

    Parameters
    ----------
    intervals : the point's interval energy
    start, end : the period, aligned to intervals, timezone-aware
    interval_s : interval length [s]

    Returns
    -------
    :class:`Completeness`

    References
    ----------
    docs/accounting.md "From meter counters to energy" (completeness per point and period).

    Raises
    ------
    ValueError
        when ``end`` is before ``start`` or a bound is not aligned to the intervals.
    """
    if end < start:
        raise ValueError(f"period end {end} is before its start {start}")
    for b in (start, end):
        if floor_interval(b, interval_s) != b:
            raise ValueError(f"period bound {b} is not aligned to {interval_s} s intervals")
    expected = int((end - start).total_seconds()) // interval_s
    inside = {iv.start: iv for iv in intervals if start <= iv.start < end}
    measured = sum(not iv.estimated for iv in inside.values())
    return Completeness(expected, measured, len(inside) - measured, expected - len(inside))


def counter_intervals(
    timestamps: Sequence[datetime],
    values: Sequence[float],
    *,
    rollover_wh: float | None = None,
    replacements: Sequence[MeterReplacement] = (),
    rated_power_w: float | None = None,
    count_suspect: bool = True,
    interval_s: int = INTERVAL_S,
    max_gap_s: float = INTERVAL_S,
    resolutions: Sequence[Resolution] = (),
) -> tuple[list[IntervalEnergy], list[CounterFinding]]:
    """Raw counter readings of one point, with the point's settings, to interval energy and findings.

    The one path from a point's readings to its intervals: the report (:func:`counter_energy`,
    ``accounting.site_energy``) and the stored rollup (``flows.rollup``) both call it, so they agree.

    Parameters
    ----------
    timestamps : reading times, increasing, timezone-aware
    values : raw counter readings [Wh]
    rollover_wh, replacements, rated_power_w : the point's settings (:func:`continuous_counter`)
    count_suspect, interval_s, max_gap_s, resolutions : as in :func:`interval_energy`

    Returns
    -------
    every interval from the first to the last reading used, and the findings in time order
    (``spike`` for each step above the rated power)
    """
    fast = _plain_counter_intervals(timestamps, values, replacements, rated_power_w, interval_s, max_gap_s,
                                    resolutions)
    if fast is not None:
        return fast, []
    return _counter_intervals_by_reading(
        timestamps, values, rollover_wh=rollover_wh, replacements=replacements, rated_power_w=rated_power_w,
        count_suspect=count_suspect, interval_s=interval_s, max_gap_s=max_gap_s, resolutions=resolutions)


def _counter_intervals_by_reading(
    timestamps: Sequence[datetime], values: Sequence[float], *, rollover_wh: float | None,
    replacements: Sequence[MeterReplacement], rated_power_w: float | None, count_suspect: bool, interval_s: int,
    max_gap_s: float, resolutions: Sequence[Resolution],
) -> tuple[list[IntervalEnergy], list[CounterFinding]]:
    """:func:`counter_intervals` reading by reading: any series (the reference the numpy path is
    tested against)."""
    ts, cont, findings = counter_knots(values, timestamps, rollover_wh=rollover_wh,
                                       replacements=replacements, rated_power_w=rated_power_w)
    if rated_power_w is not None:
        for k in spikes(ts, cont, rated_power_w):
            dt_s = (ts[k] - ts[k - 1]).total_seconds()
            findings.append(CounterFinding(
                "spike", ts[k],
                f"step of {cont[k] - cont[k - 1]:.0f} Wh in {dt_s:g} s implies "
                f"{(cont[k] - cont[k - 1]) * 3600 / dt_s:.0f} W, above the rated {rated_power_w:g} W"
                + ("" if count_suspect else "; energy above the rating not counted")))
        findings.sort(key=lambda f: f.ts)
    ivs = interval_energy(ts, cont, interval_s=interval_s, max_gap_s=max_gap_s,
                          rated_power_w=rated_power_w, count_suspect=count_suspect, resolutions=resolutions)
    return ivs, findings


@dataclass(frozen=True)
class CounterEnergy:
    """One counter point's energy over a period, with what was found and how complete it is."""

    intervals: list[IntervalEnergy]  #: intervals starting in the period
    findings: list[CounterFinding]
    completeness: Completeness
    count_suspect: bool  #: whether spike energy above the rating was counted
    suspect_intervals: int = 0
    readings: int = 0  #: readings used, including the one before and after the period
    total_wh: int = 0  #: [Wh]
    resolution_s: float = INTERVAL_S  #: the longest gap counted as measured in the period [s]


def counter_energy(
    timestamps: Sequence[datetime],
    values: Sequence[float],
    start: datetime,
    end: datetime,
    *,
    rollover_wh: float | None = None,
    replacements: Sequence[MeterReplacement] = (),
    rated_power_w: float | None = None,
    count_suspect: bool = True,
    interval_s: int = INTERVAL_S,
    max_gap_s: float = INTERVAL_S,
    resolutions: Sequence[Resolution] = (),
) -> CounterEnergy:
    """Raw counter readings to the interval energy of [start, end), with findings and completeness.

    Parameters
    ----------
    timestamps : reading times, increasing, timezone-aware; include the last reading before
        ``start`` and the first after ``end`` so the edges can be interpolated
    values : raw counter readings [Wh]
    start, end : the period, aligned to intervals
    rollover_wh : wrap width of the counter (:func:`rollover_wh`) [Wh]
    replacements : recorded meter replacements of this point
    rated_power_w : the most power the point can carry; steps above it are spikes [W]
    count_suspect : whether energy above the rating in a spike step counts (the choice is kept in
        the result)
    interval_s : interval length [s]
    max_gap_s : longest gap between readings that still counts as measured [s]
    resolutions : ranges with a stated expected interval (:func:`interval_energy`)

    Returns
    -------
    :class:`CounterEnergy`

    Notes
    -----
    :func:`counter_intervals` (the readings used, then :func:`interval_energy`); spikes are
    reported as findings of kind ``spike`` and their intervals marked suspect.

    References
    ----------
    docs/accounting.md "From meter counters to energy"; rule R1 of shared/policies/README.md (the figure's evidence).
    """
    all_ivs, findings = counter_intervals(
        timestamps, values, rollover_wh=rollover_wh, replacements=replacements, rated_power_w=rated_power_w,
        count_suspect=count_suspect, interval_s=interval_s, max_gap_s=max_gap_s, resolutions=resolutions)
    ivs = [iv for iv in all_ivs if start <= iv.start < end]
    res = [r.interval_s for r in resolutions if r.since < end and r.until >= start]
    return CounterEnergy(
        intervals=ivs, findings=[f for f in findings if start <= f.ts <= end],
        completeness=completeness(ivs, start, end, interval_s=interval_s),
        count_suspect=count_suspect, suspect_intervals=sum(iv.suspect for iv in ivs),
        readings=len(values), total_wh=sum(iv.energy_wh for iv in ivs),
        resolution_s=max([max_gap_s, *res]),
    )


_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class IntervalColumns:
    """Interval energy of one counter as columns: what :func:`counter_intervals` returns, without a
    Python object per interval (the rollup writes them as they are)."""

    start_us: np.ndarray  #: interval starts, UTC, microseconds since the Unix epoch (int64)
    energy_wh: np.ndarray  #: [Wh] (int64)
    estimated: np.ndarray  #: bool
    suspect: np.ndarray  #: bool

    def __len__(self) -> int:
        return len(self.start_us)

    @classmethod
    def of(cls, intervals: Sequence[IntervalEnergy]) -> IntervalColumns:
        """The columns of interval objects."""
        n = len(intervals)
        return cls(np.fromiter(((iv.start - _EPOCH) // _US for iv in intervals), dtype=np.int64, count=n),
                   np.fromiter((iv.energy_wh for iv in intervals), dtype=np.int64, count=n),
                   np.fromiter((iv.estimated for iv in intervals), dtype=bool, count=n),
                   np.fromiter((iv.suspect for iv in intervals), dtype=bool, count=n))

    def intervals(self) -> list[IntervalEnergy]:
        """The interval objects of the columns."""
        return [IntervalEnergy(_EPOCH + timedelta(microseconds=s0), e, est, sus) for s0, e, est, sus in
                zip(self.start_us.tolist(), self.energy_wh.tolist(), self.estimated.tolist(), self.suspect.tolist())]


def epoch_us(timestamps: Sequence[datetime]) -> np.ndarray:
    """Timezone-aware times as int64 microseconds since the Unix epoch (exact: POSIX seconds × 1e6
    rounded, the error of a float second being < 0.3 µs)."""
    n = len(timestamps)
    return np.rint(np.fromiter((t.timestamp() for t in timestamps), dtype=np.float64, count=n) * 1e6).astype(np.int64)


def utc_times(us: np.ndarray) -> list[datetime]:
    """int64 microseconds since the Unix epoch as UTC datetimes."""
    return [_EPOCH + timedelta(microseconds=x) for x in us.tolist()]


def counter_interval_columns(
    us: np.ndarray,
    values: np.ndarray,
    *,
    rollover_wh: float | None = None,
    replacements: Sequence[MeterReplacement] = (),
    rated_power_w: float | None = None,
    count_suspect: bool = True,
    interval_s: int = INTERVAL_S,
    max_gap_s: float = INTERVAL_S,
    resolutions: Sequence[Resolution] = (),
) -> tuple[IntervalColumns, list[CounterFinding]]:
    """:func:`counter_intervals` on columns: reading times as int64 microseconds since the Unix
    epoch (increasing) and raw counter readings [Wh] as float64; the result as
    :class:`IntervalColumns`.

    The same function, computed without a Python object per reading or interval: a plain series
    by :func:`_plain_columns`; any other by :func:`metrics.counters.knot_columns` (the counter
    rules, decided one by one only around the unusual readings) and :func:`_knot_columns` (spikes,
    the cap, gaps and the boundaries, as :func:`interval_energy` computes them); times that do not
    increase or values that are not finite by the reading-by-reading path on datetimes."""
    us = np.asarray(us, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    fast = _plain_columns(us, v, replacements, rated_power_w, interval_s, max_gap_s, resolutions)
    if fast is not None:
        return fast, []
    rating_ok = rated_power_w is None or rated_power_w > 0  # else spikes() raises, as it should
    if len(us) < 2 or not (np.all(np.diff(us) > 0) and np.all(np.isfinite(v)) and rating_ok):
        return _reference_columns(us, v, rollover_wh, replacements, rated_power_w, count_suspect, interval_s,
                                  max_gap_s, resolutions)
    for r in replacements:
        if r.ts.tzinfo is None:
            raise ValueError(f"meter replacement at {r.ts} has no time zone")
    knot, cont, findings = knot_columns(
        us, v, lambda r: (r.ts - _EPOCH) // _US, rollover_wh=rollover_wh, replacements=replacements,
        rated_power_w=rated_power_w, value=lambda i: float(v[i]), time=lambda i: utc_times(us[i:i + 1])[0])
    ku, kv = us[knot], cont[knot]
    if not np.all(np.diff(kv) >= 0):  # never, but interval_energy would refuse it: say so the same way
        return _reference_columns(us, v, rollover_wh, replacements, rated_power_w, count_suspect, interval_s,
                                  max_gap_s, resolutions)
    if rated_power_w is not None:
        for k in _spike_steps(ku, kv, rated_power_w, 1.0).tolist():
            a, b = float(kv[k - 1]), float(kv[k])
            dt_s = (int(ku[k]) - int(ku[k - 1])) / 1e6
            findings.append(CounterFinding(
                "spike", utc_times(ku[k:k + 1])[0],
                f"step of {b - a:.0f} Wh in {dt_s:g} s implies "
                f"{(b - a) * 3600 / dt_s:.0f} W, above the rated {rated_power_w:g} W"
                + ("" if count_suspect else "; energy above the rating not counted")))
        findings.sort(key=lambda f: f.ts)
    return _knot_columns(ku, kv, rated_power_w, count_suspect, interval_s, max_gap_s, resolutions), findings


def _reference_columns(
    us: np.ndarray, v: np.ndarray, rollover_wh: float | None, replacements: Sequence[MeterReplacement],
    rated_power_w: float | None, count_suspect: bool, interval_s: int, max_gap_s: float,
    resolutions: Sequence[Resolution],
) -> tuple[IntervalColumns, list[CounterFinding]]:
    """The reading-by-reading path on datetimes made from the columns (and its ValueErrors)."""
    ivs, findings = _counter_intervals_by_reading(
        utc_times(us), v.tolist(), rollover_wh=rollover_wh, replacements=replacements, rated_power_w=rated_power_w,
        count_suspect=count_suspect, interval_s=interval_s, max_gap_s=max_gap_s, resolutions=resolutions)
    return IntervalColumns.of(ivs), findings


def _spike_steps(us: np.ndarray, v: np.ndarray, rated_power_w: float, tolerance_wh: float) -> np.ndarray:
    """:func:`metrics.counters.spikes` on columns: the indices ``k`` of the steps ``k-1 -> k``
    implying power above the rating."""
    return np.flatnonzero(np.diff(v) > rated_power_w * (np.diff(us) / 1e6) / 3600 + tolerance_wh) + 1


def _plain_counter_intervals(
    timestamps: Sequence[datetime], values: Sequence[float], replacements: Sequence[MeterReplacement],
    rated_power_w: float | None, interval_s: int, max_gap_s: float, resolutions: Sequence[Resolution],
) -> list[IntervalEnergy] | None:
    """:func:`_plain_columns` on datetimes and values, as interval objects; None for a series that
    is not plain."""
    n = len(timestamps)
    if n < 2 or n != len(values) or timestamps[0].tzinfo is None:
        return None
    cols = _plain_columns(epoch_us(timestamps), np.asarray(values, dtype=np.float64), replacements, rated_power_w,
                          interval_s, max_gap_s, resolutions)
    return None if cols is None else cols.intervals()


def _plain_columns(
    us: np.ndarray, v: np.ndarray, replacements: Sequence[MeterReplacement],
    rated_power_w: float | None, interval_s: int, max_gap_s: float, resolutions: Sequence[Resolution],
) -> IntervalColumns | None:
    """:func:`counter_intervals` with numpy for the common series, None for any other.

    A plain series — times strictly increasing, the counter never falling, every step within the
    rating (so no outlier, reset, wrap or spike), no recorded replacement between its first and
    last reading — has every reading as a knot and no finding; its intervals are computed here
    with the same float operations in the same order as :func:`interval_energy` (integer
    microseconds, exact as float64; boundaries rounded half up to whole Wh), so the result is
    identical, int64-exact. Anything else (None) takes the reading-by-reading path.
    """
    n = len(us)
    if n < 2 or n != len(v):
        return None
    first, last = int(us[0]), int(us[-1])
    if any(first <= (r.ts - _EPOCH) // _US < last for r in replacements):
        return None
    dus = np.diff(us)
    dv = np.diff(v)
    if not (np.all(dus > 0) and np.all(dv >= 0)):  # NaN fails too
        return None
    dt_s = dus / 1e6
    if rated_power_w is not None and not np.all(dv <= rated_power_w * dt_s / 3600 + 1):
        return None
    return _knot_columns(us, v, None, True, interval_s, max_gap_s, resolutions)


def _knot_columns(
    us: np.ndarray, v: np.ndarray, rated_power_w: float | None, count_suspect: bool, interval_s: int,
    max_gap_s: float, resolutions: Sequence[Resolution], spike_tolerance_wh: float = 1.0,
) -> IntervalColumns:
    """:func:`interval_energy` on columns: knots' times (int64 microseconds, increasing) and a
    continuous counter at them (float64, never falling) to intervals, with the same float
    operations in the same order (a spike's cap, the boundaries' interpolation and rounding, the
    gaps and the spikes' suspect intervals), so the result is identical, int64-exact."""
    n = len(us)
    if n < 2:
        return IntervalColumns(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool))
    dus = np.diff(us)
    dt_s = dus / 1e6
    first, last = int(us[0]), int(us[-1])
    spike = np.zeros(0, dtype=np.int64)
    if rated_power_w is not None:
        spike = _spike_steps(us, v, rated_power_w, spike_tolerance_wh)
        if len(spike) and not count_suspect:
            # a spike's step counts the rated power × its time; the counter is summed up again in
            # the same order as interval_energy does (np.cumsum adds one step after the other)
            steps = np.diff(v)
            steps[spike - 1] = rated_power_w * dt_s[spike - 1] / 3600
            v = np.concatenate(([v[0]], steps)).cumsum()
    step = interval_s * 1_000_000
    b0 = (first // step) * step + step
    bounds = np.arange(b0, last, step, dtype=np.int64)
    j = np.searchsorted(us, bounds, side="left")  # first reading at or after each boundary
    i = j - 1
    frac = (bounds - us[i]) / (us[j] - us[i])
    inner = np.floor(v[i] + (v[j] - v[i]) * frac + 0.5)
    kt = np.concatenate(([first], bounds, [last]))
    kv = np.concatenate(([math.floor(v[0] + 0.5)], inner, [math.floor(v[-1] + 0.5)])).astype(np.int64)
    ta, tb = kt[:-1], kt[1:]
    start = (ta // step) * step
    partial = (ta != start) | (tb != start + step)
    limit = np.full(n - 1, float(max_gap_s))
    for r in resolutions:
        inside = (us[:-1] >= (r.since - _EPOCH) // _US) & (us[1:] <= (r.until - _EPOCH) // _US)
        limit[inside] = np.maximum(limit[inside], r.interval_s)
    estimated = partial | _overlapped(us[:-1][dt_s > limit], us[1:][dt_s > limit], ta, tb)
    suspect = _overlapped(us[spike - 1], us[spike], ta, tb)
    return IntervalColumns(start, np.diff(kv), estimated, suspect)


def _overlapped(s0: np.ndarray, s1: np.ndarray, ta: np.ndarray, tb: np.ndarray) -> np.ndarray:
    """Whether each segment [ta, tb) overlaps one of the steps (s0, s1) (between consecutive
    knots, so both increase): the first step ending after the segment's start begins before its end."""
    if not len(s1):
        return np.zeros(len(ta), dtype=bool)
    k = np.searchsorted(s1, ta, side="right")
    return (k < len(s1)) & (s0[np.minimum(k, len(s1) - 1)] < tb)
