"""Green-power trades and green certificates (GEC) counted for an enterprise and period.

References
----------
Rule R1 of shared/policies/README.md (2024-2 §三(一), 2025-5 §三(三)): green electricity includes
settled green-power-trade volume (绿电交易) and green certificates (绿证, 1 certificate = 1 MWh)
retired for the enterprise in the period; a certificate bundled with a trade is not counted again;
a serial counts once, ever; a certificate is valid for 2 years from its production month
(docs/accounting.md, the ledger).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WH_PER_CERTIFICATE = 1_000_000  #: 1 GEC = 1 MWh [Wh]
VALIDITY_YEARS = 2

_SERIAL = re.compile(r"^(.*?)(\d{1,18})$")


@dataclass(frozen=True, order=True)
class Serial:
    """A certificate serial split into a text prefix and a numeric tail (at most 18 digits)."""

    prefix: str
    number: int
    digits: int

    def __str__(self) -> str:
        return f"{self.prefix}{self.number:0{self.digits}d}"


def parse_serial(text: str) -> Serial:
    """Split a serial such as ``GEC202501000000123`` into prefix and numeric tail.

    Raises
    ------
    ValueError
        naming the text when it does not end in digits.
    """
    t = text.strip()
    m = _SERIAL.match(t)
    if not m:
        raise ValueError(f"serial {text!r} does not end in digits")
    return Serial(m.group(1), int(m.group(2)), len(m.group(2)))


def serial_range(first: str, last: str | None = None) -> tuple[Serial, Serial]:
    """The range ``first..last`` (one serial when ``last`` is empty).

    Raises
    ------
    ValueError
        when the two differ in prefix or tail length, or ``last`` comes before ``first``.
    """
    a = parse_serial(first)
    b = parse_serial(last) if last else a
    if (a.prefix, a.digits) != (b.prefix, b.digits):
        raise ValueError(f"serials {first!r} and {last!r} differ in prefix or length")
    if b.number < a.number:
        raise ValueError(f"serial range {first!r}..{last!r} runs backwards")
    return a, b


def valid_until(production_month: date) -> date:
    """First day a certificate is no longer valid: 2 years after its production month's start."""
    return date(production_month.year + VALIDITY_YEARS, production_month.month, 1)


def validity_problem(production_month: date, used_on: date) -> str | None:
    """Why a certificate cannot be used on ``used_on``, or None when it can.

    References
    ----------
    docs/accounting.md, the ledger: a certificate used outside its validity (2 years from its
    production month) is rejected with the reason.
    """
    pm = production_month.replace(day=1)
    if used_on < pm:
        return f"used on {used_on}, before its production month {pm:%Y-%m}"
    end = valid_until(pm)
    if used_on >= end:
        return (f"used on {used_on}, outside its validity: produced {pm:%Y-%m}, valid "
                f"{VALIDITY_YEARS} years, i.e. before {end}")
    return None


@dataclass(frozen=True)
class Trade:
    """A settled green-power trade."""

    reference: str
    settled_on: date  #: local date of settlement
    settled_wh: int  #: [Wh]


@dataclass(frozen=True)
class CertificateBlock:
    """A contiguous range of certificate serials used on one date."""

    first: Serial
    last: Serial
    production_month: date
    used_on: date  #: retired on, or delivered with the trade on
    trade_reference: str | None = None  #: set when delivered with a trade (counted in the trade)
    reference: str | None = None

    @property
    def count(self) -> int:
        return self.last.number - self.first.number + 1

    @property
    def label(self) -> str:
        return str(self.first) if self.count == 1 else f"{self.first}..{self.last}"


@dataclass(frozen=True)
class LedgerGreen:
    """Green electricity from the ledger for one period."""

    trade_wh: int  #: settled trade volume [Wh]
    certificate_wh: int  #: retired certificates not bundled with a trade [Wh]
    trades: tuple[Trade, ...]
    certificates: tuple[CertificateBlock, ...]  #: counted on their own
    bundled: tuple[CertificateBlock, ...]  #: delivered with a trade: listed, not counted again
    rejected: tuple[tuple[CertificateBlock, str], ...]  #: not counted, with the reason

    @property
    def green_wh(self) -> int:
        return self.trade_wh + self.certificate_wh


def ledger_green(
    trades: Sequence[Trade], certificates: Sequence[CertificateBlock], start: date, end: date
) -> LedgerGreen:
    """Trade volume and certificates that count for the local period [start, end).

    Parameters
    ----------
    trades : the enterprise's trades
    certificates : the enterprise's certificate blocks
    start, end : the local period, end exclusive

    Returns
    -------
    :class:`LedgerGreen`. A trade counts by its settlement date; a certificate not bundled with a
    trade counts by its retirement date, 1 MWh each; a bundled one is listed but not counted again;
    one outside its validity, or repeating a serial already counted, is rejected with the reason.

    References
    ----------
    Rule R1 (2024-2 §三(一), 2025-5 §三(三)); docs/accounting.md "Green-power trades and certificates (the ledger)".

    Raises
    ------
    ValueError
        when ``end`` is before ``start``.
    """
    if end < start:
        raise ValueError(f"period end {end} is before its start {start}")
    used_trades = tuple(t for t in trades if start <= t.settled_on < end)
    counted: list[CertificateBlock] = []
    bundled: list[CertificateBlock] = []
    rejected: list[tuple[CertificateBlock, str]] = []
    seen: list[CertificateBlock] = []
    for c in sorted(certificates, key=lambda c: (c.used_on, c.first)):
        clash = next((s for s in seen if s.first.prefix == c.first.prefix
                      and s.first.number <= c.last.number and c.first.number <= s.last.number), None)
        if clash is not None:
            rejected.append((c, f"serials overlap {clash.label}, already used: a serial counts once"))
            continue
        seen.append(c)
        if not start <= c.used_on < end:
            continue
        problem = validity_problem(c.production_month, c.used_on)
        if problem:
            rejected.append((c, problem))
        elif c.trade_reference is not None:
            bundled.append(c)
        else:
            counted.append(c)
    return LedgerGreen(
        trade_wh=sum(t.settled_wh for t in used_trades),
        certificate_wh=sum(c.count for c in counted) * WH_PER_CERTIFICATE,
        trades=used_trades, certificates=tuple(counted), bundled=tuple(bundled), rejected=tuple(rejected),
    )
