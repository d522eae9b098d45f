"""CO2 of grid electricity, location- and market-based (MEE/NBS factor announcements)."""

from decimal import Decimal

import pytest

from functools import partial

from metrics.carbon import FactorTable, location_based, market_based
from metrics.carbon import electricity_carbon as _electricity_carbon
from model.tables import load_factors

electricity_carbon = partial(_electricity_carbon, table=load_factors())

MWH = 1_000_000  # Wh


def test_national_factors_as_published():
    t = load_factors()
    # 公告2024年第12号 and the 2024-12-20 announcement; 2023 from issue 5
    assert [t.factor("location", y).value for y in (2021, 2022, 2023)] == [Decimal("0.5568"), Decimal("0.5366"), Decimal("0.5306")]
    assert [t.factor("market", y).value for y in (2021, 2022, 2023)] == [Decimal("0.5942"), Decimal("0.5856"), Decimal("0.6096")]
    assert all(t.factor("location", y).source for y in (2021, 2022, 2023))


def test_location_based_known_value():
    # 1,000 MWh × 0.5366 kgCO2/kWh = 536,600 kg
    assert location_based(1_000 * MWH, Decimal("0.5366")) == Decimal("536600")


def test_year_with_green_certificates():
    # 2023: 1,000 MWh imported, 300 MWh green-power trade, 200 certificates (1 cert = 1 MWh)
    # location-based ignores instruments: 1,000,000 kWh × 0.5306 = 530,600 kg
    # market-based: (1,000 − 300 − 200) MWh × 0.6096 = 304,800 kg
    c = electricity_carbon(2023, 1_000 * MWH, green_trade_wh=300 * MWH, certificates=200)
    assert c.location_kg == Decimal("530600")
    assert c.market_kg == Decimal("304800")
    assert (c.market.covered_wh, c.market.uncovered_wh) == (500 * MWH, 500 * MWH)
    assert c.location_factor.year == 2023 and c.market_factor.year == 2023


def test_instruments_beyond_import_give_no_negative_emission():
    m = market_based(100 * MWH, Decimal("0.6"), certificates=150)
    assert m.co2_kg == 0 and m.surplus_wh == 50 * MWH


def test_year_minus_two():
    # accounting 2025 with the factor published two years back (2023)
    c = electricity_carbon(2025, 10 * MWH, year_offset=-2)
    assert c.location_factor.year == 2023 and c.location_factor.for_year == 2025
    assert c.location_kg == Decimal("5306")


def test_latest_available():
    f = load_factors().factor("location", 2026, latest_available=True)
    assert f.year == 2023


def test_missing_year_named():
    with pytest.raises(ValueError, match="no location factor for region 'national', year 2030"):
        load_factors().factor("location", 2030)


def test_region_and_fallback():
    t = load_factors()
    assert t.factor("location", 2022, "福建").value == Decimal("0.4092")
    # 福建 has no 2023 factor in the table: the national one is used, and says so
    c = electricity_carbon(2023, MWH, region="福建")
    assert c.location_factor.region == "national"


def test_duplicate_factor_rejected():
    e = {"kind": "location", "region": "national", "year": 2021, "value": "0.5", "source": "x"}
    with pytest.raises(ValueError, match="given twice"):
        FactorTable.model_validate({"unit": "kgCO2/kWh", "entries": [e, e]})


def test_float_factor_rejected():
    e = {"kind": "location", "region": "national", "year": 2021, "value": 0.5, "source": "x"}
    with pytest.raises(ValueError, match="quoted string"):
        FactorTable.model_validate({"unit": "kgCO2/kWh", "entries": [e]})


@pytest.mark.parametrize("bad", [-1, 1.0])
def test_bad_energy(bad):
    with pytest.raises(ValueError, match="grid_import_wh"):
        location_based(bad, Decimal("0.5"))
