"""Resource-recycling electricity award, 晋政规〔2024〕2号 §二(二): kWh × 0.1 yuan, at most 500,000."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.policy.recycling import recycling_award

GWH = 1_000_000_000  # Wh


@pytest.mark.parametrize(
    "energy_wh, amount, capped",
    [
        (6 * GWH, Decimal("500000"), True),  # §二(二): 6 GWh → 600,000 uncapped, cap 500,000
        (5 * GWH, Decimal("500000.00"), False),  # §二(二): the cap is reached exactly at 5 GWh
        (4_200_000_000, Decimal("420000.00"), False),  # §二(二): 4.2 GWh → 420,000
        (0, Decimal("0.00"), False),  # no recycling electricity, no award
        (1_009, Decimal("0.10"), False),  # 1.009 kWh × 0.1 = 0.1009 → cut to the fen, never rounded up
    ],
)
def test_known_values(energy_wh, amount, capped):
    a = recycling_award(energy_wh)
    assert a.amount == amount
    assert a.capped is capped


def test_cap_applied_last():
    # §二(二) "最高奖励限额50万元": the product is computed in full, then capped
    a = recycling_award(6 * GWH)
    assert a.uncapped == Decimal("600000.00")
    assert a.amount == a.cap == Decimal("500000")


@pytest.mark.parametrize("bad", [-1, 1.5, "100", True])
def test_bad_energy(bad):
    with pytest.raises(ValueError, match="energy_wh"):
        recycling_award(bad)


def test_bad_rate():
    with pytest.raises(ValueError, match="rate"):
        recycling_award(1, rate=0.1)


@given(st.integers(min_value=0, max_value=10**13))
def test_never_exceeds_cap(wh):
    assert recycling_award(wh).amount <= Decimal("500000")


@given(st.integers(min_value=0, max_value=10**13), st.integers(min_value=0, max_value=10**12))
def test_monotone_in_energy(wh, more):
    assert recycling_award(wh).amount <= recycling_award(wh + more).amount
