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

INTERVAL_S = 900  # 15 minutes

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy of one interval of one counter."""

    start: datetime  #: interval start, UTC
    energy_wh: int  #: [Wh]
    estimated: bool  #: interpolated across a gap, or only partly covered by readings


@dataclass(frozen=True, slots=True)
class CounterFinding:
    """Something about a counter series worth showing (kind as in DESIGN's data-quality findings)."""

    kind: str
    ts: datetime
    detail: str


def floor_interval(ts: datetime, interval_s: int = INTERVAL_S) -> datetime:
    """Start of the interval holding ``ts``; intervals are aligned to the Unix epoch.

    Every time zone in use today is offset from UTC by a whole number of quarter hours, so these
    15-minute intervals are also local quarter hours.
    """
    seconds = math.floor((ts - _EPOCH).total_seconds() / interval_s) * interval_s
    return _EPOCH + timedelta(seconds=seconds)


def continuous_counter(
    values: Sequence[float], timestamps: Sequence[datetime]
) -> tuple[list[float], list[CounterFinding]]:
    """Remove drops from a raw counter so it only ever rises.

    A drop is treated as a reset: the counter counts on from its new value and no energy is
    assigned to the drop itself (never negative energy). Each drop is reported as a
    ``counter_reset`` finding.

    Parameters
    ----------
    values : raw counter readings, in time order [Wh]
    timestamps : the readings' times

    Returns
    -------
    the continuous counter [Wh] and the findings
    """
    out: list[float] = []
    findings: list[CounterFinding] = []
    offset = 0.0
    prev = None
    for v, ts in zip(values, timestamps):
        if prev is not None and v < prev:
            findings.append(CounterFinding("counter_reset", ts, f"counter fell from {prev} to {v}"))
            offset += prev - v
        out.append(v + offset)
        prev = v
    return out, findings


def interval_energy(
    timestamps: Sequence[datetime],
    values: Sequence[float],
    *,
    interval_s: int = INTERVAL_S,
    max_gap_s: float = INTERVAL_S,
) -> list[IntervalEnergy]:
    """Interval energy from readings of a cumulative, continuous counter.

    Parameters
    ----------
    timestamps : reading times, strictly increasing, timezone-aware
    values : counter readings, never falling (see :func:`continuous_counter`) [Wh]
    interval_s : interval length [s]
    max_gap_s : readings further apart than this make the intervals between them estimated [s]

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
    g = 0
    for (ta, ca), (tb, cb) in zip(knots, knots[1:]):
        start = floor_interval(ta, interval_s)
        partial = ta != start or tb != start + step
        while g < len(gaps) and gaps[g][1] <= ta:
            g += 1
        in_gap = g < len(gaps) and gaps[g][0] < tb
        out.append(IntervalEnergy(start, cb - ca, partial or in_gap))
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
                out[iv.start] = IntervalEnergy(iv.start, prev.energy_wh + iv.energy_wh, prev.estimated or iv.estimated)
    return dict(sorted(out.items()))
