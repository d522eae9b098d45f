"""The Modbus provider and the asyncio poller.

One :class:`ModbusDevice` per configured device: it plans its reads from the profile (adjacent
registers merged up to the 125-register limit), reads them, decodes each value with the profile's
type, word order and scale into its canonical unit (times the device's CT/PT ratio for registers
the profile marks ``ct_pt``), and hands its readings on as plain ``(point_id, ts, value, quality)``
tuples (:data:`model.readings.ReadingRow`; the poll loop's hot path, see :mod:`model.readings`). A device with profile
``sunspec`` is read by walking its SunSpec model chain (:mod:`collectors.sunspec`); once the chain
is known it is re-read in bulk.

Devices behind one endpoint (a gateway's host and port, a serial line) share one connection from
:mod:`collectors.transport`, one request at a time.

Faults are handled at the connection boundary: a dead link raises ``ConnectionException`` (the
device is marked away, logged once at ERROR, and once at INFO when it returns); a device's refusal
comes back as a response with ``isError()`` true and its points are stored as BAD readings.

Every value and the device's clock pass the checks every source passes (:mod:`model.readings`,
the same functions as MQTT's): a value that is not finite, beyond ±2^53 or a negative counter after
the conversion is BAD (finding ``out_of_range``/``negative_counter``); a device clock before 2000
or more than 5 minutes ahead — a number beyond any calendar included — is not trusted: the poll's
own time is used, and the readings keep their quality (the collector read them at that time; unlike
an MQTT receipt, a poll's time is when the value was read), with a ``past_timestamp``/
``future_timestamp`` finding at every poll while the clock stays wrong. Findings
go to ``on_finding`` (the health recorder's, set by ``HealthRecorder.watch_modbus``); a bad value
or clock never stops the poll loop.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter

from pymodbus.exceptions import ModbusException

from collectors.clock import Clock, next_aligned, sleep_until
from model.profile import (
    _STRUCT, ClockSpec, RegisterSpec, decode_raw, plan_reads, ratio_factor, to_canonical,
)
from model.readings import Quality, ReadingRow, device_time, impossible_value, value_bounds
from collectors.transport import Connection, ConnectionPool, DeviceRefused, Endpoint, default_pool
from model.quantities import QUANTITIES
from model.site import POWER_QUANTITIES, SUNSPEC_PROFILE, DeviceConfig

log = logging.getLogger(__name__)

Sink = Callable[[list[ReadingRow]], Awaitable[None] | None]
#: on_finding(kind, source, data, when): what the checks found (HealthRecorder.watch_modbus sets it)
OnFinding = Callable[[str, str, dict, datetime], None]

# the poll loop's hot path builds its readings as plain tuples: what Reading() checks (an aware
# timestamp, no value only when BAD) holds by construction there. Their qualities are the plain
# ints (a Quality member equals its int): an enum member is an object the cyclic garbage collector
# tracks, and a tuple holding one stays tracked, walked by every collection while it waits in the
# writer's queue; a tuple of ints, floats, None and a datetime is untracked at its first collection
_GOOD, _SUSPECT, _BAD = int(Quality.GOOD), int(Quality.SUSPECT), int(Quality.BAD)
_quality = itemgetter(3)  # a reading's quality


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
            self._quantity = {pid: q for q, pid in point_ids.items()}  # for the rare value that needs judging
            self._clock = (*self._locate(self.profile.clock), self.profile.clock) if self.profile.clock else None
            # each block with what makes its registers the bytes they came as (high byte first)
            self._reads = [(b, _words(b.count).pack) for b in self.blocks]
        self._unit = device.unit_id
        self.endpoint = Endpoint.of(device)
        self._pool = pool
        self.conn: Connection | None = None
        self.away = False
        self.faulty = False  # the last poll raised something no link fault explains (logged once)
        self.last_device_time: datetime | None = None
        self._last_device_seconds: int | float | None = None
        self.last_latency_s: float | None = None
        #: BAD readings of the last poll (a refused block, no number), counted while decoding
        self.last_bad = 0
        #: every poll's outcome, for health (set by HealthRecorder.watch_modbus): on_poll(readings,
        #: seconds the reads took, the collector's time at the poll, BAD readings among them);
        #: on_failure(exception, clock)
        self.on_poll: Callable[[list[ReadingRow], float, datetime, int], None] | None = None
        self.on_failure: Callable[[BaseException, Clock], None] | None = None
        #: what the checks of model.readings found; without it, each (kind, source) is logged once
        self.on_finding: OnFinding | None = None
        self._logged: set[tuple[str, str]] = set()

    def _locate(self, spec: RegisterSpec | ClockSpec) -> tuple:
        """(block index, register offset, count, big-endian unpacker or None for little word order)."""
        for i, b in enumerate(self.blocks):
            if b.function == spec.function and b.address <= spec.address < b.address + b.count:
                unpack = _STRUCT[spec.type].unpack_from if spec.word_order == "big" else None
                return i, spec.address - b.address, spec.count, unpack
        raise AssertionError(f"register {spec.address} is in no read block")  # plan_reads covers every spec

    def _compile(self, spec: RegisterSpec | None, pid: int) -> tuple:
        """One value's entry in the poll loop's plan: (point id, block index (-1: none), byte offset,
        big-endian unpacker, exact rational factor n / d, the range lo..hi a GOOD value lies in (the
        profile's plausible range within the bounds any value of the quantity must keep,
        :func:`model.readings.value_bounds`: a value outside is judged, SUSPECT or BAD), and for a
        value that needs more (floats, little word order) the spec, its CT/PT ratio and its register
        offset and count, else None)."""
        if spec is None:  # a quantity the profile does not map: always BAD
            return (pid, -1, 0, None, 1, 1, 0.0, 0.0, None)
        bi, off, count, unpack = self._locate(spec)
        ratio = self.ratios[spec.quantity]
        lo, hi = self._limits[spec.quantity]
        bound_lo, bound_hi = value_bounds(spec.quantity)
        lo, hi = bound_lo if lo is None else max(lo, bound_lo), bound_hi if hi is None else min(hi, bound_hi)
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

    async def poll(self, clock: Clock) -> list[ReadingRow]:
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

    def _decode(self, ts: datetime, raw: list[list[int] | None], data: list[bytes | None]) -> list[ReadingRow]:
        """The readings of one poll, at the poll's time ``ts`` (or the device clock's), from the
        registers read and the bytes they came as (None: a block not read); sets ``last_bad``."""
        data.append(None)  # for the quantities no block holds
        if self._clock is not None:
            seconds = self._value(self._clock, raw, data)
            if seconds is not None:
                if seconds == self._last_device_seconds:
                    self.last_bad = 0
                    return []  # the device has not measured anew since the last poll
                device_ts, why = device_time(seconds, ts)  # judged as a number: no calendar raises here
                if why is None:
                    ts = self.last_device_time = device_ts
                    self._last_device_seconds = seconds
                else:  # not trusted: the poll's own time, when the values were read (they stay GOOD)
                    self._clock_finding(why, seconds, ts)
        if ts.tzinfo is None:  # checked once here, so the readings below are built as they are
            raise ValueError(f"device {self.device.name}: timestamp {ts} has no time zone")
        readings = []
        append = readings.append
        bad = 0
        for pid, bi, off, unpack, n, d, lo, hi, slow in self._plan:
            block = data[bi]
            if block is None:
                append((pid, ts, None, _BAD))
                bad += 1
                continue
            if slow is None:  # an integer, big-endian: the exact rational raw x n / d rounded once (as to_canonical)
                value = unpack(block, off)[0] * n / d
            else:
                spec, ratio, roff, count = slow
                value = unpack(block, off)[0] if unpack is not None else decode_raw(spec, raw[bi][roff:roff + count])
                value = to_canonical(spec, value, ratio)  # floats: NaN and infinity are no number
                if value is None:
                    append((pid, ts, None, _BAD))
                    bad += 1
                    continue
            if lo <= value <= hi:
                append((pid, ts, value, _GOOD))
            elif self._judge(pid, value, ts):  # outside the plausible range, or impossible
                append((pid, ts, value, _SUSPECT))
            else:
                append((pid, ts, None, _BAD))
                bad += 1
        self.last_bad = bad
        return readings

    def _judge(self, pid: int, value: float, when: datetime) -> bool:
        """A value outside the range a GOOD one lies in: True when it is only implausible (SUSPECT),
        False when it cannot be stored as a number (BAD; a finding names it)."""
        quantity = self._quantity[pid]
        kind = impossible_value(value, quantity)
        if kind is None:
            return True
        self._finding(kind, f"{self.device.name}:{quantity}",
                      {"quantity": quantity, "value": f"{value:g}", "unit": QUANTITIES[quantity].unit}, when)
        return False

    def _clock_finding(self, kind: str, seconds: int | float, now: datetime) -> None:
        """The device clock not trusted (every poll, while it stays so: a clock never set)."""
        data = {"device_time": seconds, "register": self._clock[-1].address}
        if kind == "future_timestamp":
            data["ahead_s"] = round(seconds - now.timestamp())
        found = self.on_finding
        if found is not None:
            found(kind, self.device.name, data, now)
        else:
            self._log_once(kind, self.device.name, data)

    def _finding(self, kind: str, source: str, data: dict, when: datetime) -> None:
        if self.on_finding is not None:
            self.on_finding(kind, source, data, when)
        else:
            self._log_once(kind, source, data)

    def _log_once(self, kind: str, source: str, data: dict) -> None:
        """No health recorder (a poll outside ``collect``): each kind and source said once, not every poll."""
        if (kind, source) not in self._logged:
            self._logged.add((kind, source))
            log.warning("device %s: %s on %s: %s", self.device.name, kind, source, data)

    @staticmethod
    def _value(located: tuple, raw: list, data: list) -> int | float | None:
        bi, off, count, unpack, spec = located
        if data[bi] is None:
            return None
        return unpack(data[bi], 2 * off)[0] if unpack is not None else decode_raw(spec, raw[bi][off:off + count])

    def _readings(self, ts: datetime, values: dict[str, float | None]) -> list[ReadingRow]:
        """The readings of a SunSpec poll (values in stored terms, None: no number)."""
        readings = []
        for quantity, pid in self.point_ids.items():
            value = values.get(quantity)
            if value is None:
                readings.append((pid, ts, None, _BAD))
                continue
            kind = impossible_value(value, quantity)
            if kind is not None:
                self._finding(kind, f"{self.device.name}:{quantity}",
                              {"quantity": quantity, "value": f"{value:g}", "unit": QUANTITIES[quantity].unit}, ts)
                readings.append((pid, ts, None, _BAD))
            else:
                readings.append((pid, ts, value, _GOOD))
        return readings

    async def _poll_sunspec(self, ts: datetime) -> list[ReadingRow]:
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
            return self._readings(ts, {})
        self.sunspec_base = dev.base
        self._sunspec_span = dev.span
        wanted = set(self.device.sunspec_models) if self.device.sunspec_models is not None else None
        values = dev.quantities(wanted)
        if self.power_sign != 1:
            for q in POWER_QUANTITIES & values.keys():
                if values[q] is not None:
                    values[q] = -values[q]
        return self._readings(ts, values)

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
            except Exception as exc:
                # a fault nobody foresaw in decoding this device's answer: its poll failed (recorded
                # as a failure by poll's on_failure), said once with the traceback; the other
                # devices, and this one's next polls, go on — one device must not stop the collector
                if not self.faulty:
                    log.error("device %s: its poll failed (%s: %s); polling goes on", self.device.name,
                              type(exc).__name__, exc, exc_info=True)
                    self.faulty = True
            else:
                if self.away:
                    log.info("device %s is back", self.device.name)
                    self.away = False
                if self.faulty:
                    log.info("device %s: polled again without a fault", self.device.name)
                    self.faulty = False
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


async def run_devices(devices: list[ModbusDevice], clock: Clock, sink: Sink | Callable[[ModbusDevice], Sink],
                      stop: asyncio.Event, *, per_device: bool = False) -> None:
    """Poll several devices at once until ``stop`` is set; their readings go to ``sink``, or with
    ``per_device`` to ``sink(device)``, each device's own (collectors.run.Intake.sink_for)."""
    try:
        await asyncio.gather(*(d.run(clock, sink(d) if per_device else sink, stop) for d in devices))
    finally:
        for d in devices:
            await d.close()
