"""Run the collector for a site: Modbus devices polled at once, MQTT subscribed, readings through the writer.

    devices (Modbus poll) ─┐
                           ├─> QualityGate (future timestamps, counter steps above the rating)
    MQTT (broker session) ─┘        │
                                    v
                    BatchingWriter ── COPY ──> PostgreSQL
                           └── on database error ──> Spool (disk) ── replayed when it is back

On ``stop`` (SIGTERM): the MQTT source stops taking messages, the devices stop polling, the writer
writes what is queued to the database or the spool, the MQTT acknowledgements for it are sent,
then the session is closed (the broker keeps it for the next start).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import psycopg

from collectors.clock import Clock
from collectors.health import HealthRecorder
from collectors.modbus import ModbusDevice, run_devices
from model.quantities import QUANTITIES
from model.readings import Quality, Reading
from collectors.spool import DEFAULT_MAX_BYTES, Spool
from collectors.writer import BatchingWriter
from model.site import SiteConfig

log = logging.getLogger(__name__)

#: a device timestamp further ahead of the collector's clock than this is not trusted
FUTURE_TOLERANCE = timedelta(minutes=5)
DB_CONNECT_TIMEOUT_S = 5


def build_devices(site: SiteConfig, point_ids: dict[str, int]) -> list[ModbusDevice]:
    """One Modbus device per configured device, with the point id of each quantity it stores."""
    devices = []
    for d in site.devices:
        quantities = {p.quantity: point_ids[site.point_name(d, p)] for p in d.point_configs()}
        devices.append(ModbusDevice(d, quantities))
    return devices


class QualityGate:
    """Checks every reading needs whatever its source: a future timestamp, a counter step too steep.

    - A timestamp more than 5 minutes ahead of the collector's clock is replaced by the
      collector's time, the reading marked SUSPECT (BAD stays BAD) and a ``future_timestamp``
      finding recorded: the value is kept, its time is not trusted.
    - A counter point with ``rated_power_w``: a step from its last good reading implying more
      power than the rating (beyond one count of resolution) is SUSPECT, with a ``counter_spike``
      finding; the spike does not become the baseline. A drop is a reset, left to metrics/.
    """

    def __init__(self, site: SiteConfig, point_ids: dict[str, int], clock: Clock,
                 health: HealthRecorder | None = None) -> None:
        self.clock = clock
        self.health = health
        self.names = {pid: name for name, pid in point_ids.items()}
        self.rated: dict[int, tuple[float, float]] = {}  # point id -> (rated W, resolution Wh)
        for name, d, p in [*site.points(), *site.mqtt_points()]:
            if p.rated_power_w and QUANTITIES[p.quantity].kind == "counter" and name in point_ids:
                resolution = 1.0
                try:
                    resolution = max(1.0, float(d.profile_model.register(p.quantity).factor))
                except Exception:  # MQTT and SunSpec devices have no profile file: one Wh
                    pass
                self.rated[point_ids[name]] = (float(p.rated_power_w), resolution)
        self._last: dict[int, tuple[datetime, float]] = {}

    def check(self, readings: list[Reading]) -> list[Reading]:
        now = self.clock.now()
        limit = now + FUTURE_TOLERANCE
        out = readings
        for i, r in enumerate(readings):
            fixed = r
            if r.ts > limit:
                fixed = Reading(r.point_id, now, r.value, Quality.BAD if r.value is None else Quality.SUSPECT)
                if self.health is not None:
                    self.health.finding("future_timestamp", self.names.get(r.point_id, str(r.point_id)),
                                        f"device time {r.ts.isoformat()} is {r.ts - now} ahead; stored at the "
                                        "collector's time as suspect", when=now)
            rated = self.rated.get(fixed.point_id)
            if rated is not None and fixed.value is not None and fixed.quality == Quality.GOOD:
                last = self._last.get(fixed.point_id)
                if last is not None and fixed.ts > last[0]:
                    hours = (fixed.ts - last[0]).total_seconds() / 3600
                    step = fixed.value - last[1]
                    if step > rated[0] * hours + rated[1]:
                        fixed = Reading(fixed.point_id, fixed.ts, fixed.value, Quality.SUSPECT)
                        if self.health is not None:
                            self.health.finding("counter_spike", self.names.get(r.point_id, str(r.point_id)),
                                                f"step of {step:.0f} Wh in {hours * 3600:.0f} s implies "
                                                f"{step / hours:.0f} W, above the rated {rated[0]:.0f} W", when=now)
                if fixed.quality == Quality.GOOD and (last is None or fixed.ts > last[0]):
                    self._last[fixed.point_id] = (fixed.ts, fixed.value)
            if fixed is not r:
                if out is readings:
                    out = list(readings)
                out[i] = fixed
        return out


class Intake:
    """What every source hands readings to: the quality gate, then the writer."""

    def __init__(self, writer: BatchingWriter, gate: QualityGate,
                 tap: Callable[[list[Reading]], None] | None = None) -> None:
        self.writer = writer
        self.gate = gate
        self.tap = tap

    def submit(self, readings: list[Reading], on_durable=None, on_lost=None) -> None:
        readings = self.gate.check(readings) if readings else readings
        if self.tap is not None and readings:
            self.tap(readings)
        self.writer.submit(readings, on_durable, on_lost)


async def collect(site: SiteConfig, point_ids: dict[str, int], database_url: str, clock: Clock,
                  stop: asyncio.Event, *, flush_interval_s: float = 1.0, spool_dir: Path | str | None = None,
                  spool_max_bytes: int = DEFAULT_MAX_BYTES, max_backoff_s: float = 30.0,
                  health_interval_s: float = 5.0, device_ids: dict[str, int] | None = None,
                  tap: Callable[[list[Reading]], None] | None = None,
                  on_start: Callable[[SimpleNamespace], None] | None = None) -> BatchingWriter:
    """Collect until ``stop`` is set, then flush what is queued; return the writer (for its counts).

    ``spool_dir``: where batches wait while the database is away (none: they wait in memory).
    ``device_ids``: device name -> id, for health rows (looked up when omitted). ``tap`` sees every
    reading handed to the writer (tests and benchmarks count them there); ``on_start`` gets the
    running parts (``writer``, ``source`` (MQTT or None), ``health``, ``devices``).
    """
    from collectors.mqtt import MqttSource
    from store.health import device_ids as lookup_device_ids

    def connect() -> psycopg.Connection:
        # keepalives and a TCP user timeout: a database behind a dead link is noticed in about 30 s,
        # not after the kernel's two hours, so the writer turns to the spool
        return psycopg.connect(database_url, connect_timeout=DB_CONNECT_TIMEOUT_S, keepalives=1,
                               keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
                               tcp_user_timeout=30_000)

    if device_ids is None:
        try:
            with connect() as conn:
                device_ids = lookup_device_ids(conn, site.enterprise.code, site.site.code)
        except psycopg.Error as exc:
            log.warning("device ids not read (%s): health is kept in memory only", exc)
            device_ids = {}
    spool = Spool(spool_dir, max_bytes=spool_max_bytes) if spool_dir is not None else None
    writer = BatchingWriter(connect, spool=spool, flush_interval_s=flush_interval_s, max_backoff_s=max_backoff_s)
    health = HealthRecorder(connect, device_ids, interval_s=health_interval_s, now=clock.now)
    # the only place a reading can be lost is also a finding (``greengauge status``), not a log line only
    writer.on_drop = lambda n, detail: health.finding("readings_dropped", "writer", detail, count=n)
    intake = Intake(writer, QualityGate(site, point_ids, clock, health), tap)
    writer_task = asyncio.create_task(writer.run())
    health_stop = asyncio.Event()
    health_task = asyncio.create_task(health.run(health_stop))
    devices = build_devices(site, point_ids)
    for dev in devices:
        health.watch_modbus(dev)
    source = None
    if site.mqtt is not None:
        source = MqttSource(site, point_ids, intake.submit, clock, health=health, wake=writer.wake)
        source.start()
    if on_start is not None:
        on_start(SimpleNamespace(writer=writer, source=source, health=health, devices=devices))
    try:
        if devices:
            await run_devices(devices, clock, intake.submit, stop)
        else:
            await stop.wait()
    finally:
        if source is not None:
            source.pause()
        await writer.close()
        await writer_task
        writer.close_connection()
        if source is not None:
            await source.stop()
        health_stop.set()
        await health_task
        await health.flush()
        if spool is not None:
            spool.close()
    return writer
