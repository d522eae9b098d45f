"""What a collector hands to the writer: one value of one point at one instant, with its quality."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import NamedTuple


class Quality(IntEnum):
    """Stored with every reading (column ``reading.quality``)."""

    GOOD = 0
    #: outside the profile's plausible range, or a counter step implying power above the rating
    SUSPECT = 1
    #: the device reported an error, or the value is not a number; stored without a value
    BAD = 2


class _Fields(NamedTuple):
    point_id: int
    ts: datetime  # timezone-aware
    value: float | None
    quality: Quality = Quality.GOOD


class Reading(_Fields):
    """Immutable; a named tuple, because collectors make tens of thousands a second (a frozen
    dataclass costs three times as much to build)."""

    __slots__ = ()

    def __new__(cls, point_id: int, ts: datetime, value: float | None, quality: Quality = Quality.GOOD) -> Reading:
        if ts.tzinfo is None:
            raise ValueError(f"reading of point {point_id}: timestamp {ts} has no time zone")
        if value is None and quality != Quality.BAD:
            raise ValueError(f"reading of point {point_id} at {ts}: no value, so quality must be BAD")
        return tuple.__new__(cls, (point_id, ts, value, quality))

    def __eq__(self, other: object) -> bool:  # a Reading equals a Reading, not a bare tuple
        return type(other) is Reading and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__
