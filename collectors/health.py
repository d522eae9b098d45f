"""Per-device health and data-quality findings, kept in memory and written to the database now and then.

The collector records each poll (or each MQTT message) here: success with its latency, or failure
with its error text. Every ``interval_s`` the changed rows are upserted into ``device_health``
and the findings counted since the last write are added to ``collector_finding``
(:mod:`store.health`). Health is not data: when the database is away the rows wait in memory
(one per device, findings one per kind and source) and are written once it is back.

Modbus devices are watched without touching their poll loop: :meth:`HealthRecorder.watch_modbus`
wraps the device's ``poll`` so every attempt is recorded. (Logging once at ERROR when a device
goes away and once at INFO when it returns stays in :mod:`collectors.modbus`.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone

import psycopg

from model.readings import Quality
from store.health import FindingRow, HealthRow, add_findings, upsert_health

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class HealthRecorder:
    def __init__(self, connect: Callable[[], psycopg.Connection], device_ids: dict[str, int], *,
                 interval_s: float = 5.0, now: Callable[[], datetime] = _now) -> None:
        self._connect = connect
        self.device_ids = device_ids
        self.interval_s = interval_s
        self.now = now
        self._rows: dict[str, HealthRow] = {}
        self._dirty: set[str] = set()
        self._findings: dict[tuple[str, str], FindingRow] = {}
        self.findings_total: dict[str, int] = {}

    # -- recording (event loop; cheap) -------------------------------------------------------------
    def success(self, device: str, latency_s: float | None = None, when: datetime | None = None) -> None:
        when = when or self.now()
        row = self._rows.get(device)
        if row is None or row.status != "ok":
            row = self._new(device, "ok", when, row)
        row.last_attempt = row.last_success = when
        row.consecutive_failures = 0
        row.latency_ms = None if latency_s is None else latency_s * 1000
        row.last_error = None
        self._dirty.add(device)

    def failure(self, device: str, error: str, when: datetime | None = None) -> None:
        when = when or self.now()
        row = self._rows.get(device)
        if row is None or row.status != "away":
            row = self._new(device, "away", when, row)
        row.last_attempt = when
        row.consecutive_failures += 1
        row.last_error = error[:1000]
        self._dirty.add(device)

    def _new(self, device: str, status: str, when: datetime, old: HealthRow | None) -> HealthRow:
        row = HealthRow(self.device_ids.get(device, 0), status, when, when,
                        old.last_success if old else None, old.consecutive_failures if old else 0,
                        old.latency_ms if old else None, old.last_error if old else None)
        self._rows[device] = row
        return row

    def stopped(self, when: datetime | None = None) -> None:
        """The collector is stopping: every device it collects is ``stopped`` (not collected) from now."""
        when = when or self.now()
        for device in set(self.device_ids) | set(self._rows):
            old = self._rows.get(device)
            row = self._new(device, "stopped", when, old)
            if old is not None:
                row.last_attempt = old.last_attempt
            self._dirty.add(device)

    def status(self, device: str) -> HealthRow | None:
        return self._rows.get(device)

    def finding(self, kind: str, source: str, detail: str, *, device: str | None = None,
                when: datetime | None = None, count: int = 1) -> None:
        when = when or self.now()
        self.findings_total[kind] = self.findings_total.get(kind, 0) + count
        key = (kind, source)
        f = self._findings.get(key)
        if f is None:
            log.warning("finding %s on %s: %s", kind, source, detail)
            self._findings[key] = FindingRow(kind, source, self.device_ids.get(device) if device else None,
                                             when, when, count, detail[:1000])
        else:
            f.last_seen, f.count, f.detail = when, f.count + count, detail[:1000]

    # -- Modbus --------------------------------------------------------------------------------------
    def watch_modbus(self, device) -> None:
        """Record every poll of a :class:`collectors.modbus.ModbusDevice` (wraps its ``poll``)."""
        inner = device.poll
        name = device.device.name

        async def poll(clock):
            t0 = time.monotonic()
            try:
                readings = await inner(clock)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self.failure(name, f"{type(exc).__name__}: {exc}", clock.now())
                raise
            latency = time.monotonic() - t0
            bad = sum(1 for r in readings if r.quality == Quality.BAD)
            if readings and bad == len(readings):
                self.failure(name, f"device answered but refused or returned no number for all {bad} values",
                             clock.now())
            else:
                self.success(name, latency, clock.now())
            if bad:
                self.finding("device_error", name, f"{bad} of {len(readings)} values refused or not a number",
                             device=name, when=clock.now(), count=bad)
            return readings

        device.poll = poll

    # -- writing ---------------------------------------------------------------------------------------
    def _take(self) -> tuple[list[HealthRow], list[FindingRow]]:
        rows = [self._rows[d] for d in self._dirty if self.device_ids.get(d)]
        rows = [HealthRow(**vars(r)) for r in rows]
        found = list(self._findings.values())
        self._dirty.clear()
        self._findings.clear()
        return rows, found

    def _restore(self, rows: list[HealthRow], found: list[FindingRow]) -> None:
        by_id = {v: k for k, v in self.device_ids.items()}
        for r in rows:
            self._dirty.add(by_id[r.device_id])
        for f in found:
            key = (f.kind, f.source)
            if key in self._findings:
                newer = self._findings[key]
                newer.count += f.count
                newer.first_seen = f.first_seen
            else:
                self._findings[key] = f

    def _write(self, rows: list[HealthRow], found: list[FindingRow]) -> bool:
        try:
            with self._connect() as conn:
                upsert_health(conn, rows)
                add_findings(conn, found)
            return True
        except psycopg.Error as exc:
            log.debug("health not written (will retry): %s", exc)
            return False

    async def flush(self) -> None:
        """Write what changed since the last write; keep it for the next try when the database is away."""
        rows, found = self._take()  # in the event loop, where the recording happens
        if (rows or found) and not await asyncio.to_thread(self._write, rows, found):
            self._restore(rows, found)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
            except asyncio.TimeoutError:
                pass
            await self.flush()
