"""The Modbus provider and the asyncio poller.

One :class:`ModbusDevice` per configured device: it plans its reads from the profile (adjacent
registers merged up to the 125-register limit), reads them, decodes each value with the profile's
type, word order and scale into its canonical unit (times the device's CT/PT ratio for registers
the profile marks ``ct_pt``), and hands :class:`Reading` objects on. A device with profile
``sunspec`` is read by walking its SunSpec model chain (:mod:`collectors.sunspec`); once the chain
is known it is re-read in bulk.

Devices behind one endpoint (a gateway's host and port, a serial line) share one connection from
:mod:`collectors.transport`, one request at a time.

Faults are handled at the connection boundary: a dead link raises ``ConnectionException`` (the
device is marked away, logged once at ERROR, and once at INFO when it returns); a device's refusal
comes back as a response with ``isError()`` true and its points are stored as BAD readings.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter

from pymodbus.exceptions import ModbusException

from collectors.clock import Clock, next_aligned, sleep_until
from model.profile import (
    _STRUCT, ClockSpec, RegisterSpec, decode_raw, plan_reads, ratio_factor, to_canonical,
)
from model.readings import Quality, Reading
from collectors.transport import Connection, ConnectionPool, DeviceRefused, Endpoint, default_pool
from model.site import POWER_QUANTITIES, SUNSPEC_PROFILE, DeviceConfig

log = logging.getLogger(__name__)

#: a device clock before this has not been set; the collector's clock is used instead
CLOCK_NOT_SET_BEFORE = datetime(2000, 1, 1, tzinfo=timezone.utc)

Sink = Callable[[list[Reading]], Awaitable[None] | None]

# the poll loop's hot path builds its readings as the tuples they are: what Reading() checks (an
# aware timestamp, no value only when BAD) holds by construction there; and the qualities are
# looked up once (an enum member's lookup costs as much as building the reading)
_reading = tuple.__new__
_GOOD, _SUSPECT, _BAD = Quality.GOOD, Quality.SUSPECT, Quality.BAD
_quality = itemgetter(3)  # a Reading's quality
_NO_MIN, _NO_MAX = float("-inf"), float("inf")  # no plausible range given
#: CLOCK_NOT_SET_BEFORE in seconds since 1970, compared with the raw clock register
_CLOCK_SET_SECONDS = int(CLOCK_NOT_SET_BEFORE.timestamp())


class ModbusDevice:
    def __init__(self, device: DeviceConfig, point_ids: dict[str, int], *,
                 pool: ConnectionPool | None = None) -> None:
        """``point_ids`` maps each quantity to store to its point id.

        Devices behind one endpoint (gateway, serial line) share one connection from ``pool``
        (default: the running event loop's pool), one request at a time.
        """
        self.device = device
        self.point_ids = point_ids
        self.power_sign = device.power_sign  # native power -> stored power (docs/devices.md, "Power sign")
        self.sunspec = device.profile == SUNSPEC_PROFILE
        self.sunspec_base = device.sunspec_base
        self._sunspec_span: int | None = None
        if self.sunspec:
            self.profile = None
            self.specs = []
            self.blocks = []
        else:
            self.profile = device.profile_model
            self.specs = [r for r in self.profile.registers if r.quantity in point_ids]
            clock_spec = [self.profile.clock] if self.profile.clock else []
            self.blocks = plan_reads([*self.specs, *clock_spec])
            # CT/PT ratio, times the power sign: the register's own (a device positive on export)
            # and the role's (docs/devices.md, "Power sign")
            self.ratios = {s.quantity: ratio_factor(s, device.ct_ratio, device.pt_ratio) * self._sign(s.sign, s.quantity)
                           for s in self.specs}
            # a profile's plausible range is about what the meter measures (secondary side for ct_pt)
            self._limits = {s.quantity: _scaled_range(s.min, s.max, self.ratios[s.quantity]) for s in self.specs}
            # the poll loop's plan, worked out once: where each value sits in which block, how it
            # unpacks, its exact rational factor and its range, in point_ids order
            by_quantity = {s.quantity: s for s in self.specs}
            self._plan = [self._compile(by_quantity.get(q), pid) for q, pid in point_ids.items()]
            self._clock = (*self._locate(self.profile.clock), self.profile.clock) if self.profile.clock else None
            # each block with what makes its registers the bytes they came as (high byte first)
            self._reads = [(b, _words(b.count).pack) for b in self.blocks]
        self._unit = device.unit_id
        self.endpoint = Endpoint.of(device)
        self._pool = pool
        self.conn: Connection | None = None
        self.away = False
        self.last_device_time: datetime | None = None
        self._last_device_seconds: int | float | None = None
        self.last_latency_s: float | None = None
        #: BAD readings of the last poll (a refused block, no number), counted while decoding
        self.last_bad = 0
        #: every poll's outcome, for health (set by HealthRecorder.watch_modbus): on_poll(readings,
        #: seconds the reads took, the collector's time at the poll, BAD readings among them);
        #: on_failure(exception, clock)
        self.on_poll: Callable[[list[Reading], float, datetime, int], None] | None = None
        self.on_failure: Callable[[BaseException, Clock], None] | None = None

    def _locate(self, spec: RegisterSpec | ClockSpec) -> tuple:
        """(block index, register offset, count, big-endian unpacker or None for little word order)."""
        for i, b in enumerate(self.blocks):
            if b.function == spec.function and b.address <= spec.address < b.address + b.count:
                unpack = _STRUCT[spec.type].unpack_from if spec.word_order == "big" else None
                return i, spec.address - b.address, spec.count, unpack
        raise AssertionError(f"register {spec.address} is in no read block")  # plan_reads covers every spec

    def _compile(self, spec: RegisterSpec | None, pid: int) -> tuple:
        """One value's entry in the poll loop's plan: (point id, block index (-1: none), byte offset,
        big-endian unpacker, exact rational factor n / d, plausible range lo..hi (infinite when the
        profile gives none), and for a value that needs more (floats, little word order) the spec,
        its CT/PT ratio and its register offset and count, else None)."""
        if spec is None:  # a quantity the profile does not map: always BAD
            return (pid, -1, 0, None, 1, 1, _NO_MIN, _NO_MAX, None)
        bi, off, count, unpack = self._locate(spec)
        ratio = self.ratios[spec.quantity]
        lo, hi = self._limits[spec.quantity]
        lo, hi = _NO_MIN if lo is None else lo, _NO_MAX if hi is None else hi
        if unpack is not None and not spec.type.startswith("float"):
            n, d = (spec.factor * ratio).as_integer_ratio()
            return (pid, bi, 2 * off, unpack, n, d, lo, hi, None)
        return (pid, bi, 2 * off, unpack, 1, 1, lo, hi, (spec, ratio, off, count))

    def _sign(self, native: int, quantity: str) -> int:
        return native * self.power_sign if quantity in POWER_QUANTITIES else 1

    def _connection(self) -> Connection:
        if self.conn is None:
            if self._pool is None:
                self._pool = default_pool()
            self.conn = self._pool.acquire(self.endpoint)
        return self.conn

    async def close(self) -> None:
        if self.conn is not None and self._pool is not None:
            self._pool.release(self.conn)
        self.conn = None

    async def poll(self, clock: Clock) -> list[Reading]:
        """Read the device once. Raises ``ModbusException`` or ``OSError`` when the link is down.

        Every attempt is reported to ``on_poll`` (readings, seconds the reads took, the collector's
        time at the poll, how many are BAD) or ``on_failure`` (the exception, clock) when set
        (:meth:`collectors.health.HealthRecorder.watch_modbus`): called here rather than from a
        wrapper, so a poll is one coroutine, not two.
        """
        t0 = time.monotonic()
        try:
            now = clock.now()
            if self.sunspec:
                readings = await self._poll_sunspec(now)
                self.last_bad = list(map(_quality, readings)).count(_BAD)  # counted in C
            else:
                conn = self.conn or self._connection()
                unit = self._unit
                raw = []  # each block's registers (None: not read)
                data = []  # and the bytes they came as
                for block, pack in self._reads:  # a plain loop: the poll loop's hot path, no extra coroutine per block
                    try:
                        regs = await conn.read(block.function, block.address, block.count, unit)
                    except DeviceRefused as exc:
                        log.warning("device %s: %s", self.device.name, exc)
                        raw.append(None)
                        data.append(None)
                        continue
                    if len(regs) != block.count:  # a malformed answer: no values from it
                        log.warning("device %s: %d registers asked at %d, %d answered", self.device.name,
                                    block.count, block.address, len(regs))
                        raw.append(None)
                        data.append(None)
                        continue
                    raw.append(regs)
                    data.append(pack(*regs))
                self.last_latency_s = time.monotonic() - t0
                readings = self._decode(now, raw, data)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if self.on_failure is not None:
                self.on_failure(exc, clock)
            raise
        if self.on_poll is not None:
            self.on_poll(readings, self.last_latency_s, now, self.last_bad)
        return readings

    def _decode(self, ts: datetime, raw: list[list[int] | None], data: list[bytes | None]) -> list[Reading]:
        """The readings of one poll from the registers read and the bytes they came as (None: a block
        not read); sets ``last_bad``."""
        data.append(None)  # for the quantities no block holds
        if self._clock is not None:
            seconds = self._value(self._clock, raw, data)
            if seconds is not None and seconds >= _CLOCK_SET_SECONDS:  # an unset device clock reads 0
                if seconds == self._last_device_seconds:
                    self.last_bad = 0
                    return []  # the device has not measured anew since the last poll
                ts = self.last_device_time = datetime.fromtimestamp(seconds, timezone.utc)
                self._last_device_seconds = seconds
        if ts.tzinfo is None:  # checked once here, so the readings below are built as they are
            raise ValueError(f"device {self.device.name}: timestamp {ts} has no time zone")
        readings = []
        append = readings.append
        bad = 0
        for pid, bi, off, unpack, n, d, lo, hi, slow in self._plan:
            block = data[bi]
            if block is None:
                append(_reading(Reading, (pid, ts, None, _BAD)))
                bad += 1
                continue
            if slow is None:  # an integer, big-endian: the exact rational raw x n / d rounded once (as to_canonical)
                value = unpack(block, off)[0] * n / d
            else:
                spec, ratio, roff, count = slow
                value = unpack(block, off)[0] if unpack is not None else decode_raw(spec, raw[bi][roff:roff + count])
                value = to_canonical(spec, value, ratio)  # floats: NaN and infinity are no number
                if value is None:
                    append(_reading(Reading, (pid, ts, None, _BAD)))
                    bad += 1
                    continue
            append(_reading(Reading, (pid, ts, value, _GOOD if lo <= value <= hi else _SUSPECT)))
        self.last_bad = bad
        return readings

    @staticmethod
    def _value(located: tuple, raw: list, data: list) -> int | float | None:
        bi, off, count, unpack, spec = located
        if data[bi] is None:
            return None
        return unpack(data[bi], 2 * off)[0] if unpack is not None else decode_raw(spec, raw[bi][off:off + count])

    def _readings(self, ts: datetime, values: dict[str, float | None],
                  limits: dict[str, tuple[float | None, float | None]]) -> list[Reading]:
        readings = []
        for quantity, pid in self.point_ids.items():
            value = values.get(quantity)
            lo, hi = limits.get(quantity, (None, None))
            if value is None:
                readings.append(Reading(pid, ts, None, Quality.BAD))
            elif (lo is not None and value < lo) or (hi is not None and value > hi):
                readings.append(Reading(pid, ts, value, Quality.SUSPECT))
            else:
                readings.append(Reading(pid, ts, value, Quality.GOOD))
        return readings

    async def _poll_sunspec(self, ts: datetime) -> list[Reading]:
        """Walk the SunSpec chain (its layout may change with a firmware update) and decode it.

        A model the device refuses to deliver, a not-implemented point or a NaN gives BAD readings
        for the quantities it feeds, never a number.
        """
        from collectors import sunspec

        unit = self.device.unit_id
        conn = self._connection()

        async def read(address: int, count: int) -> list[int]:
            return await conn.read("holding", address, count, unit)

        t0 = time.monotonic()
        try:
            dev = None
            if self._sunspec_span is not None:
                dev = await sunspec.read_span(read, self.sunspec_base, self._sunspec_span)
            if dev is None:
                dev = await sunspec.scan(read, self.sunspec_base)
        except DeviceRefused as exc:
            log.warning("device %s: SunSpec walk refused: %s", self.device.name, exc)
            dev = None
            self._sunspec_span = None  # walk the chain again next time
        self.last_latency_s = time.monotonic() - t0
        if dev is None:
            log.warning("device %s: no SunSpec marker at %s", self.device.name,
                        self.sunspec_base if self.sunspec_base is not None else sunspec.BASE_ADDRESSES)
            return self._readings(ts, {}, {})
        self.sunspec_base = dev.base
        self._sunspec_span = dev.span
        wanted = set(self.device.sunspec_models) if self.device.sunspec_models is not None else None
        values = dev.quantities(wanted)
        if self.power_sign != 1:
            for q in POWER_QUANTITIES & values.keys():
                if values[q] is not None:
                    values[q] = -values[q]
        return self._readings(ts, values, {})

    async def run(self, clock: Clock, sink: Sink, stop: asyncio.Event) -> None:
        """Poll at every whole multiple of the poll interval until ``stop`` is set."""
        interval = self.device.poll_interval_s
        while not stop.is_set():
            try:
                readings = await self.poll(clock)
            except (ModbusException, OSError, asyncio.TimeoutError) as exc:
                if not self.away:
                    log.error("device %s (%s unit %d) is away: %s", self.device.name, self.endpoint,
                              self.device.unit_id, exc)
                    self.away = True
                if self.conn is not None:
                    self.conn.close()  # reconnects on the next poll
            else:
                if self.away:
                    log.info("device %s is back", self.device.name)
                    self.away = False
                if readings:
                    result = sink(readings)
                    if asyncio.iscoroutine(result):
                        await result
            await _wait(clock, next_aligned(clock.now(), interval), stop)


@lru_cache(maxsize=None)
def _words(n: int) -> struct.Struct:
    """Packs n registers into their 2n bytes, high byte first, as they came over the wire."""
    return struct.Struct(f">{n}H")


def _scaled_range(lo: float | None, hi: float | None, factor: Decimal) -> tuple[float | None, float | None]:
    """A plausible range (as the device measures it) in stored terms: scaled, and swapped by a
    negative factor (a power sign)."""
    lo_s, hi_s = (None if x is None else float(Decimal(repr(x)) * factor) for x in (lo, hi))
    return (hi_s, lo_s) if factor < 0 else (lo_s, hi_s)


async def _wait(clock: Clock, until: datetime, stop: asyncio.Event) -> None:
    sleeper = asyncio.ensure_future(sleep_until(clock, until))
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for task in (sleeper, stopper):
        task.cancel()


async def run_devices(devices: list[ModbusDevice], clock: Clock, sink: Sink, stop: asyncio.Event) -> None:
    """Poll several devices at once until ``stop`` is set."""
    try:
        await asyncio.gather(*(d.run(clock, sink, stop) for d in devices))
    finally:
        for d in devices:
            await d.close()
