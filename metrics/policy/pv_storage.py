"""Rooftop PV and battery storage construction subsidy (rule R3), and the telemetry checks behind it.

References
----------
晋政规〔2024〕2号 §三(一): "鼓励支持工业企业利用屋顶等资源建设分布式光伏 ... 按建设容量（装机容量≥0.5兆瓦）
给予1兆瓦4万元一次性建设补助，同步配套建成投产不小于项目规模10%（时长不低于2小时）的电化学储能设施，按建设
容量给予1兆瓦10万元一次性建设补助。单个项目最高不超过30万元，建设容量不足1兆瓦的按比例给予补助。"
The rule is absent from 晉政規〔2025〕5號, which repealed 2024-2 on 2025-06-15.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

from metrics.intervals import INTERVAL_S

FEN = Decimal("0.01")
W_PER_MW = 1_000_000

CheckStatus = Literal["pass", "fail", "unknown"]


# ---- the amounts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PvStorageAward:
    pv_ok: bool
    storage_ok: bool | None  #: None when the project has no storage
    pv_amount: Decimal  #: [yuan]
    storage_amount: Decimal  #: [yuan]
    uncapped: Decimal  #: [yuan]
    cap: Decimal | None  #: [yuan]
    amount: Decimal  #: PV + storage, after the cap [yuan]
    capped: bool
    reasons: tuple[str, ...]


def _linear(rate_per_mw: Decimal, watts: int) -> Decimal:
    """rate × W / 1e6, cut to the fen: a part of a megawatt is paid for its fraction."""
    return (rate_per_mw * Decimal(watts) / W_PER_MW).quantize(FEN, rounding=ROUND_DOWN)


def pv_storage_award(
    pv_w: int,
    storage_power_w: int | None = None,
    storage_energy_wh: int | None = None,
    *,
    pv_rate: Decimal = Decimal("40000"),
    storage_rate: Decimal = Decimal("100000"),
    pv_min_w: int = 500_000,
    storage_min_power_ratio: Decimal = Decimal("0.1"),
    storage_min_hours: Decimal = Decimal("2"),
    cap: Decimal | None = Decimal("300000"),
) -> PvStorageAward:
    """One-off construction subsidy for one PV project and the storage built with it.

    Parameters
    ----------
    pv_w : installed PV capacity of the project (nameplate, DC or as the filing states) [W]
    storage_power_w : rated power of the electrochemical storage built with it, or None [W]
    storage_energy_wh : rated energy of that storage [Wh]
    pv_rate, storage_rate : subsidy per MW [yuan/MW]
    pv_min_w : smallest PV capacity that qualifies, inclusive (≥0.5 MW) [W]
    storage_min_power_ratio : storage power / PV capacity to reach, inclusive (不小于10%) [1]
    storage_min_hours : storage energy / storage power to reach, inclusive (不低于2小时) [h]
    cap : the largest amount per project, applied last to PV + storage [yuan]

    Returns
    -------
    :class:`PvStorageAward`

    Notes
    -----
    "建设容量不足1兆瓦的按比例给予补助" is read as: the amount is linear in the capacity,
    ``rate × W / 1e6``, so 0.8 MW of PV gets 32,000 and 0.1 MW of storage 10,000; it is never
    rounded to whole MW, and above 1 MW the same linear rule holds. The storage part requires the
    PV part to qualify, because the storage is 同步配套 (built together with) the PV project.
    Every threshold is compared exactly in integers/Decimal.

    Raises
    ------
    ValueError
        when a capacity is not a positive whole number, or only one of storage power and energy
        is given.

    References
    ----------
    晋政规〔2024〕2号 §三(一).
    """
    for name, v in (("pv_w", pv_w), ("storage_power_w", storage_power_w), ("storage_energy_wh", storage_energy_wh)):
        if v is None and name != "pv_w":
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{name} must be a positive whole number, got {v!r}")
    if (storage_power_w is None) != (storage_energy_wh is None):
        raise ValueError(
            f"give both storage_power_w and storage_energy_wh or neither "
            f"(got {storage_power_w!r} and {storage_energy_wh!r})"
        )
    reasons: list[str] = []
    pv_ok = pv_w >= pv_min_w
    if pv_ok:
        reasons.append(f"PV {pv_w} W ≥ {pv_min_w} W")
    else:
        reasons.append(f"PV {pv_w} W is below the {pv_min_w} W floor")
    pv_amount = _linear(pv_rate, pv_w) if pv_ok else Decimal("0.00")

    storage_ok: bool | None = None
    storage_amount = Decimal("0.00")
    if storage_power_w is not None:
        ratio_ok = Decimal(storage_power_w) >= storage_min_power_ratio * pv_w
        hours_ok = Decimal(storage_energy_wh) >= storage_min_hours * storage_power_w
        storage_ok = pv_ok and ratio_ok and hours_ok
        ratio = Fraction(storage_power_w, pv_w)
        if ratio_ok:
            reasons.append(f"storage power {storage_power_w} W is {float(ratio):.1%} of PV, ≥ {storage_min_power_ratio:%}")
        else:
            reasons.append(f"storage power {storage_power_w} W is {float(ratio):.1%} of PV, below {storage_min_power_ratio:%}")
        hours = Fraction(storage_energy_wh, storage_power_w)
        if hours_ok:
            reasons.append(f"storage {storage_energy_wh} Wh / {storage_power_w} W = {float(hours):g} h ≥ {storage_min_hours} h")
        else:
            reasons.append(f"storage {storage_energy_wh} Wh / {storage_power_w} W = {float(hours):g} h, below {storage_min_hours} h")
        if not pv_ok:
            reasons.append("storage is paid only with a qualifying PV project (同步配套)")
        if storage_ok:
            storage_amount = _linear(storage_rate, storage_power_w)
    uncapped = pv_amount + storage_amount
    capped = cap is not None and uncapped > cap
    amount = cap if capped else uncapped
    if capped:
        reasons.append(f"PV {pv_amount} + storage {storage_amount} = {uncapped} yuan, capped at {cap}")
    return PvStorageAward(pv_ok, storage_ok, pv_amount, storage_amount, uncapped, cap, amount, capped, tuple(reasons))


# ---- telemetry checks --------------------------------------------------------------------------

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


def discharge_episodes(intervals: Sequence[Interval], min_power_w: Fraction = Fraction(0)) -> list[Episode]:
    """Continuous discharge episodes: runs of back-to-back intervals whose mean power exceeds a floor.

    Parameters
    ----------
    intervals : interval energy of the storage discharge point (:class:`Interval` or
        :class:`metrics.intervals.IntervalEnergy`) [Wh]
    min_power_w : an interval whose mean power (energy / length) is at most this ends an episode [W]

    Returns
    -------
    the episodes in time order. Intervals are back-to-back when one starts where the previous
    ends; a missing interval ends an episode.
    """
    out: list[Episode] = []
    cur: list[Interval] = []

    def close() -> None:
        if cur:
            end = cur[-1].start + timedelta(seconds=_len(cur[-1]))
            out.append(Episode(cur[0].start, end, sum(i.energy_wh for i in cur), len(cur),
                               sum(i.estimated for i in cur)))
            cur.clear()

    for iv in sorted(intervals, key=lambda i: i.start):
        if _len(iv) <= 0:
            raise ValueError(f"interval at {iv.start} has length {_len(iv)} s")
        if iv.energy_wh < 0:
            raise ValueError(f"discharge energy {iv.energy_wh} Wh at {iv.start} is negative")
        active = Fraction(iv.energy_wh * 3600, _len(iv)) > min_power_w
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
    """The battery delivered, in one continuous discharge, at least ``min_hours`` × its rated power.

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
    :class:`Check` with the episode that delivered the most energy: ``pass`` when it reaches the
    required energy, ``fail`` when it does not, ``unknown`` when there is no discharge at all or
    when it passes only thanks to estimated intervals (interpolated across a gap, so the
    continuity is not observed).

    Notes
    -----
    Energy, not time, decides: a battery run at half power for 4 h has shown the same 2 h × rated
    energy. The required energy is compared exactly in Decimal.

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
    eps = discharge_episodes(intervals, floor)
    data: dict[str, Any] = {
        "rated_power_w": rated_power_w,
        "min_hours": str(min_hours),
        "tolerance": str(tolerance),
        "required_wh": str(required),
        "episodes": len(eps),
        "intervals": len(intervals),
    }
    name = "storage_discharge_duration"
    if not eps:
        return Check(name, "unknown", "no discharge observed", data)
    best = max(eps, key=lambda e: (e.energy_wh, e.duration_s))
    data.update({
        "episode_start": best.start.isoformat(), "episode_end": best.end.isoformat(),
        "episode_energy_wh": best.energy_wh, "episode_hours": round(best.duration_s / 3600, 3),
        "episode_estimated_intervals": best.estimated_intervals,
        "equivalent_hours_at_rated": str((Decimal(best.energy_wh) / rated_power_w).quantize(Decimal("0.001"))),
    })
    if best.energy_wh >= required:
        if best.estimated_intervals:
            return Check(name, "unknown",
                         f"discharge of {best.energy_wh} Wh reaches {required} Wh only across "
                         f"{best.estimated_intervals} estimated intervals", data)
        return Check(name, "pass", f"one discharge delivered {best.energy_wh} Wh ≥ {required} Wh", data)
    return Check(name, "fail",
                 f"the largest continuous discharge delivered {best.energy_wh} Wh, short of {required} Wh "
                 f"({min_hours} h × {rated_power_w} W less {tolerance:%})", data)


def check_storage_power_ratio(
    intervals: Sequence[Interval],
    pv_w: int,
    min_ratio: Decimal = Decimal("0.1"),
    tolerance: Decimal = Decimal("0.05"),
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
    15-minute mean understates a short peak, never overstates it). ``unknown`` without discharge.
    """
    if not isinstance(pv_w, int) or pv_w <= 0:
        raise ValueError(f"pv_w must be a positive whole number of W, got {pv_w!r}")
    name = "storage_power_ratio"
    powers = [(Fraction(iv.energy_wh * 3600, _len(iv)), iv) for iv in intervals if iv.energy_wh > 0]
    required = Fraction(min_ratio) * pv_w * (1 - Fraction(tolerance))
    data: dict[str, Any] = {"pv_w": pv_w, "min_ratio": str(min_ratio), "tolerance": str(tolerance),
                            "required_w": float(required)}
    if not powers:
        return Check(name, "unknown", "no discharge observed", data)
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
            out.append(check_storage_power_ratio(discharge_intervals, pv_w, min_ratio, tolerance))
    return tuple(out)
