"""What a collector hands to the writer: one value of one point at one instant, with its quality;
and the checks every reading passes whatever its source, so Modbus and MQTT judge alike.

A reading travels as a row ``(point_id, ts, value, quality)``. :class:`Reading` is that row with
names and checks (an aware timestamp; no value only when BAD): the form to build one in. The Modbus
poll loop builds plain tuples of the same fields instead, the quality a plain int, the checks
holding by construction there (its timestamp is checked once per poll, a value is None only where
it writes BAD): a tuple subclass costs a second allocation to build, stays tracked by the garbage
collector (so does a tuple holding an enum member), is freed through the subclass's path and is
copied to a list again by psycopg's COPY, some 20,000 CPU instructions a poll of 9 values. So
whatever takes readings (the quality gate, the writer, the spool, ``store.ingest``) reads them by
position, never by name, and takes both.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from enum import IntEnum
from typing import NamedTuple

from model.quantities import QUANTITIES


class Quality(IntEnum):
    """Stored with every reading (column ``reading.quality``)."""

    GOOD = 0
    #: outside the profile's plausible range, or a counter step implying power above the rating;
    #: or a device time not trusted (stored at the collector's time instead)
    SUSPECT = 1
    #: the device reported an error, or the value is not a number or impossible; stored without a value
    BAD = 2


#: a reading as it travels: (point_id, ts (aware), value (None only when BAD), quality (a Quality or its int))
ReadingRow = tuple[int, datetime, float | None, int]


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


# -- the checks of every source (docs/collectors.md, "Quality and findings") ----------------------

#: a device time before this is a clock that was never set: not trusted
TIMESTAMP_FLOOR = datetime(2000, 1, 1, tzinfo=timezone.utc)
#: a device time further ahead of the collector's clock than this is not trusted
FUTURE_TOLERANCE = timedelta(minutes=5)
#: beyond 2^53 a double no longer holds every integer: no meter reading is that large (9e15 Wh = 9 PWh)
MAX_ABS_VALUE = float(2 ** 53)

_FLOOR_S = TIMESTAMP_FLOOR.timestamp()
#: seconds since 1970 beyond which no datetime exists (the end of year 9999)
_CALENDAR_END_S = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()


def value_bounds(quantity: str) -> tuple[float, float]:
    """The least and the greatest value a reading of ``quantity`` can be stored with, in its
    canonical unit: ±2^53, and 0 at least for a counter (never negative). A collector may narrow
    its plausible range to these once, so a value inside needs no further check."""
    return (0.0 if QUANTITIES[quantity].kind == "counter" else -MAX_ABS_VALUE), MAX_ABS_VALUE


def impossible_value(value: float, quantity: str) -> str | None:
    """Why ``value`` of ``quantity`` cannot be stored as a number — a finding kind, the reading then
    BAD without a value — or None when it can. Judged in the canonical unit, after every
    conversion (scale, unit, CT/PT ratio, power sign): ``1e306`` kWh is no number of Wh.

    - ``"out_of_range"``: not finite, or beyond ±2^53 (:data:`MAX_ABS_VALUE`);
    - ``"negative_counter"``: a counter below 0.
    """
    lo, hi = value_bounds(quantity)
    if lo <= value <= hi:
        return None
    if not (-MAX_ABS_VALUE <= value <= MAX_ABS_VALUE):  # (NaN too)
        return "out_of_range"
    return "negative_counter"


def device_time(device: datetime | int | float, now: datetime) -> tuple[datetime, str | None]:
    """The time to store a reading at, given the device's own time for it — an aware ``datetime``,
    or seconds since 1970-01-01 UTC as a clock register or an epoch number says them — and the
    collector's time ``now`` (the poll's, or the message's receipt).

    Returns ``(the device's time, None)`` when it is sane; else ``(now, kind)``: the value is kept,
    its time is not trusted, the reading is stored SUSPECT (BAD stays BAD) and ``kind`` is its
    finding:

    - ``"past_timestamp"``: before :data:`TIMESTAMP_FLOOR` (a clock never set reads 0);
    - ``"future_timestamp"``: more than :data:`FUTURE_TOLERANCE` ahead of ``now``, including a
      number beyond any calendar (a uint64 clock register of garbage): judged before a ``datetime``
      is made of it, so no time raises here;
    - ``"wrong_type"``: not a number (NaN).

    Keeping a wrong device time would let one wrong clock block the real reading of that instant
    for ever (ingest keeps the first row per (point, ts)).
    """
    if isinstance(device, datetime):
        if device < TIMESTAMP_FLOOR:
            return now, "past_timestamp"
        if device - now > FUTURE_TOLERANCE:
            return now, "future_timestamp"
        return device, None
    if device != device:
        return now, "wrong_type"
    if device < _FLOOR_S:
        return now, "past_timestamp"
    if device > _CALENDAR_END_S:  # (infinity too)
        return now, "future_timestamp"
    ts = datetime.fromtimestamp(device, timezone.utc)
    if ts - now > FUTURE_TOLERANCE:  # (not now.timestamp(): twice the cost of this, on every poll of a clock)
        return now, "future_timestamp"
    return ts, None
