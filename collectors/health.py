"""Per-device health and data-quality findings, kept in memory and written to the database now and then.

The collector records each poll (or each MQTT message) here: success with its latency, or failure
with its error text. Every ``interval_s`` the changed rows are upserted into ``device_health``
and the findings counted since the last write are added to the ``finding`` table
(:mod:`store.health`): each a :class:`model.findings.Finding` with its data, no sentence (the text
is made where it is shown). Health is not data: when the database is away the rows wait in memory
(one per device, findings one per kind and source) and are written once it is back.

Modbus devices are watched without touching their poll loop: :meth:`HealthRecorder.watch_modbus`
sets the device's hooks, which its ``poll`` calls on every attempt. (Logging once at ERROR when a
device goes away and once at INFO when it returns stays in :mod:`collectors.modbus`.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psycopg

from model.findings import Finding, Subject, kind_of
from store.health import HealthRow, add_findings, upsert_health

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Counted:
    """A counted finding while it accumulates in memory (one per kind and source)."""

    kind: Any
    source: str
    device_id: int | None
    first_seen: datetime
    last_seen: datetime
    count: int
    data: dict[str, Any] = field(default_factory=dict)

    def finding(self) -> Finding:
        return Finding(self.kind, Subject(self.device_id, None, self.source), self.first_seen, None, self.data,
                       self.count, self.last_seen)


class HealthRecorder:
    def __init__(self, connect: Callable[[], psycopg.Connection], device_ids: dict[str, int], *,
                 interval_s: float = 5.0, now: Callable[[], datetime] = _now) -> None:
        self._connect = connect
        self._conn: psycopg.Connection | None = None  # used in one thread at a time: flushes do not overlap
        self.device_ids = device_ids
        self.interval_s = interval_s
        self.now = now
        self._rows: dict[str, HealthRow] = {}
        self._dirty: set[str] = set()
        self._findings: dict[tuple[str, str], _Counted] = {}
        self.findings_total: dict[str, int] = {}

    # -- recording (event loop; cheap) -------------------------------------------------------------
    def success(self, device: str, latency_s: float | None = None, when: datetime | None = None) -> None:
        when = when or self.now()
        row = self._rows.get(device)
        if row is None or row.status != "ok":
            row = self._new(device, "ok", when, row)
        row.last_attempt = row.last_success = when
        row.stopped_at = None
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
        row.stopped_at = None
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
        """The collector is stopping: every device it has recorded is not being collected from now
        (``stopped_at``; its status stays what was last seen)."""
        when = when or self.now()
        for device, row in self._rows.items():
            row.stopped_at = when
            self._dirty.add(device)

    def status(self, device: str) -> HealthRow | None:
        return self._rows.get(device)

    def finding(self, kind: str, source: str, detail: str | None = None, *, data: dict[str, Any] | None = None,
                device: str | None = None, when: datetime | None = None, count: int = 1) -> None:
        """Count a finding of ``kind`` on ``source``; ``data`` holds the values its text is made from.
        (``detail``, a sentence, is kept as ``data["text"]`` for callers that still make one.)"""
        when = when or self.now()
        kind = kind_of(kind)
        data = dict(data or {})
        if detail is not None and "text" not in data:
            data["text"] = detail[:1000]
        self.findings_total[kind] = self.findings_total.get(kind, 0) + count
        key = (kind, source)
        f = self._findings.get(key)
        if f is None:
            log.warning("finding %s on %s: %s", kind, source, data.get("text", data))
            self._findings[key] = _Counted(kind, source, self.device_ids.get(device) if device else None,
                                           when, when, count, data)
        else:
            f.last_seen, f.count, f.data = when, f.count + count, data

    # -- Modbus --------------------------------------------------------------------------------------
    def watch_modbus(self, device) -> None:
        """Record every poll of a :class:`collectors.modbus.ModbusDevice` (its ``on_poll`` and
        ``on_failure`` hooks, called by its ``poll``) and what its checks find (``on_finding``: a
        bad clock, an impossible value)."""
        name = device.device.name

        def failed(exc: BaseException, clock) -> None:
            self.failure(name, f"{type(exc).__name__}: {exc}", clock.now())

        rows, dirty = self._rows, self._dirty

        def polled(readings: list, latency: float, when: datetime, bad: int) -> None:
            if not bad:
                row = rows.get(name)
                if row is not None and row.status == "ok" and row.stopped_at is None:
                    # the common case, ok and ok again: what success() would change (an ok row has no
                    # failures and no error: failure() makes a new row, away)
                    row.last_attempt = row.last_success = when
                    row.latency_ms = latency * 1000
                    dirty.add(name)
                else:
                    self.success(name, latency, when)
                return
            if bad == len(readings):
                self.failure(name, f"device answered but refused or returned no number for all {bad} values", when)
            else:
                self.success(name, latency, when)
            self.finding("device_error", name, data={"refused": bad, "values": len(readings)},
                         device=name, when=when, count=bad)

        findings, totals = self._findings, self.findings_total  # (emptied in place by _take)

        def found(kind: str, source: str, data: dict, when: datetime) -> None:
            f = findings.get((kind, source))  # (a kind's name finds its FindingKind: a StrEnum hashes as its str)
            if f is None:
                self.finding(kind, source, data=data, device=name, when=when)
            else:  # counted again (a clock never set: every poll), what finding() would change
                f.last_seen, f.count, f.data = when, f.count + 1, data
                totals[f.kind] += 1

        device.on_poll, device.on_failure, device.on_finding = polled, failed, found

    # -- writing ---------------------------------------------------------------------------------------
    def _take(self) -> tuple[list[HealthRow], list[_Counted]]:
        rows = [self._rows[d] for d in self._dirty if self.device_ids.get(d)]
        rows = [HealthRow(**vars(r)) for r in rows]
        found = list(self._findings.values())
        self._dirty.clear()
        self._findings.clear()
        return rows, found

    def _restore(self, rows: list[HealthRow], found: list[_Counted]) -> None:
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

    def _write(self, rows: list[HealthRow], found: list[_Counted]) -> bool:
        """One transaction on the recorder's connection (kept between writes: not a new server
        process every few seconds). A kept connection that fails (the server restarted meanwhile)
        is replaced and the write tried once more at once."""
        for _ in range(2):
            conn, fresh = self._conn, False
            try:
                if conn is None or conn.closed:
                    conn, fresh = self._connect(), True
                    self._conn = conn
                with conn.transaction():
                    upsert_health(conn, rows)
                    add_findings(conn, [f.finding() for f in found])
                return True
            except psycopg.Error as exc:
                log.debug("health not written (will retry): %s", exc)
                if conn is not None:
                    conn.close()
                self._conn = None
                if fresh or conn is None:
                    return False
        return False

    def close(self) -> None:
        """Close the recorder's connection (after its last :meth:`flush`)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

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
