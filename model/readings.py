"""What a collector hands to the writer: one value of one point at one instant, with its quality."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum


class Quality(IntEnum):
    """Stored with every reading (column ``reading.quality``)."""

    GOOD = 0
    #: outside the profile's plausible range, or a counter step implying power above the rating
    SUSPECT = 1
    #: the device reported an error, or the value is not a number; stored without a value
    BAD = 2


@dataclass(frozen=True, slots=True)
class Reading:
    point_id: int
    ts: datetime  # timezone-aware
    value: float | None
    quality: Quality = Quality.GOOD

    def __post_init__(self) -> None:
        if self.ts.tzinfo is None:
            raise ValueError(f"reading of point {self.point_id}: timestamp {self.ts} has no time zone")
        if self.value is None and self.quality != Quality.BAD:
            raise ValueError(f"reading of point {self.point_id} at {self.ts}: no value, so quality must be BAD")
