"""Clocks for collectors and the simulator: the wall clock, or an accelerated simulated clock.

The accelerated clock lets a simulated day run in seconds; readings then carry simulated
timestamps, and sleeping ``n`` simulated seconds takes ``n / speed`` real seconds.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class WallClock:
    #: the time now, aware, in UTC (``datetime.now(timezone.utc)`` itself: no Python frame per call,
    #: the poll loop asks several times a poll)
    now = staticmethod(partial(datetime.now, timezone.utc))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class AcceleratedClock:
    """Simulated time starting at ``start`` and running ``speed`` times faster than real time."""

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError(f"start {start} has no time zone")
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.start = start.astimezone(timezone.utc)
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0) / self.speed)


async def sleep_until(clock: Clock, when: datetime) -> None:
    await clock.sleep((when - clock.now()).total_seconds())


def next_aligned(now: datetime, interval_s: float) -> datetime:
    """The first instant after ``now`` that is a whole multiple of ``interval_s`` since the epoch."""
    epoch = now.timestamp()
    return datetime.fromtimestamp((epoch // interval_s + 1) * interval_s, timezone.utc)
