"""Raw counter readings to a continuous counter: wraps, resets, recorded meter replacements,
isolated outliers and spikes (docs/accounting.md "Counters").

A drop is never turned into negative energy and a wrap never into giant energy; what was decided
is reported as a :class:`CounterFinding`. :mod:`metrics.intervals` turns the continuous counter
into interval energy.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

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

    ts: datetime  #: when the meter was swapped, timezone-aware; a reading at this instant is the old meter's
    old_final_wh: float  #: the old meter's final reading [Wh]
    new_initial_wh: float  #: the new meter's initial reading [Wh]
    reason: str = ""


#: finding kinds this module reports
FINDING_KINDS = ("counter_rollover", "meter_replacement", "counter_drop_unexplained", "spike",
                 "replacement_mismatch", "counter_outlier", "counter_drop_provisional", "counter_rise_provisional")


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


#: the longest run of unusual readings judged as glitches: a drop after which the counter is back at
#: or above the level before it within this many readings, or a rise after which it falls back to
#: between the two within this many readings, is not used (docs/accounting.md "Outliers")
GLITCH_RUN = 3

#: without a rating, a wrap must carry at most this share of the width (the counter was near its
#: top and is near zero); a drop from further below the top is a reset (docs/accounting.md "Rollover")
UNRATED_WRAP_SHARE = 8


def _is_wrap(prev: float, value: float, width: float | None, dt_s: float, rated_power_w: float | None) -> bool:
    """A drop is a wrap when the counter was in the upper half of its range, is now in the lower
    half, and the energy across the wrap is physically possible for the point: at most its rated
    power × the time between the readings, or, with no rating, at most 1/8 of the width."""
    if width is None or prev > width or value < 0:
        return False
    if not (prev >= width / 2 > value):
        return False
    if rated_power_w is not None:
        return value + width - prev <= rated_power_w * dt_s / 3600 + 1
    return value + width - prev <= width / UNRATED_WRAP_SHARE


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
    if not len(values):
        return [], []
    t0, us = timestamps[0], timedelta(microseconds=1)
    knot, cont, findings = knot_columns(
        np.fromiter(((t - t0) // us for t in timestamps), dtype=np.int64, count=len(timestamps)),
        np.asarray(values, dtype=np.float64), lambda r: (r.ts - t0) // us,
        rollover_wh=rollover_wh, replacements=replacements, rated_power_w=rated_power_w,
        value=values.__getitem__, time=timestamps.__getitem__)
    return [c if k else None for k, c in zip(knot.tolist(), cont.tolist())], findings


def knot_columns(
    us: np.ndarray,
    values: np.ndarray,
    event_us: Callable[[MeterReplacement], int],
    *,
    rollover_wh: float | None,
    replacements: Sequence[MeterReplacement],
    rated_power_w: float | None,
    value: Callable[[int], float],
    time: Callable[[int], datetime],
    fast_forward: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[CounterFinding]]:
    """The rules of :func:`continuous_counter` on columns: which readings are knots, the continuous
    counter at them, and the findings.

    Parameters
    ----------
    us : the readings' times as int64 microseconds from any fixed origin
    values : the raw readings as float64 [Wh]
    event_us : a replacement's time on the same scale as ``us``
    rollover_wh, replacements, rated_power_w : as in :func:`continuous_counter`
    value : reading ``i``'s value as given (used by the rules and in the findings' text) [Wh]
    time : reading ``i``'s time (the findings' time)
    fast_forward : skip the ordinary readings (below); False decides every reading one by one

    Returns
    -------
    a bool mask of the knots, the continuous counter (float64; meaningful at the knots), and the
    findings in time order

    Notes
    -----
    Each reading is decided by the rules written out once, below, one reading at a time, except
    the ordinary ones: a reading after a knot, at or above it, followed by a reading at or above it,
    with no recorded replacement between the three, none of the :data:`GLITCH_RUN` readings after it
    below it, and not the last, is a knot and leaves the
    offset as it is — whatever the rules' other branches say is never reached for it. A run of them
    is taken at once (numpy: ``value + offset``), so the rules run only around the unusual readings
    (drops, the readings before them, replacements, the last reading): the same result as deciding
    every reading (tested), at the cost of a plain series.

    A knot is never below the knot before it: where the offset moved (a reset, a wrap, a
    replacement) and the rounding of ``value + offset`` would put the counter an ulp below the
    knot before, the offset is moved up to it (no energy either way; a falling counter is refused
    by :func:`metrics.intervals.interval_energy`).
    """
    n = len(us)
    events = sorted(replacements, key=lambda r: r.ts)
    at = [event_us(r) for r in events]
    knot = np.zeros(n, dtype=bool)
    cont = np.zeros(n, dtype=np.float64)
    findings: list[CounterFinding] = []
    if n == 0:
        return knot, cont, findings

    def swapped(t0: int, t1: int) -> list[MeterReplacement]:
        # a reading at the very instant of a swap is the old meter's final reading: the new meter
        # starts after it (docs/accounting.md "Meter replacement")
        return events[bisect_left(at, t0):bisect_left(at, t1)]

    def ahead(i: int, k: int) -> float | None:
        """The reading ``k`` after ``i``, when there is one and no replacement lies in between."""
        j = i + k
        if j >= n or swapped(int(us[i]), int(us[j])):
            return None
        return value(j)

    def within_rating(step_wh: float, t0: int, t1: int) -> bool:
        return rated_power_w is None or step_wh <= rated_power_w * ((t1 - t0) / 1e6) / 3600 + 1

    def counts_on(i: int, k: int, level: float) -> bool:
        """Whether the readings ``i`` .. ``i + k - 1``, below ``level``, after which reading ``i + k``
        is back at or above it, look like a restarted counter rather than a run of glitches: every
        step from reading ``i`` to reading ``i + k`` rises within the rating, and the low readings
        climb more than the counter gained over ``level`` (a restarted counter counts up; a glitch
        run is flat or garbage, and the return to the old level is where the energy jumps)."""
        for m in range(i, i + k):
            a, b = value(m), value(m + 1)
            if not (b >= a and within_rating(b - a, int(us[m]), int(us[m + 1]))):
                return False
        return value(i + k - 1) - value(i) > value(i + k) - level

    ordinary = np.zeros(n, dtype=bool)
    if fast_forward and n > 2:
        rise = np.diff(values) >= 0  # rise[k]: values[k + 1] >= values[k] (NaN: no)
        swap = np.zeros(n - 1, dtype=bool)  # swap[k]: a replacement in [us[k], us[k + 1])
        if at:
            ev = np.asarray(at, dtype=np.int64)
            swap = np.searchsorted(ev, us[1:], side="left") > np.searchsorted(ev, us[:-1], side="left")
        # lower[k]: a reading among the GLITCH_RUN after reading k is below it (NaN: yes), so a run
        # of unusual readings could start at k
        lower = np.zeros(n, dtype=bool)
        for k in range(1, GLITCH_RUN + 1):
            lower[:-k] |= ~(values[k:] >= values[:-k])
        ordinary[1:-1] = rise[:-1] & rise[1:] & ~swap[:-1] & ~swap[1:] & ~lower[1:-1]
    unusual = np.flatnonzero(~ordinary)  # holds 0 and n - 1

    offset = 0.0
    prev = prev_ts = None  # the last reading used as a knot
    last = -1  # its index
    i = 0
    while i < n:
        if ordinary[i] and last == i - 1:
            j = int(unusual[np.searchsorted(unusual, i)])
            knot[i:j] = True
            cont[i:j] = values[i:j] + offset
            last, prev, prev_ts = j - 1, value(j - 1), int(us[j - 1])
            i = j
            continue
        v, ts = value(i), int(us[i])
        if prev is None:
            knot[i], cont[i], last = True, v + offset, i
            prev, prev_ts = v, ts
            i += 1
            continue
        here = swapped(prev_ts, ts)
        nxt = ahead(i, 1)
        skip = False
        if here:
            # several swaps between two readings: chain them
            prior = prev
            step = 0.0
            for r in here:
                part = r.old_final_wh - prior
                if part < 0:
                    findings.append(CounterFinding(
                        "replacement_mismatch", r.ts,
                        f"old meter's final reading {r.old_final_wh} is below the last reading {prior}; taken as 0"))
                    part = 0.0
                step += part
                prior = r.new_initial_wh
                findings.append(CounterFinding(
                    "meter_replacement", r.ts,
                    f"meter replaced (old final {r.old_final_wh}, new initial {r.new_initial_wh}): {r.reason}"))
            tail = v - prior
            if tail < 0:
                findings.append(CounterFinding(
                    "replacement_mismatch", time(i),
                    f"reading {v} is below the new meter's initial reading {prior}; taken as 0"))
                tail = 0.0
            offset = float(cont[last]) + step + tail - v
        elif v >= prev:
            if nxt is None and not within_rating(v - prev, prev_ts, ts):
                # a rise beyond the rating at the newest reading waits for the next one, as a drop does
                findings.append(CounterFinding(
                    "counter_rise_provisional", time(i),
                    f"counter rose from {prev} to {v}, beyond the rating, and no later reading (before the end of "
                    "the series or a recorded replacement) says whether it is a glitch: reading not used (yet)"))
                skip = True
            else:
                # an upward spike (alone or in a run of at most GLITCH_RUN unusual readings): a reading
                # among the next GLITCH_RUN falls back to between the level before and the spike, and
                # the one after that (if any) does not climb back to the spike — or the rise itself is
                # beyond the rating (then a later return to the same level does not vouch for it)
                k = next((k for k in range(1, GLITCH_RUN + 1)
                          if (w := ahead(i, k)) is not None and prev <= w < v), None)
                if k is not None:
                    back, after = ahead(i, k), ahead(i, k + 1)
                    if (after is not None and after < v) or not within_rating(v - prev, prev_ts, ts):
                        findings.append(CounterFinding(
                            "counter_outlier", time(i),
                            f"reading {v} is an isolated outlier: the counter went from {prev} back to {back}"
                            + ("" if k == 1 else f" {k} readings later") + "; reading not used"))
                        skip = True
        else:
            # a drop: decided by what the counter does next
            if nxt is None:
                findings.append(CounterFinding(
                    "counter_drop_provisional", time(i),
                    f"counter fell from {prev} to {v} and no later reading (before the end of the series or a "
                    "recorded replacement) says whether it is a reset, a wrap or a glitch: reading not used (yet)"))
                skip = True
            elif ((k := next((k for k in range(1, GLITCH_RUN + 1)
                              if (w := ahead(i, k)) is not None and w >= prev), None)) is not None
                  and (k == 1 or not counts_on(i, k, prev))):
                # the counter is back at or above the level before the drop within GLITCH_RUN readings
                # (those between are below that level too): a glitch, or a run of glitches, not a reset
                # — unless the low readings count on from the drop as a restarted counter (counts_on)
                findings.append(CounterFinding(
                    "counter_outlier", time(i),
                    f"reading {v} is an isolated outlier: the counter fell from {prev} and returned to {ahead(i, k)}"
                    + ("" if k == 1 else f" {k} readings later") + "; reading not used"))
                skip = True
            elif nxt < v:
                findings.append(CounterFinding(
                    "counter_outlier", time(i),
                    f"counter fell from {prev} to {v} and the next reading {nxt} does not continue from it; "
                    "reading not used"))
                skip = True
            # the next reading continues from the low value: a wrap or a reset
            elif _is_wrap(prev, v, rollover_wh, (ts - prev_ts) / 1e6, rated_power_w):
                findings.append(CounterFinding(
                    "counter_rollover", time(i), f"counter wrapped at {rollover_wh:.0f} Wh: {prev} -> {v}"))
                offset += rollover_wh
            else:
                findings.append(CounterFinding(
                    "counter_drop_unexplained", time(i),
                    f"counter fell from {prev} to {v} with no recorded replacement; "
                    "treated as a reset (counting on from the new value)"))
                offset += prev - v
        if not skip:
            c = v + offset
            if c < cont[last]:
                # only after the offset moved (a reset, a wrap, a replacement): the rounding of
                # `v + offset` can put the counter an ulp below the knot before (then interval_energy
                # refused the series, and the rollup with it); count on from the knot before instead
                offset = float(cont[last]) - v
                while v + offset < cont[last]:
                    offset = math.nextafter(offset, math.inf)
                c = v + offset
            knot[i], cont[i], last = True, c, i
            prev, prev_ts = v, ts
        i += 1
    return knot, cont, findings


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
       energy; the next computation with more readings decides it. A rise beyond the rated power
       at the very last reading waits the same way (finding ``counter_rise_provisional``);
    5. a drop the next reading continues from that matches the rollover width (the counter was in
       the upper half of its range, is now in the lower half, and ``reading + width - previous``
       is within the rated power × elapsed time, or with no rating within 1/8 of the width): the
       energy is ``reading + width - previous``
       (finding ``counter_rollover``);
    6. any other drop the next reading continues from is a reset: the counter counts on from its
       new value and the step itself is given no energy, so a drop never makes energy. With no
       recorded event it is unexplained (finding ``counter_drop_unexplained``).

    A rise above the rated power that is not an isolated outlier is kept; :func:`counter_energy`
    reports it as a ``spike`` and marks its intervals suspect.

    References
    ----------
    docs/accounting.md "From meter counters to energy"; DESIGN.md "Energy comes from cumulative counters".

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


