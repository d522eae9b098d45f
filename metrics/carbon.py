"""CO2 from purchased electricity: location-based and market-based.

Location-based: all grid import × the average grid factor of the year and region.
Market-based: the grid import not covered by green instruments (settled green-power trades and
green certificates retired for the enterprise, 1 certificate = 1 MWh) × the national factor that
excludes market-traded non-fossil electricity; the covered part counts as zero emission. On-site
PV that is consumed on site is not grid import and carries no emission in either method.

Factor tables are data (``metrics/factors/grid_co2.yaml``) with their source. Which year's factor
is used is configurable: reports often use the latest published factor, two years behind
(``year_offset=-2``).

References
----------
生态环境部、国家统计局 公告2024年第12号 (2021 factors) and the 2024-12-20 announcement (2022 factors).
GHG Protocol Scope 2 Guidance (2015): location-based and market-based methods.
Rule R1 of shared/policies/README.md for what counts as a green instrument.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from metrics.exact import ExactDecimal

WH_PER_MWH = 1_000_000
Kind = Literal["location", "market", "fossil"]


class FactorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    region: str
    year: int
    value: ExactDecimal  #: [kgCO2/kWh]
    source: str
    secondary: bool = False  #: read from a report of the source, not the source itself



class FactorTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: Literal["kgCO2/kWh"]
    entries: list[FactorEntry]

    @model_validator(mode="after")
    def _unique(self) -> FactorTable:
        seen: set[tuple[str, str, int]] = set()
        for e in self.entries:
            k = (e.kind, e.region, e.year)
            if k in seen:
                raise ValueError(f"factor {e.kind}/{e.region}/{e.year} is given twice")
            seen.add(k)
        return self

    def factor(self, kind: Kind, year: int, region: str = "national", *, year_offset: int = 0,
               latest_available: bool = False, national_fallback: bool = False) -> Factor:
        """The factor for an accounting year.

        Parameters
        ----------
        kind : "location", "market" or "fossil"
        year : the year whose emissions are accounted
        region : "national", a grid region (华东 …) or a province (福建 …)
        year_offset : factor year = year + offset (e.g. -2: the factor published two years back)
        latest_available : when the factor year is missing, take the latest earlier one
        national_fallback : when the region has no factor, take the national one

        Raises
        ------
        ValueError
            naming the kind, region and year when no factor fits.
        """
        want = year + year_offset
        regions = [region] + (["national"] if national_fallback and region != "national" else [])
        for reg in regions:
            rows = sorted((e for e in self.entries if e.kind == kind and e.region == reg), key=lambda e: e.year)
            exact = [e for e in rows if e.year == want]
            pick = exact[0] if exact else None
            if pick is None and latest_available:
                earlier = [e for e in rows if e.year < want]
                pick = earlier[-1] if earlier else None
            if pick is not None:
                return Factor(pick.value, kind, reg, pick.year, year, pick.source, pick.secondary)
        have = sorted({(e.region, e.year) for e in self.entries if e.kind == kind})
        raise ValueError(
            f"no {kind} factor for region {region!r}, year {want} (accounting year {year}, offset {year_offset}); "
            f"known: {', '.join(f'{r} {y}' for r, y in have)}"
        )


@dataclass(frozen=True)
class Factor:
    value: ExactDecimal  #: [kgCO2/kWh]
    kind: str
    region: str
    year: int  #: the factor's own year
    for_year: int  #: the accounting year it is used for
    source: str
    secondary: bool = False


def _wh(name: str, v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{name} must be whole Wh (int), got {v!r}")
    if v < 0:
        raise ValueError(f"{name} must not be negative, got {v}")
    return v


def location_based(grid_import_wh: int, factor: Factor | Decimal) -> Decimal:
    """Location-based CO2 of grid electricity.

    Parameters
    ----------
    grid_import_wh : electricity imported from the grid [Wh]
    factor : average grid emission factor [kgCO2/kWh]

    Returns
    -------
    grid_import_wh / 1000 × factor, exact [kgCO2]
    """
    f = factor.value if isinstance(factor, Factor) else factor
    return Decimal(_wh("grid_import_wh", grid_import_wh)) * f / 1000


@dataclass(frozen=True)
class MarketBased:
    co2_kg: Decimal  #: [kgCO2]
    grid_import_wh: int  #: [Wh]
    covered_wh: int  #: grid electricity covered by trades and certificates [Wh]
    uncovered_wh: int  #: [Wh]
    surplus_wh: int  #: instruments beyond the grid import, not used (no negative emission) [Wh]


def market_based(grid_import_wh: int, factor: Factor | Decimal, *, green_trade_wh: int = 0,
                 certificates: int = 0) -> MarketBased:
    """Market-based CO2 of grid electricity.

    Parameters
    ----------
    grid_import_wh : electricity imported from the grid [Wh]
    factor : the factor excluding market-traded non-fossil electricity [kgCO2/kWh]
    green_trade_wh : settled green-power trade volume (绿电交易) in the period [Wh]
    certificates : green certificates (绿证, GEC) retired for the enterprise in the period and not
        bundled with the trades above; 1 certificate = 1 MWh [1]

    Returns
    -------
    :class:`MarketBased`; instruments beyond the grid import cover nothing further.

    Notes
    -----
    A certificate that came bundled with a green-power trade is already in ``green_trade_wh`` and
    must not be passed again (README R1).
    """
    imp = _wh("grid_import_wh", grid_import_wh)
    trade = _wh("green_trade_wh", green_trade_wh)
    if not isinstance(certificates, int) or isinstance(certificates, bool) or certificates < 0:
        raise ValueError(f"certificates must be a non-negative whole number, got {certificates!r}")
    instruments = trade + certificates * WH_PER_MWH
    covered = min(imp, instruments)
    f = factor.value if isinstance(factor, Factor) else factor
    return MarketBased(Decimal(imp - covered) * f / 1000, imp, covered, imp - covered, instruments - covered)


@dataclass(frozen=True)
class ElectricityCarbon:
    year: int
    location_kg: Decimal  #: [kgCO2]
    market_kg: Decimal  #: [kgCO2]
    location_factor: Factor
    market_factor: Factor
    market: MarketBased


def electricity_carbon(year: int, grid_import_wh: int, *, green_trade_wh: int = 0, certificates: int = 0,
                       region: str = "national", year_offset: int = 0, latest_available: bool = False,
                       table: FactorTable) -> ElectricityCarbon:
    """Both methods for one accounting year, with the factors used (kind, region, year, source).

    The location-based factor is looked up for ``region`` (falling back to national); the
    market-based factor is national only, as published. See :meth:`FactorTable.factor` for
    ``year_offset`` and ``latest_available``.
    """
    t = table
    lf = t.factor("location", year, region, year_offset=year_offset, latest_available=latest_available,
                  national_fallback=True)
    mf = t.factor("market", year, "national", year_offset=year_offset, latest_available=latest_available)
    mb = market_based(grid_import_wh, mf, green_trade_wh=green_trade_wh, certificates=certificates)
    return ElectricityCarbon(year, location_based(grid_import_wh, lf), mb.co2_kg, lf, mf, mb)
