"""The quantities GreenGauge stores, each with its one canonical unit.

Units are fixed at the boundary: a profile may describe a register in kWh, kW or 0.01 A, the
collector converts every value to the canonical unit below before it is stored, so columns and
variables downstream can carry the unit in their name (``energy_wh``, ``power_w``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Kind = Literal["counter", "gauge"]


@dataclass(frozen=True)
class Quantity:
    name: str
    unit: str
    kind: Kind
    description: str


QUANTITIES: dict[str, Quantity] = {
    q.name: q
    for q in [
        Quantity("energy_import", "Wh", "counter", "active energy imported (delivered to the site side of the meter)"),
        Quantity("energy_export", "Wh", "counter", "active energy exported"),
        Quantity("active_power", "W", "gauge", "total active power; its sign follows the device's role (docs/devices.md)"),
        Quantity("active_power_l1", "W", "gauge", "active power phase L1"),
        Quantity("active_power_l2", "W", "gauge", "active power phase L2"),
        Quantity("active_power_l3", "W", "gauge", "active power phase L3"),
        Quantity("voltage_l1", "V", "gauge", "phase voltage L1-N"),
        Quantity("voltage_l2", "V", "gauge", "phase voltage L2-N"),
        Quantity("voltage_l3", "V", "gauge", "phase voltage L3-N"),
        Quantity("current_l1", "A", "gauge", "phase current L1"),
        Quantity("current_l2", "A", "gauge", "phase current L2"),
        Quantity("current_l3", "A", "gauge", "phase current L3"),
        Quantity("frequency", "Hz", "gauge", "grid frequency"),
        Quantity("power_factor", "1", "gauge", "total power factor"),
        Quantity("state_of_charge", "%", "gauge", "battery state of charge"),
        Quantity("state_of_health", "%", "gauge", "battery state of health"),
        # nameplate ratings read from devices (SunSpec models 120, 702, 713, 802)
        Quantity("capacity_w", "W", "gauge", "rated (nameplate) active power of the device"),
        Quantity("storage_capacity_wh", "Wh", "gauge", "rated (nameplate) energy capacity of a storage device"),
        # other energy carriers, for standard coal (GB/T 2589-2020 附录 A) and carbon
        Quantity("gas_volume", "m3", "counter", "natural gas consumed, cumulative (standard m3)"),
        Quantity("diesel_mass", "kg", "counter", "diesel consumed, cumulative"),
        Quantity("heat_energy", "MJ", "counter", "purchased heat (steam, hot water) received, cumulative"),
    ]
}

# Conversions from a unit a profile may use to the canonical unit: canonical = raw * factor.
UNIT_FACTORS: dict[tuple[str, str], Decimal] = {
    ("Wh", "Wh"): Decimal(1),
    ("kWh", "Wh"): Decimal(1000),
    ("MWh", "Wh"): Decimal(1_000_000),
    ("W", "W"): Decimal(1),
    ("kW", "W"): Decimal(1000),
    ("MW", "W"): Decimal(1_000_000),
    ("V", "V"): Decimal(1),
    ("kV", "V"): Decimal(1000),
    ("A", "A"): Decimal(1),
    ("mA", "A"): Decimal("0.001"),
    ("Hz", "Hz"): Decimal(1),
    ("1", "1"): Decimal(1),
    ("%", "%"): Decimal(1),
    ("%", "1"): Decimal("0.01"),
    ("m3", "m3"): Decimal(1),
    ("kg", "kg"): Decimal(1),
    ("t", "kg"): Decimal(1000),
    ("MJ", "MJ"): Decimal(1),
    ("GJ", "MJ"): Decimal(1000),
    ("kWh", "MJ"): Decimal("3.6"),  # power factor given in percent (SunSpec PF, units Pct)
}


def unit_factor(unit: str, quantity: str) -> Decimal:
    """Factor that turns a value in ``unit`` into the canonical unit of ``quantity``.

    Raises ``ValueError`` naming both when the unit does not fit the quantity.
    """
    if quantity not in QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r} (known: {', '.join(sorted(QUANTITIES))})")
    canonical = QUANTITIES[quantity].unit
    try:
        return UNIT_FACTORS[(unit, canonical)]
    except KeyError:
        fits = sorted(u for (u, c) in UNIT_FACTORS if c == canonical)
        raise ValueError(
            f"unit {unit!r} does not fit quantity {quantity!r} (canonical {canonical}; use one of {', '.join(fits)})"
        ) from None
