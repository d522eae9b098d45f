"""Energy in standard coal equivalent (kgce).

Factors are data (``metrics/factors/standard_coal.yaml``). Electricity is converted either at its
equivalent value (当量值, 0.1229 kgce/kWh, fixed by the standard) or at an equal value (等价值, the
coal burnt per kWh supplied, which the user states for the year, e.g. the published national
average coal consumption of thermal power supply).

References
----------
GB/T 2589-2020 综合能耗计算通则, 附录 A (折标准煤系数参考值) and 附录 B.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from metrics.exact import ExactDecimal



class Carrier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str
    per_unit: ExactDecimal  #: [kgce/unit]
    note: str | None = None



class CoalFactors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    carriers: dict[str, Carrier]


@dataclass(frozen=True)
class CoalResult:
    total_kgce: Decimal  #: [kgce]
    by_carrier: dict[str, Decimal]  #: [kgce]
    factors: dict[str, Decimal]  #: the factor used per carrier [kgce/unit]
    electricity_method: str
    source: str


def standard_coal(
    quantities: Mapping[str, int | Decimal],
    *,
    electricity_method: Literal["equivalent", "equal_value"] = "equivalent",
    equal_value_kgce_per_kwh: Decimal | None = None,
    factors: CoalFactors,
) -> CoalResult:
    """Convert energy quantities to standard coal.

    Parameters
    ----------
    quantities : per carrier, in the unit its key names: ``electricity_wh`` [Wh, int],
        ``natural_gas_m3`` [m³], ``diesel_kg`` [kg], ``heat_mj`` [MJ]; other carriers when the
        factor file lists them
    electricity_method : "equivalent" (当量值, 0.1229 kgce/kWh) or "equal_value" (等价值)
    equal_value_kgce_per_kwh : the equal value, required with ``electricity_method="equal_value"``
        [kgce/kWh]
    factors : the factor table; default the packaged one

    Returns
    -------
    :class:`CoalResult`, exact Decimal [kgce]

    Raises
    ------
    ValueError
        for an unknown carrier, a negative or float quantity, or a missing equal value.

    References
    ----------
    GB/T 2589-2020 附录 A.
    """
    table = factors
    if electricity_method not in ("equivalent", "equal_value"):
        raise ValueError(f"electricity_method must be 'equivalent' or 'equal_value', got {electricity_method!r}")
    if electricity_method == "equal_value":
        if not isinstance(equal_value_kgce_per_kwh, Decimal) or equal_value_kgce_per_kwh <= 0:
            raise ValueError(
                f"equal_value_kgce_per_kwh must be a positive Decimal with electricity_method='equal_value', "
                f"got {equal_value_kgce_per_kwh!r}"
            )
    by: dict[str, Decimal] = {}
    used: dict[str, Decimal] = {}
    for key, q in quantities.items():
        if key not in table.carriers:
            raise ValueError(f"unknown carrier {key!r} (known: {', '.join(sorted(table.carriers))})")
        if isinstance(q, (float, bool)) or not isinstance(q, (int, Decimal)):
            raise ValueError(f"{key} must be an int or Decimal, got {q!r}")
        if q < 0:
            raise ValueError(f"{key} must not be negative, got {q}")
        f = table.carriers[key].per_unit
        amount = Decimal(q)
        if key == "electricity_wh":
            if not isinstance(q, int):
                raise ValueError(f"electricity_wh must be whole Wh (int), got {q!r}")
            if electricity_method == "equal_value":
                f = equal_value_kgce_per_kwh
            amount = amount / 1000  # Wh -> kWh
        used[key] = f
        by[key] = amount * f
    return CoalResult(sum(by.values(), Decimal(0)), by, used, electricity_method, table.source)
