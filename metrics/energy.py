"""Cumulative counters to interval energy.

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

INTERVAL_S = 900  # 15 minutes

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy of one interval of one counter."""

    start: datetime  #: interval start, UTC
    energy_wh: int  #: [Wh]
    estimated: bool  #: interpolated across a gap, or only partly covered by readings
    suspect: bool = False  #: holds a counter step implying power above the point's rating (a spike)


@dataclass(frozen=True, slots=True)
class CounterFinding:
    """Something about a counter series worth showing (kind as in DESIGN's data-quality findings)."""

    kind: str
    ts: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class MeterReplacement:
    """A meter replacement a person recorded: the old meter's last reading and the new one's first.

    Energy is continuous across it: the old meter's energy up to ``old_final_wh`` plus the new
    meter's energy from ``new_initial_wh`` on.
    """

    ts: datetime  #: when the meter was swapped, timezone-aware
    old_final_wh: float  #: the old meter's final reading [Wh]
    new_initial_wh: float  #: the new meter's initial reading [Wh]
    reason: str = ""


#: finding kinds this module reports
FINDING_KINDS = ("counter_rollover", "meter_replacement", "counter_drop_unexplained", "spike",
                 "replacement_mismatch", "counter_outlier", "counter_drop_provisional")


def floor_interval(ts: datetime, interval_s: int = INTERVAL_S) -> datetime:
    """Start of the interval holding ``ts``; intervals are aligned to the Unix epoch.

    Every time zone in use today is offset from UTC by a whole number of quarter hours, so these
    15-minute intervals are also local quarter hours.
    """
    seconds = math.floor((ts - _EPOCH).total_seconds() / interval_s) * interval_s
    return _EPOCH + timedelta(seconds=seconds)


def rollover_wh(bits: int | None, scale_wh: float) -> float | None:
    """The counter's wrap width in Wh from its register width and scale.

    Parameters
    ----------
    bits : register width of the counter (16, 32 or 64), None when the profile gives none [bit]
    scale_wh : energy of one raw counter unit [Wh]

    Returns
    -------
    ``2**bits * scale_wh`` [Wh], or None when ``bits`` is None

    Raises
    ------
    ValueError
        for a width other than 16, 32 or 64 or a scale that is not positive.
    """
    if bits is None:
        return None
    if bits not in (16, 32, 64):
        raise ValueError(f"counter width {bits} bits is not 16, 32 or 64")
    if not scale_wh > 0:
        raise ValueError(f"counter scale {scale_wh} Wh per raw unit must be positive")
    return float(2**bits) * float(scale_wh)


def _is_wrap(prev: float, value: float, width: float | None, dt_s: float, rated_power_w: float | None) -> bool:
    """A drop is a wrap when the counter was in the upper half of its range, is now in the lower
    half, and the energy across the wrap is physically possible for the point."""
    if width is None or prev > width or value < 0:
        return False
    if not (prev >= width / 2 > value):
        return False
    if rated_power_w is not None:
        return value + width - prev <= rated_power_w * dt_s / 3600 + 1
    return True


def _knots(
    values: Sequence[float],
    timestamps: Sequence[datetime],
    rollover_wh: float | None,
    replacements: Sequence[MeterReplacement],
    rated_power_w: float | None,
) -> tuple[list[float | None], list[CounterFinding]]:
    """The continuous counter at each reading used as a knot, None at each reading skipped."""
    if len(values) != len(timestamps):
        raise ValueError(f"{len(timestamps)} timestamps but {len(values)} values")
    for r in replacements:
        if r.ts.tzinfo is None:
            raise ValueError(f"meter replacement at {r.ts} has no time zone")
    events = sorted(replacements, key=lambda r: r.ts)
    n = len(values)

    def swapped(t0: datetime, t1: datetime) -> list[MeterReplacement]:
        return [r for r in events if t0 < r.ts <= t1]

    def ahead(i: int, k: int) -> float | None:
        """The reading ``k`` after ``i``, when there is one and no replacement lies in between."""
        j = i + k
        if j >= n or swapped(timestamps[i], timestamps[j]):
            return None
        return values[j]

    def within_rating(step_wh: float, t0: datetime, t1: datetime) -> bool:
        return rated_power_w is None or step_wh <= rated_power_w * (t1 - t0).total_seconds() / 3600 + 1

    out: list[float | None] = []
    findings: list[CounterFinding] = []
    offset = 0.0
    prev = prev_ts = None  # the last reading used as a knot
    for i, (v, ts) in enumerate(zip(values, timestamps)):
        if prev is None:
            out.append(v + offset)
            prev, prev_ts = v, ts
            continue
        here = swapped(prev_ts, ts)
        nxt = ahead(i, 1)
        if here:
            # several swaps between two readings: chain them
            last = prev
            step = 0.0
            for r in here:
                part = r.old_final_wh - last
                if part < 0:
                    findings.append(CounterFinding(
                        "replacement_mismatch", r.ts,
                        f"old meter's final reading {r.old_final_wh} is below the last reading {last}; taken as 0"))
                    part = 0.0
                step += part
                last = r.new_initial_wh
                findings.append(CounterFinding(
                    "meter_replacement", r.ts,
                    f"meter replaced (old final {r.old_final_wh}, new initial {r.new_initial_wh}): {r.reason}"))
            tail = v - last
            if tail < 0:
                findings.append(CounterFinding(
                    "replacement_mismatch", ts,
                    f"reading {v} is below the new meter's initial reading {last}; taken as 0"))
                tail = 0.0
            last_knot = next(c for c in reversed(out) if c is not None)
            offset = last_knot + step + tail - v
        elif v >= prev:
            # an upward spike: the next reading falls back to between the level before and the spike,
            # and the one after it (if any) does not climb back to the spike — or the rise itself is
            # beyond the rating (then a later return to the same level does not vouch for it)
            after = ahead(i, 2)
            if (nxt is not None and prev <= nxt < v
                    and ((after is not None and after < v)
                         or not within_rating(v - prev, prev_ts, ts))):
                findings.append(CounterFinding(
                    "counter_outlier", ts,
                    f"reading {v} is an isolated outlier: the counter went from {prev} back to {nxt}; "
                    "reading not used"))
                out.append(None)
                continue
        else:
            # a drop: decided by what the counter does next
            if nxt is None:
                findings.append(CounterFinding(
                    "counter_drop_provisional", ts,
                    f"counter fell from {prev} to {v} and no later reading (before the end of the series or a "
                    "recorded replacement) says whether it is a reset, a wrap or a glitch: reading not used (yet)"))
                out.append(None)
                continue
            if nxt >= prev:
                findings.append(CounterFinding(
                    "counter_outlier", ts,
                    f"reading {v} is an isolated outlier: the counter fell from {prev} and returned to {nxt}; "
                    "reading not used"))
                out.append(None)
                continue
            if nxt < v:
                findings.append(CounterFinding(
                    "counter_outlier", ts,
                    f"counter fell from {prev} to {v} and the next reading {nxt} does not continue from it; "
                    "reading not used"))
                out.append(None)
                continue
            # the next reading continues from the low value: a wrap or a reset
            dt_s = (ts - prev_ts).total_seconds()
            if _is_wrap(prev, v, rollover_wh, dt_s, rated_power_w):
                findings.append(CounterFinding(
                    "counter_rollover", ts, f"counter wrapped at {rollover_wh:.0f} Wh: {prev} -> {v}"))
                offset += rollover_wh
            else:
                findings.append(CounterFinding(
                    "counter_drop_unexplained", ts,
                    f"counter fell from {prev} to {v} with no recorded replacement; "
                    "treated as a reset (counting on from the new value)"))
                offset += prev - v
        out.append(v + offset)
        prev, prev_ts = v, ts
    return out, findings


def counter_knots(
    values: Sequence[float],
    timestamps: Sequence[datetime],
    *,
    rollover_wh: float | None = None,
    replacements: Sequence[MeterReplacement] = (),
    rated_power_w: float | None = None,
) -> tuple[list[datetime], list[float], list[CounterFinding]]:
    """The readings used as knots and their continuous counter: :func:`continuous_counter` without
    the readings it skips (isolated outliers, a drop no later reading confirms).

    Returns
    -------
    the knots' times, the continuous counter at them [Wh], and the findings in time order
    """
    cont, findings = _knots(values, timestamps, rollover_wh, replacements, rated_power_w)
    ts = [t for t, c in zip(timestamps, cont) if c is not None]
    return ts, [c for c in cont if c is not None], findings


def continuous_counter(
    values: Sequence[float],
    timestamps: Sequence[datetime],
    *,
    rollover_wh: float | None = None,
    replacements: Sequence[MeterReplacement] = (),
    rated_power_w: float | None = None,
) -> tuple[list[float], list[CounterFinding]]:
    """Make a raw counter continuous: wraps, recorded replacements, resets and glitches never give
    negative or giant energy.

    Parameters
    ----------
    values : raw counter readings, in time order [Wh]
    timestamps : the readings' times, timezone-aware
    rollover_wh : the counter's wrap width (see :func:`rollover_wh`), None when unknown [Wh]
    replacements : meter replacements recorded for this point
    rated_power_w : the most power the point can carry, None when unknown [W]

    Returns
    -------
    the continuous counter [Wh], one value per reading, and the findings, in time order. A reading
    that is not used (see below) gets the counter interpolated in time between the readings used
    around it (held at the last one used when none follows), so it moves no energy; use
    :func:`counter_knots` to get only the readings used.

    Notes
    -----
    Each step from the last reading used to the next reading is decided in this order, looking at
    the one or two readings that follow (never across a recorded replacement):

    1. a recorded replacement between the two readings: the energy of the step is
       ``(old_final - previous reading) + (reading - new_initial)`` (finding
       ``meter_replacement``; ``replacement_mismatch`` when a part is negative, which is then
       taken as 0);
    2. an isolated outlier is not used (finding ``counter_outlier``): a drop after which the next
       reading is back at or above the level before it, or a rise after which the next reading
       falls back to between the level before and the rise while the reading after that stays
       below the rise (at the end of the series, with one reading left: only when the rise also
       implies more than the rated power);
    3. a drop whose next reading keeps falling below it is not used either (``counter_outlier``);
    4. a drop at the very last reading is provisional (finding ``counter_drop_provisional``): no
       later reading says whether it is a reset, a wrap or a glitch, so it is not used and adds no
       energy; the next computation with more readings decides it;
    5. a drop the next reading continues from that matches the rollover width (the counter was in
       the upper half of its range, is now in the lower half, and ``reading + width - previous``
       is within the rated power × elapsed time): the energy is ``reading + width - previous``
       (finding ``counter_rollover``);
    6. any other drop the next reading continues from is a reset: the counter counts on from its
       new value and the step itself is given no energy, so a drop never makes energy. With no
       recorded event it is unexplained (finding ``counter_drop_unexplained``).

    A rise above the rated power that is not an isolated outlier is kept; :func:`counter_energy`
    reports it as a ``spike`` and marks its intervals suspect.

    References
    ----------
    Issue 4 "Counters to energy"; DESIGN.md "Energy comes from cumulative counters".

    Raises
    ------
    ValueError
        when the lengths differ or a replacement's time has no time zone.
    """
    cont, findings = _knots(values, timestamps, rollover_wh, replacements, rated_power_w)
    out: list[float] = []
    for i, c in enumerate(cont):
        if c is not None:
            out.append(c)
            continue
        k0 = next(k for k in range(i - 1, -1, -1) if cont[k] is not None)  # the first reading is a knot
        j = next((k for k in range(i + 1, len(cont)) if cont[k] is not None), None)
        a = cont[k0]
        if j is None:
            out.append(a)
            continue
        frac = (timestamps[i] - timestamps[k0]) / (timestamps[j] - timestamps[k0])
        out.append(a + (cont[j] - a) * frac)
    return out, findings


def spikes(
    timestamps: Sequence[datetime], values: Sequence[float], rated_power_w: float, *, tolerance_wh: float = 1.0
) -> list[int]:
    """Indices ``i`` of the steps ``values[i-1] -> values[i]`` implying power above the rating.

    Parameters
    ----------
    timestamps : reading times, increasing
    values : a continuous counter (see :func:`continuous_counter`) [Wh]
    rated_power_w : the most power the point can carry [W]
    tolerance_wh : counter resolution allowed on top of ``rated_power_w * dt`` [Wh]

    Returns
    -------
    the indices of the readings that end a spike step

    Raises
    ------
    ValueError
        when ``rated_power_w`` is not positive.
    """
    if not rated_power_w > 0:
        raise ValueError(f"rated_power_w {rated_power_w} W must be positive")
    out = []
    for i in range(1, len(values)):
        dt_s = (timestamps[i] - timestamps[i - 1]).total_seconds()
        if values[i] - values[i - 1] > rated_power_w * dt_s / 3600 + tolerance_wh:
            out.append(i)
    return out


def interval_energy(
    timestamps: Sequence[datetime],
    values: Sequence[float],
    *,
    interval_s: int = INTERVAL_S,
    max_gap_s: float = INTERVAL_S,
    rated_power_w: float | None = None,
    count_suspect: bool = True,
    spike_tolerance_wh: float = 1.0,
) -> list[IntervalEnergy]:
    """Interval energy from readings of a cumulative, continuous counter.

    Parameters
    ----------
    timestamps : reading times, strictly increasing, timezone-aware
    values : counter readings, never falling (see :func:`continuous_counter`) [Wh]
    interval_s : interval length [s]
    max_gap_s : readings further apart than this make the intervals between them estimated [s]
    rated_power_w : the most power the point can carry; a step implying more is a spike and the
        intervals it overlaps are marked suspect. None: no spike check [W]
    count_suspect : True counts a spike step's energy in full; False caps it at
        ``rated_power_w * dt`` (the most the point could have carried), so the excess is not counted

    Returns
    -------
    one :class:`IntervalEnergy` per interval from the first reading's to the last reading's,
    in time order. The counter is interpolated linearly at each interval boundary and rounded to
    whole Wh, so the energies sum exactly to ``round(last) - round(first)``.

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
    knots: list[tuple[datetime, int]] = [(timestamps[0], round(values[0]))]
    gaps: list[tuple[datetime, datetime]] = []
    i = 0
    boundary = floor_interval(timestamps[0], interval_s) + step
    while boundary < timestamps[-1]:
        while timestamps[i + 1] < boundary:
            i += 1
        t0, t1 = timestamps[i], timestamps[i + 1]
        frac = (boundary - t0) / (t1 - t0)
        knots.append((boundary, round(values[i] + (values[i + 1] - values[i]) * frac)))
        boundary += step
    knots.append((timestamps[-1], round(values[-1])))
    for j in range(1, n):
        if (timestamps[j] - timestamps[j - 1]).total_seconds() > max_gap_s:
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
    Issue 4 "Completeness per point and period".

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
) -> tuple[list[IntervalEnergy], list[CounterFinding]]:
    """Raw counter readings of one point, with the point's settings, to interval energy and findings.

    The one path from a point's readings to its intervals: the report (:func:`counter_energy`,
    ``accounting.site_energy``) and the stored rollup (``flows.rollup``) both call it, so they agree.

    Parameters
    ----------
    timestamps : reading times, increasing, timezone-aware
    values : raw counter readings [Wh]
    rollover_wh, replacements, rated_power_w : the point's settings (:func:`continuous_counter`)
    count_suspect, interval_s, max_gap_s : as in :func:`interval_energy`

    Returns
    -------
    every interval from the first to the last reading used, and the findings in time order
    (``spike`` for each step above the rated power)
    """
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
                          rated_power_w=rated_power_w, count_suspect=count_suspect)
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

    Returns
    -------
    :class:`CounterEnergy`

    Notes
    -----
    :func:`counter_intervals` (the readings used, then :func:`interval_energy`); spikes are
    reported as findings of kind ``spike`` and their intervals marked suspect.

    References
    ----------
    Issue 4 "Counters to energy"; rule R1 of shared/policies/README.md (the figure's evidence).
    """
    all_ivs, findings = counter_intervals(
        timestamps, values, rollover_wh=rollover_wh, replacements=replacements, rated_power_w=rated_power_w,
        count_suspect=count_suspect, interval_s=interval_s, max_gap_s=max_gap_s)
    ivs = [iv for iv in all_ivs if start <= iv.start < end]
    return CounterEnergy(
        intervals=ivs, findings=[f for f in findings if start <= f.ts <= end],
        completeness=completeness(ivs, start, end, interval_s=interval_s),
        count_suspect=count_suspect, suspect_intervals=sum(iv.suspect for iv in ivs),
        readings=len(values), total_wh=sum(iv.energy_wh for iv in ivs),
    )
