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

import numpy as np

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


#: the columns of :class:`BalanceColumns`, in :class:`IntervalBalance`'s order
_COLS = ("import_wh", "export_wh", "pv_wh", "charge_wh", "discharge_wh", "consumption_wh", "pv_export_wh",
         "pv_to_battery_wh", "grid_to_battery_wh", "pv_self_consumed_wh", "pv_direct_wh", "green_discharge_wh")


@dataclass
class BalanceColumns:
    """The balance of a run of intervals as columns (int64 Wh, exact): what :func:`balance_columns`
    computes; :meth:`objects` gives the same as :class:`IntervalBalance` one by one."""

    t: np.ndarray  #: interval starts [s since the Unix epoch]
    import_wh: np.ndarray
    export_wh: np.ndarray
    pv_wh: np.ndarray
    charge_wh: np.ndarray
    discharge_wh: np.ndarray
    consumption_wh: np.ndarray
    pv_export_wh: np.ndarray
    pv_to_battery_wh: np.ndarray
    grid_to_battery_wh: np.ndarray
    pv_self_consumed_wh: np.ndarray
    pv_direct_wh: np.ndarray
    green_discharge_wh: np.ndarray
    estimated: np.ndarray  #: bool

    @property
    def green_wh(self) -> np.ndarray:
        return self.pv_direct_wh + self.green_discharge_wh

    def __len__(self) -> int:
        return len(self.t)

    def objects(self) -> list[IntervalBalance]:
        from metrics.bundle import from_epoch_s

        cols = [getattr(self, c).tolist() for c in _COLS]
        return [IntervalBalance(from_epoch_s(t), *vals, estimated=est)
                for t, *vals, est in zip(self.t.tolist(), *cols, self.estimated.tolist())]


def balance_columns(t: np.ndarray, energy: Mapping[str, np.ndarray], estimated: np.ndarray,
                    pool: BatteryPool | None = None, resets: np.ndarray | None = None
                    ) -> tuple[BalanceColumns, BatteryPool]:
    """Balance every interval of ``t`` (interval starts, in time order).

    Parameters
    ----------
    t : interval starts [s since the Unix epoch]
    energy : per role (:data:`ROLES`), the energy of each interval of ``t`` (int64 Wh; a role the
        site does not have may be missing)
    estimated : per interval, whether it is estimated
    pool : the battery's energy and its green part at the start [Wh]; empty when not given, so
        energy already in the battery counts as not green
    resets : indices of ``t`` before which the pool is emptied (a day balance starts each local
        day with an empty battery)

    Returns
    -------
    the columns, and the pool at the end

    Notes
    -----
    Export is attributed to PV first, then to battery discharge. PV not exported charges the
    battery before grid energy does. Within an interval the battery is charged before it is
    discharged. A discharge takes green energy in the proportion the pool holds it, rounded down,
    so rounding never makes energy greener. The pool is carried interval by interval in Python
    integers (exact), over the intervals where the battery charged or discharged.

    Raises
    ------
    ValueError
        for an unknown role or a negative interval energy.
    """
    unknown = set(energy) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)} (known: {', '.join(ROLES)})")
    n = len(t)
    zero = np.zeros(n, np.int64)
    e = {role: np.asarray(energy[role], np.int64) if role in energy else zero for role in ROLES}
    for role in ROLES:
        neg = np.flatnonzero(e[role] < 0)
        if len(neg):
            from metrics.bundle import from_epoch_s

            k = int(neg[0])
            raise ValueError(f"{role} energy {int(e[role][k])} Wh at {from_epoch_s(int(t[k]))} is negative")
    imp, exp, pv = e["grid_import"], e["grid_export"], e["pv_generation"]
    chg, dis = e["storage_charge"], e["storage_discharge"]
    pv_export = np.minimum(exp, pv)
    pv_kept = pv - pv_export
    pv_to_batt = np.minimum(chg, pv_kept)
    batt_export = np.minimum(exp - pv_export, dis)
    green_dis = np.zeros(n, np.int64)
    pool = BatteryPool(pool.total_wh, pool.green_wh) if pool else BatteryPool()
    active = np.flatnonzero((chg > 0) | (dis > 0))
    rs = np.zeros(0, np.int64) if resets is None else np.unique(np.asarray(resets, np.int64))
    if len(active):
        total, green = pool.total_wh, pool.green_wh
        reset = np.zeros(len(active), bool)  # the pool empties before this active interval
        reset[np.searchsorted(active, rs)[np.searchsorted(active, rs) < len(active)]] = True
        out = []
        append = out.append
        for c, ptb, d, bex, rz in zip(chg[active].tolist(), pv_to_batt[active].tolist(), dis[active].tolist(),
                                      batt_export[active].tolist(), reset.tolist()):
            if rz:
                total = green = 0
            total += c
            green += ptb
            from_pool = d if d < total else total
            gd = from_pool * green // total if total else 0
            total -= from_pool
            green -= gd
            append(gd - (bex * gd // d if d else 0))  # the green part exported is not used on site
        if len(rs) and rs[-1] > active[-1]:
            total = green = 0  # a reset after the last active interval
        green_dis[active] = out
        pool = BatteryPool(total, green)
    elif len(rs):
        pool = BatteryPool()
    cols = BalanceColumns(np.asarray(t, np.int64), imp, exp, pv, chg, dis, imp - exp + pv + dis - chg, pv_export,
                          pv_to_batt, chg - pv_to_batt, pv_kept, pv_kept - pv_to_batt, green_dis,
                          np.asarray(estimated, bool))
    return cols, pool


def site_balance(
    energy: Mapping[str, Mapping[datetime, IntervalEnergy]],
    pool: BatteryPool | None = None,
) -> tuple[list[IntervalBalance], BatteryPool]:
    """Balance every interval for which any role has energy (:func:`balance_columns` on interval
    objects: ``energy`` per role keyed by interval start; an interval is estimated when any role's
    is). Returns the balance of each interval in time order, and the pool at the end."""
    from metrics.bundle import epoch_s

    unknown = set(energy) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)} (known: {', '.join(ROLES)})")
    starts = sorted({t for series in energy.values() for t in series})
    cols = {role: np.array([(series[t].energy_wh if t in series else 0) for t in starts], np.int64)
            for role, series in energy.items()}
    est = np.array([any(s[t].estimated for s in energy.values() if t in s) for t in starts], bool)
    out, pool = balance_columns(np.array([epoch_s(t) for t in starts], np.int64), cols, est, pool)
    return out.objects(), pool


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


def column_totals(b: BalanceColumns) -> BalanceTotals:
    """Sum the balance columns [Wh] (Python integers)."""
    return BalanceTotals(len(b), int(b.estimated.sum()), int(b.import_wh.sum()), int(b.export_wh.sum()),
                         int(b.pv_wh.sum()), int(b.charge_wh.sum()), int(b.discharge_wh.sum()),
                         int(b.consumption_wh.sum()), int(b.pv_self_consumed_wh.sum()), int(b.green_wh.sum()))


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
