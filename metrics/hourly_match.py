"""Hourly-matched green share: green supply counted only up to each hour's consumption.

References
----------
docs/accounting.md "What the result shows", hourly-matched share (the 24/7 carbon-free-energy idea), beside the annual share of
rule R1 (2024-2 §三(一), 2025-5 §三(三)).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

import numpy as np

from metrics.balance import IntervalBalance
from metrics.ledger import WH_PER_CERTIFICATE, LedgerGreen
from metrics.periods import local_hour_numbers, month_of_local_hour


@dataclass(frozen=True)
class HourlyMatch:
    hours: int  #: local hours with consumption or green supply
    consumption_wh: int  #: [Wh]
    onsite_matched_wh: int  #: on-site green counted, each hour at most its consumption [Wh]
    ledger_matched_wh: int  #: trades and certificates counted against the residual of their month [Wh]
    ledger_unmatched_wh: int  #: ledger volume with no residual consumption left in its month [Wh]

    @property
    def matched_wh(self) -> int:
        return self.onsite_matched_wh + self.ledger_matched_wh

    @property
    def share(self) -> Fraction | None:
        return Fraction(self.matched_wh, self.consumption_wh) if self.consumption_wh > 0 else None


def hourly_match(balance: Sequence[IntervalBalance], ledger: LedgerGreen, tz: str = "Asia/Shanghai") -> HourlyMatch:
    """Match green supply to consumption hour by hour.

    Parameters
    ----------
    balance : the site's interval balances for the period [Wh]
    ledger : trades and certificates counted for the period
    tz : the enterprise's time zone, for local hours and months

    Returns
    -------
    :class:`HourlyMatch`

    Notes
    -----
    Per local hour, on-site green (PV used at once plus green discharge) counts up to the hour's
    consumption. Trades and certificates carry no hourly profile: certificates count in their
    production month, trades in their settlement month, each up to the consumption of that month's
    hours not already met on site. Volume of a month outside the period matches nothing. The
    matched total does not depend on the order hours are filled in.

    References
    ----------
    docs/accounting.md "What the result shows": per hour, green supply counted only up to that
    hour's consumption; certificates count by production month.
    """
    return hourly_from_parts(hourly_parts(balance, tz), ledger)


@dataclass
class HourlyParts:
    """What the hourly match needs from a run of whole local hours; parts of disjoint hours add up
    (the metrics flow carries them from one day to the next)."""

    hours: int = 0
    consumption_wh: int = 0
    onsite_matched_wh: int = 0
    residual_by_month: dict[date, int] = field(default_factory=dict)

    def __add__(self, other: "HourlyParts") -> "HourlyParts":
        res = dict(self.residual_by_month)
        for m, v in other.residual_by_month.items():
            res[m] = res.get(m, 0) + v
        return HourlyParts(self.hours + other.hours, self.consumption_wh + other.consumption_wh,
                           self.onsite_matched_wh + other.onsite_matched_wh, res)


def hourly_parts(balance: Sequence[IntervalBalance], tz: str = "Asia/Shanghai") -> HourlyParts:
    """Per local hour: consumption, on-site green matched up to it, residual by month
    (:func:`hourly_parts_of` on interval objects)."""
    from metrics.bundle import epoch_s

    return hourly_parts_of(np.array([epoch_s(b.start) for b in balance], np.int64),
                           np.array([b.consumption_wh for b in balance], np.int64),
                           np.array([b.green_wh for b in balance], np.int64), tz)


def hourly_parts_of(t: np.ndarray, consumption_wh: np.ndarray, green_wh: np.ndarray, tz: str = "Asia/Shanghai"
                    ) -> HourlyParts:
    """Per local hour of the intervals ``t`` [s since the Unix epoch]: consumption (negative
    counts as 0), on-site green matched up to it, and the residual by local month [Wh]."""
    if len(t) == 0:
        return HourlyParts()
    hours, inv = np.unique(local_hour_numbers(t, tz), return_inverse=True)
    cons = np.zeros(len(hours), np.int64)
    green = np.zeros(len(hours), np.int64)
    np.add.at(cons, inv, consumption_wh)
    np.add.at(green, inv, green_wh)
    c = np.maximum(cons, 0)
    m = np.minimum(np.maximum(green, 0), c)
    residual: dict[date, int] = {}
    for month, v in zip(month_of_local_hour(hours), (c - m).tolist()):
        residual[month] = residual.get(month, 0) + v
    return HourlyParts(len(hours), int(c.sum()), int(m.sum()), residual)


def hourly_from_parts(parts: HourlyParts, ledger: LedgerGreen) -> HourlyMatch:
    """Trades and certificates matched against the residual of their month (see :func:`hourly_match`)."""
    pool: dict[date, int] = defaultdict(int)
    for t in ledger.trades:
        pool[t.settled_on.replace(day=1)] += t.settled_wh
    for c in ledger.certificates:
        pool[c.production_month.replace(day=1)] += c.count * WH_PER_CERTIFICATE
    matched = sum(min(v, parts.residual_by_month.get(month, 0)) for month, v in pool.items())
    return HourlyMatch(parts.hours, parts.consumption_wh, parts.onsite_matched_wh, matched, sum(pool.values()) - matched)
