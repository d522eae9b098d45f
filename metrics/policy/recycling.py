"""The resource-recycling electricity award (rule R2).

References
----------
晋政规〔2024〕2号 §二(二): "对获得工信部再生资源综合利用行业规范的企业，根据其从事再生资源综合利用项目的
年用电量，按0.1元/每千瓦时标准给予资金奖励，最高奖励限额50万元".
晉政規〔2025〕5號 §三(一) replaced it with a one-off 200,000 yuan for an enterprise newly listed in an
MIIT 行業規範條件 announcement (a listing rule, see :mod:`metrics.policy.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from metrics.exact import FEN  # noqa: E402  (defined once)
WH_PER_KWH = 1000


@dataclass(frozen=True)
class RecyclingAward:
    energy_wh: int  #: the recycling project's electricity in the year [Wh]
    rate: Decimal  #: [yuan/kWh]
    uncapped: Decimal  #: energy × rate, cut to the fen [yuan]
    cap: Decimal | None  #: [yuan]
    amount: Decimal  #: the award after the cap [yuan]
    capped: bool


def recycling_award(energy_wh: int, rate: Decimal = Decimal("0.1"), cap: Decimal | None = Decimal("500000")) -> RecyclingAward:
    """Award for a recycling project's annual electricity.

    Parameters
    ----------
    energy_wh : electricity of the recycling project (its sub-metered points, not the whole
        site) over the calendar year in local time [Wh]
    rate : award per kWh [yuan/kWh]
    cap : the largest award, or None [yuan]

    Returns
    -------
    :class:`RecyclingAward`; ``amount = min(energy_wh / 1000 × rate, cap)``.

    Notes
    -----
    Exact Decimal arithmetic: the product is cut (never rounded up) to the fen, and the cap is
    applied last, after the product, so 6 GWh gives 500,000 and 4.2 GWh gives 420,000.

    Raises
    ------
    ValueError
        when ``energy_wh`` is not a whole, non-negative number of Wh, or rate or cap is negative.

    References
    ----------
    晋政规〔2024〕2号 §二(二).
    """
    if not isinstance(energy_wh, int) or isinstance(energy_wh, bool):
        raise ValueError(f"energy_wh must be whole Wh (int), got {energy_wh!r}")
    if energy_wh < 0:
        raise ValueError(f"energy_wh must not be negative, got {energy_wh}")
    if not isinstance(rate, Decimal) or rate < 0:
        raise ValueError(f"rate must be a non-negative Decimal, got {rate!r}")
    if cap is not None and (not isinstance(cap, Decimal) or cap < 0):
        raise ValueError(f"cap must be a non-negative Decimal or None, got {cap!r}")
    uncapped = (Decimal(energy_wh) * rate / WH_PER_KWH).quantize(FEN, rounding=ROUND_DOWN)
    capped = cap is not None and uncapped > cap
    amount = cap if capped else uncapped
    return RecyclingAward(energy_wh, rate, uncapped, cap, amount, capped)
