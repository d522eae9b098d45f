"""Unit-product energy against standard reference values, energy per 10,000 yuan, industry ranking.

Energy is comprehensive energy consumption in kilograms of standard coal equivalent (kgce, see
:mod:`metrics.coal`). Reference values come from the national or industry energy-consumption limit
standard for the product (GB 2xxxx "单位产品能源消耗限额"): the limit value (限定值, what existing
plants must not exceed), the access value (准入值, new plants) and the advanced value (先进值); a
user enters them per product. Lower is better for all of them.

References
----------
福建省绿色制造梯度培育管理实施细则（暂行） 第七条 3: 单位产品综合能耗应达到相关国家、行业能源消耗限额标准
先进值或1级能效水平要求，尚未制定相关标准的能效水平应优于行业平均水平.
晋政规〔2024〕2号 §四(五): 分行业 ranking by 单位产出、能耗水平; the bottom of each industry loses
emission quotas (the proportion is not stated in the text).
泉丰政办综〔2022〕2号 一(一)2: 规上工业单位增加值能耗低于全市平均水平.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Literal

Level = Literal["advanced", "access", "limit"]
LEVELS: tuple[Level, ...] = ("advanced", "access", "limit")


def _dec(name: str, v: object, *, positive: bool = False) -> Fraction:
    if isinstance(v, float) or isinstance(v, bool) or not isinstance(v, (int, Decimal, Fraction)):
        raise ValueError(f"{name} must be an int or Decimal (exact), got {v!r}")
    f = Fraction(v)
    if f < 0 or (positive and f == 0):
        raise ValueError(f"{name} must be {'positive' if positive else 'non-negative'}, got {v}")
    return f


@dataclass(frozen=True)
class ReferenceValues:
    """Reference values of one product's limit standard [kgce per unit of product]."""

    unit: str  #: the product unit, e.g. "t", "m2", "10^4 pairs"
    limit: Decimal | None = None  #: 限定值
    access: Decimal | None = None  #: 准入值
    advanced: Decimal | None = None  #: 先进值 (or the level-1 efficiency value)
    industry_average: Decimal | None = None  #: where no standard exists
    source: str = ""  #: the standard and table, e.g. "GB 30252-2013 表1"

    def __post_init__(self) -> None:
        for name in ("limit", "access", "advanced", "industry_average"):
            v = getattr(self, name)
            if v is not None:
                _dec(name, v, positive=True)


def unit_product_energy(energy_kgce: Decimal | int, quantity: Decimal | int) -> Fraction:
    """Comprehensive energy per unit of product.

    Parameters
    ----------
    energy_kgce : comprehensive energy consumption of the product's production in the period [kgce]
    quantity : product output in the period [unit of product]

    Returns
    -------
    energy / quantity, exact [kgce/unit]

    Raises
    ------
    ValueError
        when the energy is negative or not exact, or the quantity is not positive.
    """
    return _dec("energy_kgce", energy_kgce) / _dec("quantity", quantity, positive=True)


@dataclass(frozen=True)
class UnitEnergyGrade:
    value: Fraction  #: [kgce/unit]
    best_level: Level | None  #: the strictest level reached, None when none is reached or known
    reaches: dict[str, bool | None]  #: per level (and "industry_average"); None when no reference
    above_limit: bool | None  #: beyond the limit value: the product is out of the standard

    @property
    def value_float(self) -> float:
        return float(self.value)


def grade_unit_energy(energy_kgce: Decimal | int, quantity: Decimal | int, ref: ReferenceValues) -> UnitEnergyGrade:
    """Compare unit-product energy with the standard's reference values.

    Parameters
    ----------
    energy_kgce : comprehensive energy consumption of the product [kgce]
    quantity : product output [unit of product]
    ref : the standard's reference values [kgce/unit]

    Returns
    -------
    :class:`UnitEnergyGrade`. A level is reached when the value is at most its reference value
    (达到 … 先进值: equal counts); the industry average is beaten only when strictly lower
    (优于行业平均水平). Compared exactly, never in floats.
    """
    value = unit_product_energy(energy_kgce, quantity)
    reaches: dict[str, bool | None] = {}
    for level in LEVELS:
        r = getattr(ref, level)
        reaches[level] = None if r is None else value <= Fraction(r)
    avg = ref.industry_average
    reaches["industry_average"] = None if avg is None else value < Fraction(avg)
    best = next((lv for lv in LEVELS if reaches[lv]), None)
    above = None if ref.limit is None else value > Fraction(ref.limit)
    return UnitEnergyGrade(value, best, reaches, above)


def meets_level(grade: UnitEnergyGrade, level: Level) -> bool | None:
    """Whether a product meets ``level``; with no standard value, beating the industry average.

    Returns None when neither the level's value nor an industry average is known.

    References
    ----------
    福建省绿色制造梯度培育管理实施细则（暂行） 第七条 3.
    """
    r = grade.reaches[level]
    if r is not None:
        return r
    return grade.reaches["industry_average"]


def energy_per_10k_yuan(energy_kgce: Decimal | int, output_yuan: Decimal | int) -> Fraction:
    """Energy per 10,000 yuan of output (or of added value, when that is what is passed).

    Parameters
    ----------
    energy_kgce : comprehensive energy consumption [kgce]
    output_yuan : industrial output value, or industrial added value [yuan]

    Returns
    -------
    energy × 10,000 / output, exact [kgce/10^4 yuan]
    """
    return _dec("energy_kgce", energy_kgce) * 10_000 / _dec("output_yuan", output_yuan, positive=True)


@dataclass(frozen=True)
class IntensityRow:
    enterprise: str
    industry: str
    energy_kgce: Decimal | int  #: [kgce]
    output_yuan: Decimal | int  #: [yuan]


@dataclass(frozen=True)
class Ranked:
    enterprise: str
    industry: str
    intensity: Fraction  #: [kgce/10^4 yuan]
    rank: int  #: 1 = least energy per output in its industry; equal values share a rank
    of: int  #: enterprises in the industry
    bottom: bool  #: in the bottom ``bottom_fraction`` of its industry


def rank_within_industry(rows: Sequence[IntensityRow], bottom_fraction: Decimal | Fraction) -> list[Ranked]:
    """Rank enterprises within each industry by energy per 10,000 yuan of output, best first.

    Parameters
    ----------
    rows : one row per enterprise for the same period
    bottom_fraction : share of each industry flagged as its bottom [1]; 2024-2 §四(五) says the
        bottom loses quotas "按照相应比例" without a number, so the caller states it

    Returns
    -------
    :class:`Ranked` rows, by industry and rank. Ranking is competition style (1, 2, 2, 4). The
    bottom is the last ``ceil(n × bottom_fraction)`` places; an enterprise tied with one inside
    the bottom is in it too.

    Raises
    ------
    ValueError
        for a repeated enterprise, a non-positive output, or a fraction outside [0, 1].

    References
    ----------
    晋政规〔2024〕2号 §四(五).
    """
    frac = _dec("bottom_fraction", bottom_fraction)
    if frac > 1:
        raise ValueError(f"bottom_fraction must be within [0, 1], got {bottom_fraction}")
    seen: set[str] = set()
    by_ind: dict[str, list[tuple[Fraction, IntensityRow]]] = defaultdict(list)
    for r in rows:
        if r.enterprise in seen:
            raise ValueError(f"enterprise {r.enterprise!r} appears twice")
        seen.add(r.enterprise)
        by_ind[r.industry].append((energy_per_10k_yuan(r.energy_kgce, r.output_yuan), r))
    out: list[Ranked] = []
    for ind in sorted(by_ind):
        items = sorted(by_ind[ind], key=lambda x: (x[0], x[1].enterprise))
        n = len(items)
        n_bottom = math.ceil(n * frac)
        cut = items[n - n_bottom][0] if n_bottom else None
        rank = 0
        prev = None
        for i, (v, r) in enumerate(items):
            if v != prev:
                rank = i + 1
                prev = v
            out.append(Ranked(r.enterprise, ind, v, rank, n, cut is not None and v >= cut))
    return out
