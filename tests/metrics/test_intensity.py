"""Unit-product energy vs reference values (福建 002 第七条 3), energy per 10,000 yuan, ranking (2024-2 §四(五))."""

from decimal import Decimal
from fractions import Fraction

import pytest

from metrics.intensity import (
    IntensityRow,
    ReferenceValues,
    energy_per_10k_yuan,
    grade_unit_energy,
    meets_level,
    rank_within_industry,
    unit_product_energy,
)

REF = ReferenceValues("t", limit=Decimal("120"), access=Decimal("100"), advanced=Decimal("80"), source="GB xxxx 表1")


def test_unit_product_energy_exact():
    assert unit_product_energy(Decimal("1000"), 3) == Fraction(1000, 3)


@pytest.mark.parametrize(
    "energy, qty, best, above",
    [
        (Decimal("8000"), 100, "advanced", False),  # 80 kgce/t: exactly the advanced value counts (达到)
        (Decimal("8001"), 100, "access", False),  # 80.01: above advanced, within access
        (Decimal("12000"), 100, "limit", False),  # 120: exactly the limit
        (Decimal("12001"), 100, None, True),  # 120.01: beyond the limit value
    ],
)
def test_grade(energy, qty, best, above):
    g = grade_unit_energy(energy, qty, REF)
    assert g.best_level == best and g.above_limit is above


def test_no_standard_beats_industry_average():
    # 002 第七条 3: "尚未制定相关标准的能效水平应优于行业平均水平": strictly better
    ref = ReferenceValues("t", industry_average=Decimal("50"))
    assert meets_level(grade_unit_energy(4999, 100, ref), "advanced") is True
    assert meets_level(grade_unit_energy(5000, 100, ref), "advanced") is False
    assert meets_level(grade_unit_energy(1, 1, ReferenceValues("t")), "advanced") is None


def test_energy_per_10k_yuan():
    # 500 kgce for 2,000,000 yuan → 2.5 kgce per 10,000 yuan
    assert energy_per_10k_yuan(500, 2_000_000) == Fraction(5, 2)


def test_ranking_within_industry():
    # 2024-2 §四(五): ranked within each industry; the bottom share given by the caller
    rows = [
        IntensityRow("A", "textile", 100, 1_000_000),  # 1.0
        IntensityRow("B", "textile", 300, 1_000_000),  # 3.0
        IntensityRow("C", "textile", 200, 1_000_000),  # 2.0
        IntensityRow("D", "textile", 200, 1_000_000),  # 2.0, tied with C
        IntensityRow("X", "ceramics", 900, 1_000_000),
    ]
    out = {r.enterprise: r for r in rank_within_industry(rows, Decimal("0.25"))}
    assert [out[e].rank for e in "ACDB"] == [1, 2, 2, 4]
    assert [e for e in "ABCD" if out[e].bottom] == ["B"]
    assert out["X"].rank == 1 and out["X"].of == 1 and out["X"].bottom  # ceil(1 × 0.25) = 1


def test_ranking_tie_at_the_cut_is_bottom_too():
    rows = [IntensityRow(e, "t", v, 1_000_000) for e, v in (("A", 1), ("B", 2), ("C", 2))]
    out = {r.enterprise: r.bottom for r in rank_within_industry(rows, Decimal("0.34"))}
    assert out == {"A": False, "B": True, "C": True}


def test_ranking_rejects_repeats():
    rows = [IntensityRow("A", "t", 1, 1), IntensityRow("A", "t", 1, 1)]
    with pytest.raises(ValueError, match="'A' appears twice"):
        rank_within_industry(rows, Decimal("0.1"))


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_quantity(bad):
    with pytest.raises(ValueError, match="quantity"):
        unit_product_energy(1, bad)


def test_float_rejected():
    with pytest.raises(ValueError, match="energy_kgce"):
        unit_product_energy(1.0, 1)
