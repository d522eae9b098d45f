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


def percent_text(share: Fraction | None, places: int = 3, *, threshold: Fraction | None = None) -> str:
    """A share as a percentage for display, cut (never rounded up) to ``places`` decimals, with
    more decimals when that is what tells it from ``threshold``: a share below 30 % never prints
    as "30.000 %" (29.9996 % prints "29.999 %"), one at or above it never below it.

    Display only: decisions compare the exact fractions."""
    from decimal import ROUND_FLOOR, Decimal

    if share is None:
        return "—"
    pct = share * 100
    while True:
        q = Decimal(1).scaleb(-places)
        d = (Decimal(pct.numerator) / Decimal(pct.denominator)).quantize(q, rounding=ROUND_FLOOR)
        exact_d = Fraction(d)
        if threshold is None or places >= 12 or (exact_d < threshold * 100) == (pct < threshold * 100):
            return f"{d} %"
        places += 1


def plural(n: int, word: str) -> str:
    """``1 certificate``, ``2 certificates``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


#: below this completeness (share of intervals measured) a result is ``unknown``
COMPLETENESS_THRESHOLD = Fraction(95, 100)
WH_PER_MWH = 1_000_000

QUALIFIES, DOES_NOT_QUALIFY, UNKNOWN = "qualifies", "does_not_qualify", "unknown"


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def missing_green_wh(green_wh: int, consumption_wh: int, threshold: Fraction = THRESHOLD) -> int:
    """Green energy still missing to reach ``threshold`` of ``consumption_wh``, rounded up [Wh].

    Parameters
    ----------
    green_wh : green electricity consumed [Wh]
    consumption_wh : electricity consumed [Wh]
    threshold : the share to reach, inclusive [1]

    Returns
    -------
    ``max(0, ceil(threshold * consumption) - green)``, exact in integers [Wh]

    References
    ----------
    Rule R1 (2024-2 §三(一), 2025-5 §三(三)); docs/accounting.md "What the result shows" (missing to reach 30 %).

    Raises
    ------
    ValueError
        when an energy is negative.
    """
    if green_wh < 0 or consumption_wh < 0:
        raise ValueError(f"energies must not be negative: green {green_wh} Wh, consumption {consumption_wh} Wh")
    need = _ceil_div(consumption_wh * threshold.numerator, threshold.denominator)
    return max(0, need - green_wh)


def certificates_to_buy(missing_wh: int) -> int:
    """Certificates (1 MWh each) that close a gap of ``missing_wh``, rounded up [1]."""
    if missing_wh < 0:
        raise ValueError(f"missing_wh {missing_wh} must not be negative")
    return _ceil_div(missing_wh, WH_PER_MWH)


@dataclass(frozen=True)
class Projection:
    """Year-end figures extrapolated from the year to date."""

    elapsed: Fraction  #: share of the year's intervals behind us [1]
    onsite_green_wh: int  #: on-site green, scaled to the year, rounded down [Wh]
    consumption_wh: int  #: consumption, scaled to the year, rounded up [Wh]
    ledger_green_wh: int  #: trades and certificates as recorded so far, not scaled [Wh]
    share: Fraction | None
    qualifies: bool | None
    missing_wh: int  #: [Wh]
    certificates_to_buy: int


def project_year_end(onsite_green_wh: int, consumption_wh: int, ledger_green_wh: int, elapsed_intervals: int,
                     year_intervals: int, threshold: Fraction = THRESHOLD) -> Projection:
    """Project the year-end share from the year to date.

    Parameters
    ----------
    onsite_green_wh : PV self-consumed including green discharge, year to date [Wh]
    consumption_wh : consumption, year to date [Wh]
    ledger_green_wh : trades and certificates counted so far [Wh]
    elapsed_intervals : intervals of the year behind us [1]
    year_intervals : intervals in the whole year [1]
    threshold : the share to reach, inclusive [1]

    Returns
    -------
    :class:`Projection`

    Notes
    -----
    Metered energy is scaled linearly by ``year_intervals / elapsed_intervals`` (no seasonality);
    green rounds down and consumption up, so the projection never flatters the share. Trades and
    certificates are not extrapolated: only what is settled or retired counts.

    References
    ----------
    docs/accounting.md "What the result shows" (year-end projection from the year to date).

    Raises
    ------
    ValueError
        when ``elapsed_intervals`` is not in 1..``year_intervals``.
    """
    if not 0 < elapsed_intervals <= year_intervals:
        raise ValueError(f"elapsed_intervals {elapsed_intervals} must be in 1..{year_intervals}")
    f = Fraction(year_intervals, elapsed_intervals)
    g = (onsite_green_wh * f).__floor__()
    c = (consumption_wh * f).__ceil__()
    green = min(g + ledger_green_wh, c)
    share = Fraction(green, c) if c else None
    qualifies = None if share is None else green * threshold.denominator >= c * threshold.numerator
    missing = missing_green_wh(green, c, threshold)
    return Projection(Fraction(elapsed_intervals, year_intervals), g, c, ledger_green_wh, share, qualifies,
                      missing, certificates_to_buy(missing))


@dataclass(frozen=True)
class GreenShareResult:
    """The R1 decision for an enterprise and period, with everything needed to check it."""

    status: str  #: ``qualifies``, ``does_not_qualify`` or ``unknown`` (completeness too low)
    onsite_green_wh: int  #: PV self-consumed, including the green part of discharge [Wh]
    trade_wh: int  #: green-power trade settled in the period [Wh]
    certificate_wh: int  #: certificates retired in the period, not bundled with a trade [Wh]
    green_wh: int  #: counted green, at most the consumption [Wh]
    consumption_wh: int  #: [Wh]
    share: Fraction | None
    threshold: Fraction
    completeness: Fraction  #: the lowest completeness of the points used [1]
    completeness_threshold: Fraction
    count_suspect: bool
    missing_wh: int  #: green still missing to reach the threshold in the period [Wh]
    certificates_to_buy: int
    projection: Projection | None = None
    hourly: object | None = None  #: :class:`metrics.hourly_match.HourlyMatch`
    evidence: object | None = None  #: :class:`metrics.evidence.Evidence`

    @property
    def percent(self) -> float | None:
        """For display only; the decision uses :attr:`share`."""
        return None if self.share is None else float(self.share * 100)


def assess_green_share(
    onsite_green_wh: int,
    consumption_wh: int,
    *,
    trade_wh: int = 0,
    certificate_wh: int = 0,
    completeness: Fraction = Fraction(1),
    count_suspect: bool = True,
    threshold: Fraction = THRESHOLD,
    completeness_threshold: Fraction = COMPLETENESS_THRESHOLD,
    projection: Projection | None = None,
    hourly: object | None = None,
    evidence: object | None = None,
) -> GreenShareResult:
    """Decide rule R1 for a period: qualifies, does not qualify, or unknown.

    Parameters
    ----------
    onsite_green_wh : PV self-consumed including the green part of battery discharge [Wh]
    consumption_wh : electricity consumed [Wh]
    trade_wh : green-power trade volume settled in the period [Wh]
    certificate_wh : certificates retired for the enterprise in the period, not bundled [Wh]
    completeness : share of intervals measured, the lowest over the points used [1]
    count_suspect : whether spike energy was counted (recorded in the result)
    threshold : the share to reach, inclusive [1]
    completeness_threshold : below it the result is ``unknown`` [1]

    Returns
    -------
    :class:`GreenShareResult`

    Notes
    -----
    Green = on-site + trades + certificates, capped at the consumption (a share above 100 % has no
    meaning). The comparison is in integers: ``green * 10 >= consumption * 3``. With no consumption
    the share is None and the status ``unknown``.

    References
    ----------
    Rule R1: 2024-2 §三(一), 2025-5 §三(三) "消费绿电比例在30%以上"; Civil Code Art. 1259 (以上 is
    inclusive).

    Raises
    ------
    ValueError
        when an energy is not a whole, non-negative number of Wh.
    """
    for name, v in (("onsite_green_wh", onsite_green_wh), ("consumption_wh", consumption_wh),
                    ("trade_wh", trade_wh), ("certificate_wh", certificate_wh)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"{name} must be whole Wh (int), got {v!r}")
        if v < 0:
            raise ValueError(f"{name} must not be negative, got {v}")
    green = min(onsite_green_wh + trade_wh + certificate_wh, consumption_wh)
    share = Fraction(green, consumption_wh) if consumption_wh else None
    if share is None or completeness < completeness_threshold:
        status = UNKNOWN
    elif green * threshold.denominator >= consumption_wh * threshold.numerator:
        status = QUALIFIES
    else:
        status = DOES_NOT_QUALIFY
    missing = missing_green_wh(green, consumption_wh, threshold)
    return GreenShareResult(
        status=status, onsite_green_wh=onsite_green_wh, trade_wh=trade_wh, certificate_wh=certificate_wh,
        green_wh=green, consumption_wh=consumption_wh, share=share, threshold=threshold,
        completeness=completeness, completeness_threshold=completeness_threshold, count_suspect=count_suspect,
        missing_wh=missing, certificates_to_buy=certificates_to_buy(missing), projection=projection,
        hourly=hourly, evidence=evidence,
    )
