"""The site energy balance per interval, and where the PV and battery energy went.

References
----------
Rule R1 of shared/policies/README.md (2024-2 §三(一), 2025-5 §三(三)): green electricity
consumed is self-consumed on-site renewable generation; battery discharge counts as green only to
the extent the battery was charged from on-site renewables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from metrics.intervals import IntervalEnergy

ROLES = ("grid_import", "grid_export", "pv_generation", "storage_charge", "storage_discharge")


@dataclass
class BatteryPool:
    """Energy in the battery as metered at its terminals, and how much of it came from PV [Wh]."""

    total_wh: int = 0
    green_wh: int = 0


@dataclass(frozen=True, slots=True)
class IntervalBalance:
    start: datetime
    import_wh: int
    export_wh: int
    pv_wh: int
    charge_wh: int
    discharge_wh: int
    consumption_wh: int  #: import - export + PV + discharge - charge
    pv_export_wh: int  #: the part of export that was PV
    pv_to_battery_wh: int
    grid_to_battery_wh: int
    pv_self_consumed_wh: int  #: PV - PV's part of export (includes PV stored in the battery)
    pv_direct_wh: int  #: PV used on site at once
    green_discharge_wh: int  #: discharge used on site that was charged from PV
    estimated: bool

    @property
    def green_wh(self) -> int:
        """Green electricity consumed in the interval: PV used at once + green battery discharge."""
        return self.pv_direct_wh + self.green_discharge_wh


def site_balance(
    energy: Mapping[str, Mapping[datetime, IntervalEnergy]],
    pool: BatteryPool | None = None,
) -> tuple[list[IntervalBalance], BatteryPool]:
    """Balance every interval for which any role has energy.

    Parameters
    ----------
    energy : interval energy per role (``grid_import``, ``grid_export``, ``pv_generation``,
        ``storage_charge``, ``storage_discharge``), each keyed by interval start [Wh]; a role a
        site does not have may be missing
    pool : the battery's energy and its green part at the start [Wh]; empty when not given, so
        energy already in the battery counts as not green

    Returns
    -------
    the balance of each interval in time order, and the pool at the end

    Notes
    -----
    Export is attributed to PV first, then to battery discharge. PV not exported charges the
    battery before grid energy does. Within an interval the battery is charged before it is
    discharged. A discharge takes green energy in the proportion the pool holds it, rounded down,
    so rounding never makes energy greener.

    Raises
    ------
    ValueError
        for an unknown role or a negative interval energy.
    """
    unknown = set(energy) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)} (known: {', '.join(ROLES)})")
    pool = BatteryPool(pool.total_wh, pool.green_wh) if pool else BatteryPool()
    starts = sorted({t for series in energy.values() for t in series})
    out: list[IntervalBalance] = []
    for t in starts:
        e = {}
        estimated = False
        for role in ROLES:
            iv = energy.get(role, {}).get(t)
            e[role] = iv.energy_wh if iv else 0
            if e[role] < 0:
                raise ValueError(f"{role} energy {e[role]} Wh at {t} is negative")
            estimated = estimated or (iv.estimated if iv else False)
        imp, exp, pv = e["grid_import"], e["grid_export"], e["pv_generation"]
        chg, dis = e["storage_charge"], e["storage_discharge"]
        pv_export = min(exp, pv)
        pv_kept = pv - pv_export
        pv_to_batt = min(chg, pv_kept)
        grid_to_batt = chg - pv_to_batt
        pool.total_wh += chg
        pool.green_wh += pv_to_batt
        from_pool = min(dis, pool.total_wh)
        green_dis = from_pool * pool.green_wh // pool.total_wh if pool.total_wh else 0
        pool.total_wh -= from_pool
        pool.green_wh -= green_dis
        batt_export = min(exp - pv_export, dis)
        green_exported = batt_export * green_dis // dis if dis else 0
        out.append(IntervalBalance(
            start=t, import_wh=imp, export_wh=exp, pv_wh=pv, charge_wh=chg, discharge_wh=dis,
            consumption_wh=imp - exp + pv + dis - chg,
            pv_export_wh=pv_export, pv_to_battery_wh=pv_to_batt, grid_to_battery_wh=grid_to_batt,
            pv_self_consumed_wh=pv_kept, pv_direct_wh=pv_kept - pv_to_batt,
            green_discharge_wh=green_dis - green_exported, estimated=estimated,
        ))
    return out, pool


@dataclass(frozen=True)
class BalanceTotals:
    intervals: int
    estimated_intervals: int
    import_wh: int = 0
    export_wh: int = 0
    pv_wh: int = 0
    charge_wh: int = 0
    discharge_wh: int = 0
    consumption_wh: int = 0
    pv_self_consumed_wh: int = 0
    green_wh: int = 0


def totals(balance: list[IntervalBalance]) -> BalanceTotals:
    """Sum a list of interval balances [Wh]."""
    return BalanceTotals(
        intervals=len(balance),
        estimated_intervals=sum(b.estimated for b in balance),
        import_wh=sum(b.import_wh for b in balance),
        export_wh=sum(b.export_wh for b in balance),
        pv_wh=sum(b.pv_wh for b in balance),
        charge_wh=sum(b.charge_wh for b in balance),
        discharge_wh=sum(b.discharge_wh for b in balance),
        consumption_wh=sum(b.consumption_wh for b in balance),
        pv_self_consumed_wh=sum(b.pv_self_consumed_wh for b in balance),
        green_wh=sum(b.green_wh for b in balance),
    )
