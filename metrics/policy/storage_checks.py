"""Telemetry checks of a PV/storage project's nameplate claims (rule R3), from stored interval energy.

References
----------
晋政规〔2024〕2号 §三(一): "同步配套建成投产不小于项目规模10%（时长不低于2小时）的电化学储能设施".

How the clause is read (docs/accounting.md "R3 telemetry checks"):

- Each interval's discharge energy counts at most rated power × the interval's length: a
  meter reading more than the battery can deliver shows nothing beyond its rating.
- Suspect intervals (a reading above the rating or of suspect quality took part) do not count:
  they end a discharge episode and add no energy.
- "时长不低于2小时" = one continuous discharge of at least 2 h that delivers at least 2 h × rated
  power. Tolerance: the energy may fall short by ``tolerance`` (5 % by default, metering and
  ageing); the duration may not (at least 8 back-to-back quarter hours).
- Telemetry that covers a period with no discharge at all is evidence *against* the storage:
  ``fail``, not ``unknown``. Only no telemetry at all (no stored interval) is ``unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

from metrics.intervals import INTERVAL_S

CheckStatus = Literal["pass", "fail", "unknown"]


@dataclass(frozen=True)
class Check:
    """Outcome of one telemetry check of a nameplate claim, with the data behind it."""

    name: str
    status: CheckStatus
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Interval:
    """Energy of one interval (as :class:`metrics.intervals.IntervalEnergy`, with its length)."""

    start: datetime  #: timezone-aware
    energy_wh: int  #: [Wh]
    length_s: int = 900  #: [s]
    estimated: bool = False
    suspect: bool = False  #: a reading above the rating or of suspect quality took part: not counted


def _len(iv: Any) -> int:
    """Length of an interval; :class:`metrics.intervals.IntervalEnergy` has none and is 15 min."""
    return getattr(iv, "length_s", INTERVAL_S)


def check_pv_produced_after(
    intervals: Sequence[Interval], commissioned: date, tz: str = "Asia/Shanghai"
) -> Check:
    """The PV produced energy on or after its stated commissioning date.

    Parameters
    ----------
    intervals : interval energy of the PV generation point(s) [Wh]
    commissioned : the commissioning date claimed, a local calendar day
    tz : the enterprise's time zone

    Returns
    -------
    :class:`Check`: ``pass`` when any interval starting on or after local midnight of
    ``commissioned`` has energy > 0; ``fail`` when readings exist after it and all are 0;
    ``unknown`` when there are no readings after it. Energy before the date is reported in the
    data (a project producing long before its claimed date deserves a look) but does not fail it.
    """
    start = datetime.combine(commissioned, datetime.min.time(), ZoneInfo(tz))
    after = [iv for iv in intervals if iv.start >= start]
    before_wh = sum(iv.energy_wh for iv in intervals if iv.start < start)
    after_wh = sum(iv.energy_wh for iv in after)
    first = next((iv.start for iv in sorted(after, key=lambda i: i.start) if iv.energy_wh > 0), None)
    data = {
        "commissioned": commissioned.isoformat(),
        "intervals_after": len(after),
        "energy_after_wh": after_wh,
        "energy_before_wh": before_wh,
        "first_production": first.isoformat() if first else None,
    }
    if not after:
        return Check("pv_produced_after_commissioning", "unknown", f"no PV readings on or after {commissioned}", data)
    if after_wh > 0:
        return Check("pv_produced_after_commissioning", "pass",
                     f"PV produced {after_wh} Wh on or after {commissioned}, first at {first}", data)
    return Check("pv_produced_after_commissioning", "fail",
                 f"{len(after)} intervals on or after {commissioned}, none with PV energy", data)


@dataclass(frozen=True)
class Episode:
    start: datetime
    end: datetime
    energy_wh: int
    intervals: int
    estimated_intervals: int

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


def capped_wh(iv: Any, rated_power_w: int | None) -> int:
    """An interval's energy, at most rated power × its length (floor) [Wh]."""
    if rated_power_w is None:
        return iv.energy_wh
    return min(iv.energy_wh, rated_power_w * _len(iv) // 3600)


def discharge_episodes(intervals: Sequence[Interval], min_power_w: Fraction = Fraction(0),
                       rated_power_w: int | None = None) -> list[Episode]:
    """Continuous discharge episodes: runs of back-to-back intervals whose mean power exceeds a floor.

    Parameters
    ----------
    intervals : interval energy of the storage discharge point (:class:`Interval` or
        :class:`metrics.intervals.IntervalEnergy`) [Wh]
    min_power_w : an interval whose mean power (energy / length) is at most this ends an episode [W]
    rated_power_w : each interval counts at most this power × its length [W]; None: uncapped

    Returns
    -------
    the episodes in time order. Intervals are back-to-back when one starts where the previous
    ends; a missing interval, or a suspect one (which counts no energy), ends an episode.
    """
    out: list[Episode] = []
    cur: list[Interval] = []

    def close() -> None:
        if cur:
            end = cur[-1].start + timedelta(seconds=_len(cur[-1]))
            out.append(Episode(cur[0].start, end, sum(capped_wh(i, rated_power_w) for i in cur), len(cur),
                               sum(i.estimated for i in cur)))
            cur.clear()

    for iv in sorted(intervals, key=lambda i: i.start):
        if _len(iv) <= 0:
            raise ValueError(f"interval at {iv.start} has length {_len(iv)} s")
        if iv.energy_wh < 0:
            raise ValueError(f"discharge energy {iv.energy_wh} Wh at {iv.start} is negative")
        active = (not getattr(iv, "suspect", False)
                  and Fraction(capped_wh(iv, rated_power_w) * 3600, _len(iv)) > min_power_w)
        if active and cur and cur[-1].start + timedelta(seconds=_len(cur[-1])) != iv.start:
            close()
        if active:
            cur.append(iv)
        else:
            close()
    close()
    return out


def check_storage_duration(
    intervals: Sequence[Interval],
    rated_power_w: int,
    min_hours: Decimal = Decimal("2"),
    tolerance: Decimal = Decimal("0.05"),
    idle_fraction: Decimal = Decimal("0.01"),
) -> Check:
    """The battery delivered, in one continuous discharge of at least ``min_hours``, at least
    ``min_hours`` × its rated power.

    Parameters
    ----------
    intervals : interval energy of the storage discharge point (:class:`Interval` or
        :class:`metrics.intervals.IntervalEnergy`) [Wh]
    rated_power_w : the storage's nameplate power [W]
    min_hours : the duration the nameplate claims to reach [h]
    tolerance : the shortfall accepted for metering and ageing, as a fraction of the required
        energy [1]; the check passes at ``energy ≥ min_hours × rated × (1 − tolerance)``
    idle_fraction : an interval whose mean power is at most this fraction of rated power ends a
        discharge episode [1]

    Returns
    -------
    :class:`Check` with the episode that delivered the most energy: ``pass`` when one episode
    lasts at least ``min_hours`` and delivers the required energy; ``fail`` when none does, and
    when the telemetry shows no discharge at all (evidence against the storage); ``unknown`` when
    there is no telemetry (no interval), or when it passes only thanks to estimated intervals
    (interpolated across a gap, so the continuity is not observed).

    Notes
    -----
    Each interval counts at most ``rated_power_w`` × its length; suspect intervals count nothing
    and end an episode. Tolerance is on the energy only (``tolerance``); the duration must reach
    ``min_hours``. The required energy is compared exactly in Decimal.

    References
    ----------
    晋政规〔2024〕2号 §三(一) "时长不低于2小时".
    """
    if not isinstance(rated_power_w, int) or rated_power_w <= 0:
        raise ValueError(f"rated_power_w must be a positive whole number of W, got {rated_power_w!r}")
    if not (Decimal(0) <= tolerance < 1):
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    required = min_hours * rated_power_w * (1 - tolerance)
    floor = Fraction(idle_fraction) * rated_power_w
    eps = discharge_episodes(intervals, floor, rated_power_w)
    suspect = sum(bool(getattr(iv, "suspect", False)) for iv in intervals)
    data: dict[str, Any] = {
        "rated_power_w": rated_power_w,
        "min_hours": str(min_hours),
        "tolerance": str(tolerance),
        "required_wh": str(required),
        "episodes": len(eps),
        "intervals": len(intervals),
        "suspect_intervals_not_counted": suspect,
        "reading": "one continuous discharge ≥ min_hours delivering ≥ min_hours × rated × (1 − tolerance); "
                   "each interval capped at rated × length; suspect intervals not counted",
    }
    name = "storage_discharge_duration"
    if not intervals:
        return Check(name, "unknown", "no storage telemetry in the period", data)
    if not eps:
        return Check(name, "fail", f"{len(intervals)} intervals of storage telemetry show no discharge "
                     f"(none above {idle_fraction:%} of the rated {rated_power_w} W)", data)
    min_s = float(min_hours) * 3600
    long_enough = [e for e in eps if e.duration_s >= min_s]
    best = max(long_enough or eps, key=lambda e: (e.energy_wh, e.duration_s))
    data.update({
        "episode_start": best.start.isoformat(), "episode_end": best.end.isoformat(),
        "episode_energy_wh": best.energy_wh, "episode_hours": round(best.duration_s / 3600, 3),
        "episode_estimated_intervals": best.estimated_intervals,
        "equivalent_hours_at_rated": str((Decimal(best.energy_wh) / rated_power_w).quantize(Decimal("0.001"))),
    })
    if best.duration_s < min_s:
        return Check(name, "fail",
                     f"the longest continuous discharge lasted {best.duration_s / 3600:g} h, short of {min_hours} h "
                     f"(it delivered {best.energy_wh} Wh)", data)
    if best.energy_wh >= required:
        if best.estimated_intervals:
            return Check(name, "unknown",
                         f"discharge of {best.energy_wh} Wh reaches {required} Wh only across "
                         f"{best.estimated_intervals} estimated intervals", data)
        return Check(name, "pass", f"one discharge delivered {best.energy_wh} Wh ≥ {required} Wh", data)
    return Check(name, "fail",
                 f"the largest continuous discharge of at least {min_hours} h delivered {best.energy_wh} Wh, "
                 f"short of {required} Wh "
                 f"({min_hours} h × {rated_power_w} W less {tolerance:%})", data)


def check_storage_power_ratio(
    intervals: Sequence[Interval],
    pv_w: int,
    min_ratio: Decimal = Decimal("0.1"),
    tolerance: Decimal = Decimal("0.05"),
    rated_power_w: int | None = None,
) -> Check:
    """The measured storage power reached ``min_ratio`` of the PV capacity.

    Parameters
    ----------
    intervals : interval energy of the storage discharge point (:class:`Interval` or
        :class:`metrics.intervals.IntervalEnergy`) [Wh]
    pv_w : the PV project's nameplate capacity [W]
    min_ratio : storage power / PV capacity to reach (不小于项目规模10%) [1]
    tolerance : accepted shortfall, as a fraction of the required power [1]

    Returns
    -------
    :class:`Check`; the measured power is the highest mean discharge power over one interval (a
    15-minute mean understates a short peak, never overstates it), at most ``rated_power_w``;
    suspect intervals do not count. ``fail`` when the telemetry shows no discharge at all,
    ``unknown`` without telemetry.
    """
    if not isinstance(pv_w, int) or pv_w <= 0:
        raise ValueError(f"pv_w must be a positive whole number of W, got {pv_w!r}")
    name = "storage_power_ratio"
    powers = [(Fraction(capped_wh(iv, rated_power_w) * 3600, _len(iv)), iv) for iv in intervals
              if iv.energy_wh > 0 and not getattr(iv, "suspect", False)]
    required = Fraction(min_ratio) * pv_w * (1 - Fraction(tolerance))
    data: dict[str, Any] = {"pv_w": pv_w, "min_ratio": str(min_ratio), "tolerance": str(tolerance),
                            "required_w": float(required)}
    if not intervals:
        return Check(name, "unknown", "no storage telemetry in the period", data)
    if not powers:
        return Check(name, "fail", f"{len(intervals)} intervals of storage telemetry show no (unsuspect) discharge",
                     data)
    peak, iv = max(powers, key=lambda p: p[0])
    data.update({"max_mean_power_w": float(peak), "at": iv.start.isoformat(), "ratio": float(peak / pv_w)})
    if peak >= required:
        return Check(name, "pass", f"discharge reached {float(peak):.0f} W, {float(peak / pv_w):.1%} of PV", data)
    return Check(name, "fail", f"discharge peaked at {float(peak):.0f} W, {float(peak / pv_w):.1%} of PV, "
                 f"below {min_ratio:%}", data)


def telemetry_checks(
    pv_w: int,
    commissioned: date,
    *,
    pv_intervals: Sequence[Any] | None = None,
    discharge_intervals: Sequence[Any] | None = None,
    storage_power_w: int | None = None,
    tz: str = "Asia/Shanghai",
    min_hours: Decimal = Decimal("2"),
    min_ratio: Decimal = Decimal("0.1"),
    tolerance: Decimal = Decimal("0.05"),
) -> tuple[Check, ...]:
    """Run every R3 telemetry check that the data allows, for :attr:`PvProject.checks`.

    Parameters
    ----------
    pv_w : PV nameplate capacity [W]
    commissioned : the PV's stated commissioning date (local)
    pv_intervals : interval energy of the PV generation point(s), or None when not metered [Wh]
    discharge_intervals : interval energy of the storage discharge point, or None [Wh]
    storage_power_w : storage nameplate power, or None when the project has no storage [W]
    tz, min_hours, min_ratio, tolerance : as in the single checks

    Returns
    -------
    the checks; a check without its data comes out ``unknown`` with the detail saying so.
    """
    out = []
    if pv_intervals is None:
        out.append(Check("pv_produced_after_commissioning", "unknown", "no PV generation point metered"))
    else:
        out.append(check_pv_produced_after(pv_intervals, commissioned, tz))
    if storage_power_w is not None:
        if discharge_intervals is None:
            out.append(Check("storage_discharge_duration", "unknown", "no storage discharge point metered"))
            out.append(Check("storage_power_ratio", "unknown", "no storage discharge point metered"))
        else:
            out.append(check_storage_duration(discharge_intervals, storage_power_w, min_hours, tolerance))
            out.append(check_storage_power_ratio(discharge_intervals, pv_w, min_ratio, tolerance, storage_power_w))
    return tuple(out)
