"""Rooftop PV and battery storage construction subsidy (rule R3): the amounts from the nameplates.

The telemetry checks that verify the nameplates are in :mod:`metrics.policy.storage_checks`
(re-exported here).

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

from metrics.exact import FEN  # noqa: E402  (defined once)
W_PER_MW = 1_000_000



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


from metrics.policy.storage_checks import (  # noqa: E402,F401  (re-exported)
    Check, CheckStatus, Episode, Interval, check_pv_produced_after, check_storage_duration, check_storage_power_ratio,
    discharge_episodes, telemetry_checks,
)
