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
import gc
import logging
from collections.abc import Callable
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from types import SimpleNamespace

import psycopg

from collectors.clock import Clock
from collectors.health import HealthRecorder
from collectors.modbus import ModbusDevice, run_devices
from model.quantities import QUANTITIES
from model.readings import FUTURE_TOLERANCE, Quality, Reading, ReadingRow, device_time
from collectors.spool import DEFAULT_MAX_BYTES, Spool
from collectors.writer import BatchingWriter
from model.site import SiteConfig

log = logging.getLogger(__name__)

_pid, _ts = itemgetter(0), itemgetter(1)  # a reading's point id and timestamp

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
      finding recorded: the value is kept, its time is not trusted (the rule of every source,
      :func:`model.readings.device_time`; the sources judge their device times by it already, against
      the poll's or the receipt's time, so here it only catches what came some other way).
    - A counter point with ``rated_power_w`` follows its *confirmed* counter: a reading is GOOD
      when it is a plausible step from the confirmed value — not below it, and no more than the
      rating allows in the time between (plus one count of resolution) — and then becomes the
      confirmed value. A reading that breaks from it (a spike above the rating: ``counter_spike``;
      a drop: ``suspect_drop``) is SUSPECT and only a candidate: when the next reading is a
      plausible step from the candidate, the counter really moved there (a reset, a replaced
      meter, a jump) and that next reading is GOOD and confirmed; when it is a plausible step from
      the confirmed value, the candidate was a glitch. So one glitch — a zero, a spike — makes one
      suspect reading, never a run of them (docs/collectors.md "Quality and findings"); what a
      drop means for energy is left to metrics/ (a suspect reading is still usable there).
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
        self._last: dict[int, tuple[datetime, float]] = {}  # the confirmed counter
        self._candidate: dict[int, tuple[datetime, float]] = {}  # a reading that broke from it

    @staticmethod
    def _plausible(base: tuple[datetime, float], ts: datetime, value: float, rated: tuple[float, float]) -> bool:
        hours = (ts - base[0]).total_seconds() / 3600
        return 0 <= value - base[1] <= rated[0] * hours + rated[1]

    def judges(self, point_ids) -> bool:
        """Whether readings of these points can need more than the future-time check: a counter
        with a rating among them."""
        return not self.rated.keys().isdisjoint(point_ids)

    def _judge(self, r: ReadingRow, rated: tuple[float, float], now: datetime) -> ReadingRow:
        pid, ts, value, _quality = r
        last = self._last.get(pid)
        if last is None:
            self._last[pid] = (ts, value)
            return r
        if ts <= last[0]:
            return r  # older than the confirmed value (a replay): not judged
        cand = self._candidate.pop(pid, None)
        if self._plausible(last, ts, value, rated) or (
                cand is not None and ts > cand[0] and self._plausible(cand, ts, value, rated)):
            self._last[pid] = (ts, value)
            return r
        self._candidate[pid] = (ts, value)
        if self.health is not None:
            hours = (ts - last[0]).total_seconds() / 3600
            step = value - last[1]
            name = self.names.get(pid, str(pid))
            if step > 0:
                self.health.finding("counter_spike", name, data={
                    "step_wh": round(step), "seconds": round(hours * 3600), "implied_w": round(step / hours),
                    "rated_w": round(rated[0])}, when=now)
            else:
                self.health.finding("suspect_drop", name, data={"from_wh": round(last[1]), "to_wh": round(value)},
                                    when=now)
        return Reading(pid, ts, value, Quality.SUSPECT)

    def check(self, readings: list[ReadingRow]) -> list[ReadingRow]:
        if not readings:
            return readings
        now = self.clock.now()
        limit = now + FUTURE_TOLERANCE
        # the common case, decided in C without a step per reading: nothing ahead of the clock and no
        # counter with a rating among them (a Modbus poll of a meter without rated_power_w)
        if max(map(_ts, readings)) <= limit and (not self.rated or self.rated.keys().isdisjoint(map(_pid, readings))):
            return readings
        out = readings
        for i, r in enumerate(readings):
            fixed = r
            pid, ts, value, quality = r
            if ts > limit:
                at, kind = device_time(ts, now)  # (now, "future_timestamp")
                fixed = Reading(pid, at, value, Quality.BAD if value is None else Quality.SUSPECT)
                if self.health is not None:
                    self.health.finding(kind, self.names.get(pid, str(pid)),
                                        data={"device_time": ts.isoformat(),
                                              "ahead_s": round((ts - now).total_seconds())}, when=now)
            rated = self.rated.get(pid)
            if rated is not None and fixed[2] is not None and fixed[3] == Quality.GOOD:
                fixed = self._judge(fixed, rated, now)
            if fixed is not r:
                if out is readings:
                    out = list(readings)
                out[i] = fixed
        return out


class Intake:
    """What every source hands readings to: the quality gate, then the writer."""

    def __init__(self, writer: BatchingWriter, gate: QualityGate,
                 tap: Callable[[list[ReadingRow]], None] | None = None) -> None:
        self.writer = writer
        self.gate = gate
        self.tap = tap

    def submit(self, readings: list[ReadingRow], on_durable=None, on_lost=None) -> None:
        readings = self.gate.check(readings) if readings else readings
        if self.tap is not None and readings:
            self.tap(readings)
        self.writer.submit(readings, on_durable, on_lost)

    def sink_for(self, device: ModbusDevice) -> Callable[[list[ReadingRow]], None]:
        """Where a Modbus device's polls go: :meth:`submit`, or the writer's ``submit`` itself when
        the gate has nothing to do for this device — no counter with a rating among its points, and
        no timestamp can be ahead (the device judged its clock against the poll's time by the same
        rule, :func:`model.readings.device_time`, and the gate's clock is later) — and no tap: a
        Python call and a reading of the clock less per poll."""
        if self.tap is None and not self.gate.judges(device.point_ids.values()):
            return self.writer.submit
        return self.submit


class CollectorFailed(RuntimeError):
    """A part the collector cannot run without (the writer, the health recorder) stopped: the process
    must exit non-zero with this reason, so a supervisor restarts it, rather than stay up storing nothing."""


async def collect(site: SiteConfig, point_ids: dict[str, int], database_url: str, clock: Clock,
                  stop: asyncio.Event, *, flush_interval_s: float = 1.0, spool_dir: Path | str | Spool | None = None,
                  spool_max_bytes: int = DEFAULT_MAX_BYTES, max_backoff_s: float = 30.0,
                  health_interval_s: float = 5.0, device_ids: dict[str, int] | None = None,
                  tap: Callable[[list[ReadingRow]], None] | None = None,
                  on_start: Callable[[SimpleNamespace], None] | None = None) -> BatchingWriter:
    """Collect until ``stop`` is set, then flush what is queued; return the writer (for its counts).

    ``spool_dir``: where batches wait while the database is away (none: they wait in memory); an
    open :class:`Spool` (its lock already taken) is used as it is. ``device_ids``: device name -> id,
    for health rows (looked up when omitted). ``tap`` sees every reading handed to the writer (tests
    and benchmarks count them there); ``on_start`` gets the running parts (``writer``, ``source``
    (MQTT or None), ``health``, ``devices``).

    Raises :class:`CollectorFailed` when the writer or health task dies: the sources are stopped
    (what is queued goes to the spool if it can, MQTT messages not made durable stay unacknowledged
    for the broker to redeliver) and the reason is the exception's message.
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
    if isinstance(spool_dir, Spool):
        spool = spool_dir
    else:
        spool = Spool(spool_dir, max_bytes=spool_max_bytes) if spool_dir is not None else None
    writer = BatchingWriter(connect, spool=spool, flush_interval_s=flush_interval_s, max_backoff_s=max_backoff_s)
    health = HealthRecorder(connect, device_ids, interval_s=health_interval_s, now=clock.now)
    # the only place a reading can be lost is also a finding (``greengauge status``), not a log line only
    writer.on_drop = lambda n, detail: health.finding("readings_dropped", "writer", data={
        "readings": n, "dropped_total": writer.dropped, "max_queued": writer.max_queued,
        "database": "away" if writer.db_down else "slow", "spool": "full" if spool is not None else "none"}, count=n)
    # so is a spool segment set aside as corrupt: its readings were acknowledged, a person has to look
    writer.on_corrupt = lambda item: health.finding(
        "spool_corrupt", str(item.path), data={"readings": item.readings, "reason": item.reason},
        count=max(1, item.readings))
    # and rows the database refused for their content (set aside in rejected.txt): acknowledged, not stored
    # (data: the total since this collector started, as the text says; the count column adds up)
    writer.on_reject = lambda n, detail: health.finding(
        "readings_rejected", "writer", data={
            "readings": writer.rejected, "first": detail,
            "set_aside": str(spool.directory / "rejected.txt") if spool else "the log only (no spool directory)"},
        count=n)
    intake = Intake(writer, QualityGate(site, point_ids, clock, health), tap)
    writer_task = asyncio.create_task(writer.run())
    health_stop = asyncio.Event()
    health_task = asyncio.create_task(health.run(health_stop))
    devices = build_devices(site, point_ids)
    for dev in devices:
        health.watch_modbus(dev)
    source = None
    failed: CollectorFailed | None = None

    async def sources() -> None:
        if devices:
            await run_devices(devices, clock, intake.sink_for, stop, per_device=True)
        else:
            await stop.wait()

    main = None
    try:
        if site.mqtt is not None:
            source = MqttSource(site, point_ids, intake.submit, clock, health=health, wake=writer.wake)
            source.start()
        if on_start is not None:
            on_start(SimpleNamespace(writer=writer, source=source, health=health, devices=devices))
        freeze_startup()
        main = asyncio.create_task(sources())
        await asyncio.wait({main, writer_task, health_task}, return_when=asyncio.FIRST_COMPLETED)
        for task, what in ((writer_task, "writer"), (health_task, "health recorder")):
            if task.done():  # they only end when told to: this one died
                exc = None if task.cancelled() else task.exception()
                reason = f"{type(exc).__name__}: {exc}" if exc is not None else "it ended"
                failed = CollectorFailed(f"the {what} task stopped ({reason}); nothing more would be stored")
                log.critical("%s", failed)
                stop.set()
                break
        await main
    finally:
        thaw()  # stopping is no hot path
        if main is not None and not main.done():
            stop.set()
            main.cancel()
            await asyncio.gather(main, return_exceptions=True)
        if source is not None:
            source.pause()
        await writer.close()
        if not writer_task.done():
            await writer_task
        elif spool is not None:  # the writer died: what it held goes to the spool if it can
            try:
                await writer._spool_pending()
            except Exception as exc:
                log.error("the queued readings could not be spooled either: %s", exc)
        writer.close_connection()
        if source is not None:
            await source.stop()
        health.stopped()  # `greengauge status`: these devices are not being collected now
        health_stop.set()
        if not health_task.done():
            await health_task
        await health.flush()
        health.close()
        if spool is not None:
            spool.close()
    if failed is not None:
        raise failed
    return writer


#: while collecting, the cyclic garbage collector's youngest generation is collected after this many
#: new objects instead of 700: the readings waiting for the writer are young, alive and tens of
#: thousands, so at 700 every one was walked once or twice before its batch was written (and with it
#: every reading of the queue at each older-generation pass); at this size a young collection comes
#: about once per batch or less, and what it walks is at most a few MB of objects
GC_YOUNG_THRESHOLD = 50_000
_thresholds: tuple[int, ...] | None = None


def freeze_startup() -> None:
    """Start-up is over: what exists now (modules, the site, profiles, the parts) lives as long as
    the collector, so the cyclic garbage collector is told not to walk it again (``gc.freeze``)
    while readings pass by the thousand a second, and to collect the young generation less often
    (:data:`GC_YOUNG_THRESHOLD`). :func:`thaw` (called when :func:`collect` returns) undoes both
    (so whatever garbage was frozen with it is collected then; no full collection at start-up)."""
    global _thresholds
    gc.freeze()
    if _thresholds is None:
        _thresholds = gc.get_threshold()
        gc.set_threshold(max(GC_YOUNG_THRESHOLD, _thresholds[0]), *_thresholds[1:])


def thaw() -> None:
    """Undo :func:`freeze_startup`: the garbage collector as it was."""
    global _thresholds
    gc.unfreeze()
    if _thresholds is not None:
        gc.set_threshold(*_thresholds)
        _thresholds = None
