"""Standard coal equivalent, GB/T 2589-2020."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functools import partial

from metrics.coal import standard_coal as _standard_coal
from model.tables import load_coal_factors

standard_coal = partial(_standard_coal, factors=load_coal_factors())


def test_electricity_equivalent_value():
    # GB/T 2589-2020: 1 kWh = 0.1229 kgce (当量值); 1 MWh → 122.9 kgce
    r = standard_coal({"electricity_wh": 1_000_000})
    assert r.total_kgce == Decimal("122.9") and r.electricity_method == "equivalent"


def test_electricity_equal_value():
    # 等价值 stated by the user, e.g. 0.300 kgce/kWh
    r = standard_coal({"electricity_wh": 1_000_000}, electricity_method="equal_value",
                      equal_value_kgce_per_kwh=Decimal("0.300"))
    assert r.total_kgce == Decimal("300") and r.factors["electricity_wh"] == Decimal("0.300")


def test_equal_value_needs_a_factor():
    with pytest.raises(ValueError, match="equal_value_kgce_per_kwh"):
        standard_coal({"electricity_wh": 1}, electricity_method="equal_value")


@pytest.mark.parametrize(
    "carrier, qty, kgce",
    [
        ("natural_gas_m3", Decimal("1000"), Decimal("1214.3")),  # 1.2143 kgce/m³
        ("diesel_kg", Decimal("1000"), Decimal("1457.1")),  # 1.4571 kgce/kg
        ("heat_mj", Decimal("1000"), Decimal("34.12")),  # 0.03412 kgce/MJ
    ],
)
def test_other_carriers(carrier, qty, kgce):
    assert standard_coal({carrier: qty}).total_kgce == kgce


def test_total_is_sum():
    r = standard_coal({"electricity_wh": 10_000_000, "natural_gas_m3": 100})
    assert r.total_kgce == Decimal("1229") + Decimal("121.43")
    assert set(r.by_carrier) == {"electricity_wh", "natural_gas_m3"}


def test_unknown_carrier_named():
    with pytest.raises(ValueError, match="unknown carrier 'coal_t'.*known: diesel_kg"):
        standard_coal({"coal_t": 1})


@pytest.mark.parametrize("bad", [-1, 1.5])
def test_bad_quantity(bad):
    with pytest.raises(ValueError, match="natural_gas_m3"):
        standard_coal({"natural_gas_m3": bad})


@given(st.integers(0, 10**13), st.integers(0, 10**13))
def test_additive_in_electricity(a, b):
    f = lambda wh: standard_coal({"electricity_wh": wh}).total_kgce  # noqa: E731
    assert f(a) + f(b) == f(a + b)
