"""Local calendar periods as UTC instants.

Every calendar period (day, month, year) is in the enterprise's time zone, Asia/Shanghai unless
configured otherwise; storage is UTC. A reading at 2024-12-31T16:30Z belongs to 2025 in Shanghai.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

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


def local_hour_numbers(t: np.ndarray, tz: str) -> np.ndarray:
    """The local wall-clock hour of each instant ``t`` [s since the Unix epoch, int64], as hours
    since local 1970-01-01 00:00 (an hour repeated when clocks go back is one hour, as local
    times compare). Offsets are read at every UTC hour of the range and, where they differ between
    two hours (a transition, at most one an hour), at each instant between them."""
    t = np.asarray(t, dtype=np.int64)
    if len(t) == 0:
        return np.zeros(0, np.int64)
    d0 = int(t.min()) // 86400
    days = range(d0, int(t.max()) // 86400 + 2)  # one more: the hour after the last
    offs = np.array([o for d in days for o in _day_offsets(tz, d)], np.int64)  # every UTC hour
    j = (t - d0 * 86400) // 3600
    off = offs[j]
    odd = np.flatnonzero(offs[j] != offs[j + 1])
    if len(odd):
        zone = ZoneInfo(tz)
        for k in odd.tolist():
            off[k] = int(datetime.fromtimestamp(int(t[k]), zone).utcoffset().total_seconds())
    return (t + off) // 3600


@lru_cache(maxsize=8192)
def _day_offsets(tz: str, utc_day: int) -> tuple[int, ...]:
    """UTC offsets [s] of ``tz`` at each of the 24 hours of a UTC day (days since the epoch)."""
    zone = ZoneInfo(tz)
    return tuple(int(datetime.fromtimestamp(utc_day * 86400 + 3600 * h, zone).utcoffset().total_seconds())
                 for h in range(24))


def month_of_local_hour(hour_numbers: np.ndarray) -> list[date]:
    """The local month (its first day) of each local hour number (:func:`local_hour_numbers`)."""
    months = (np.asarray(hour_numbers, np.int64) // 24).astype("datetime64[D]").astype("datetime64[M]")
    return [date.fromisoformat(str(m) + "-01") for m in months]
