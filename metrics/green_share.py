"""Green-electricity share against the 30 % threshold.

References
----------
晋政规〔2024〕2号 §三(一) and 晋政規〔2025〕5號 §三(三): "对消费绿电比例在30%以上的工业企业，在实施
需求侧管理、有序用电时予以优先保障". Rule R1 of shared/policies/README.md.
Civil Code of the PRC Art. 1259: "以上" includes the number itself, so exactly 30 % qualifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

#: 30 %, as an exact fraction: the comparison never rests on float rounding
THRESHOLD = Fraction(3, 10)


@dataclass(frozen=True)
class GreenShare:
    green_wh: int  #: [Wh]
    consumption_wh: int  #: [Wh]
    share: Fraction  #: green / consumption, exact
    threshold: Fraction
    qualifies: bool  #: share >= threshold (inclusive)

    @property
    def percent(self) -> float:
        """For display only; decisions use :attr:`share`."""
        return float(self.share * 100)


def green_share(green_wh: int, consumption_wh: int, threshold: Fraction = THRESHOLD) -> GreenShare:
    """Share of green electricity in consumption and whether it reaches the threshold.

    Parameters
    ----------
    green_wh : green electricity consumed in the period [Wh]
    consumption_wh : electricity consumed in the period [Wh]
    threshold : the share to reach, inclusive [1]

    Returns
    -------
    :class:`GreenShare`, compared exactly in integers: ``green * den >= consumption * num``.

    Raises
    ------
    ValueError
        when either energy is not an integer, is negative, green exceeds consumption, or
        consumption is zero.
    """
    for name, v in (("green_wh", green_wh), ("consumption_wh", consumption_wh)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"{name} must be whole Wh (int), got {v!r}")
        if v < 0:
            raise ValueError(f"{name} must not be negative, got {v}")
    if consumption_wh == 0:
        raise ValueError("consumption_wh is 0: no share can be computed for a period without consumption")
    if green_wh > consumption_wh:
        raise ValueError(f"green_wh {green_wh} exceeds consumption_wh {consumption_wh}")
    share = Fraction(green_wh, consumption_wh)
    qualifies = green_wh * threshold.denominator >= consumption_wh * threshold.numerator
    return GreenShare(green_wh, consumption_wh, share, threshold, qualifies)
