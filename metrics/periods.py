"""Local calendar periods as UTC instants.

Every calendar period (day, month, year) is in the enterprise's time zone, Asia/Shanghai unless
configured otherwise; storage is UTC. A reading at 2024-12-31T16:30Z belongs to 2025 in Shanghai.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Literal
from zoneinfo import ZoneInfo

Period = Literal["day", "month", "year"]


def local_bounds(kind: Period, day: date, tz: str = "Asia/Shanghai") -> tuple[datetime, datetime]:
    """UTC start (inclusive) and end (exclusive) of the local ``kind`` holding ``day``.

    Raises ``ValueError`` for an unknown kind.
    """
    zone = ZoneInfo(tz)
    if kind == "day":
        first, nxt = day, date.fromordinal(day.toordinal() + 1)
    elif kind == "month":
        first = day.replace(day=1)
        nxt = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    elif kind == "year":
        first, nxt = date(day.year, 1, 1), date(day.year + 1, 1, 1)
    else:
        raise ValueError(f"unknown period kind {kind!r} (day, month or year)")
    to_utc = lambda d: datetime.combine(d, time(), zone).astimezone(timezone.utc)  # noqa: E731
    return to_utc(first), to_utc(nxt)


def local_end_day(end: datetime, tz: str) -> date:
    """The first local day *not* in a period that ends (exclusively) at ``end``: the local day
    holding ``end``, plus one unless ``end`` is local midnight. Ledger entries dated by local days
    count for the days before it. The one definition used by every figure."""
    local = end.astimezone(ZoneInfo(tz))
    d = local.date()
    return d if local.time() == time() else date.fromordinal(d.toordinal() + 1)
