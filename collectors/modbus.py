"""The Modbus provider and the asyncio poller.

One :class:`ModbusDevice` per configured device: it plans its reads from the profile (adjacent
registers merged up to the 125-register limit), reads them, decodes each value with the profile's
type, word order and scale into its canonical unit, and hands :class:`Reading` objects on.

Faults are handled at the connection boundary: a dead link raises ``ConnectionException`` (the
device is marked away, logged once at ERROR, and once at INFO when it returns); a device's refusal
comes back as a response with ``isError()`` true and its points are stored as BAD readings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from collectors.clock import Clock, next_aligned, sleep_until
from collectors.profile import ReadBlock, decode_raw, plan_reads, registers_for, to_canonical
from collectors.readings import Quality, Reading
from greengauge.site import DeviceConfig

log = logging.getLogger(__name__)

#: a device clock before this has not been set; the collector's clock is used instead
CLOCK_NOT_SET_BEFORE = datetime(2000, 1, 1, tzinfo=timezone.utc)

Sink = Callable[[list[Reading]], Awaitable[None] | None]


class ModbusDevice:
    def __init__(self, device: DeviceConfig, point_ids: dict[str, int]) -> None:
        """``point_ids`` maps each quantity to store to its point id."""
        self.device = device
        self.profile = device.profile_model
        self.specs = [r for r in self.profile.registers if r.quantity in point_ids]
        self.point_ids = point_ids
        clock_spec = [self.profile.clock] if self.profile.clock else []
        self.blocks = plan_reads([*self.specs, *clock_spec])
        self.client: AsyncModbusTcpClient | None = None  # made in the event loop, at the first poll
        self.away = False
        self.last_device_time: datetime | None = None
        self.last_latency_s: float | None = None

    async def close(self) -> None:
        if self.client is not None:
            self.client.close()

    async def _read_block(self, block: ReadBlock) -> list[int] | None:
        read = (self.client.read_holding_registers if block.function == "holding"
                else self.client.read_input_registers)
        rr = await read(block.address, count=block.count, device_id=self.device.unit_id)
        if rr.isError():
            log.warning("device %s: %s registers %d+%d refused: %s", self.device.name, block.function,
                        block.address, block.count, rr)
            return None
        return list(rr.registers)

    async def poll(self, clock: Clock) -> list[Reading]:
        """Read the device once. Raises ``ModbusException`` or ``OSError`` when the link is down."""
        if self.client is None:
            d = self.device
            self.client = AsyncModbusTcpClient(d.host, port=d.port, timeout=d.timeout_s, retries=0, reconnect_delay=0)
        if not self.client.connected:
            if not await self.client.connect():
                raise ConnectionError(f"cannot connect to {self.device.host}:{self.device.port}")
        ts = clock.now()
        t0 = time.monotonic()
        raw_blocks = {block: await self._read_block(block) for block in self.blocks}
        self.last_latency_s = time.monotonic() - t0
        if self.profile.clock is not None:
            regs = registers_for(self.profile.clock, raw_blocks)
            device_ts = regs and datetime.fromtimestamp(decode_raw(self.profile.clock, regs), timezone.utc)
            if device_ts and device_ts >= CLOCK_NOT_SET_BEFORE:  # an unset device clock reads 0
                ts = device_ts
                if ts == self.last_device_time:
                    return []  # the device has not measured anew since the last poll
                self.last_device_time = ts
        readings = []
        for spec in self.specs:
            regs = registers_for(spec, raw_blocks)
            pid = self.point_ids[spec.quantity]
            if regs is None:
                readings.append(Reading(pid, ts, None, Quality.BAD))
                continue
            value = to_canonical(spec, decode_raw(spec, regs))
            if value is None:
                readings.append(Reading(pid, ts, None, Quality.BAD))
            elif (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
                readings.append(Reading(pid, ts, value, Quality.SUSPECT))
            else:
                readings.append(Reading(pid, ts, value, Quality.GOOD))
        return readings

    async def run(self, clock: Clock, sink: Sink, stop: asyncio.Event) -> None:
        """Poll at every whole multiple of the poll interval until ``stop`` is set."""
        interval = self.device.poll_interval_s
        while not stop.is_set():
            try:
                readings = await self.poll(clock)
            except (ModbusException, OSError, asyncio.TimeoutError) as exc:
                if not self.away:
                    log.error("device %s (%s:%d unit %d) is away: %s", self.device.name, self.device.host,
                              self.device.port, self.device.unit_id, exc)
                    self.away = True
                await self.close()
            else:
                if self.away:
                    log.info("device %s is back", self.device.name)
                    self.away = False
                if readings:
                    result = sink(readings)
                    if asyncio.iscoroutine(result):
                        await result
            await _wait(clock, next_aligned(clock.now(), interval), stop)


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
