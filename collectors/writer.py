"""The batching writer: readings in, COPY batches out, flushed by size or by time.

A batch that cannot be written stays queued and is retried with backoff; readings are never
dropped. (Spooling to disk while the database is away, for restarts, is the collectors issue's
next step; see README "Collectors".)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from collectors.readings import Reading
from store.ingest import write_readings

log = logging.getLogger(__name__)


class BatchingWriter:
    def __init__(self, connect: Callable[[], psycopg.Connection], *, batch_size: int = 5000,
                 flush_interval_s: float = 1.0, max_backoff_s: float = 30.0) -> None:
        self._connect = connect
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_backoff_s = max_backoff_s
        self._pending: list[Reading] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._conn: psycopg.Connection | None = None
        self.written = 0  # rows new to the database
        self.submitted = 0
        self.failed_batches = 0

    def submit(self, readings: list[Reading]) -> None:
        self._pending.extend(readings)
        self.submitted += len(readings)
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._pending)

    def _write(self, batch: list[Reading]) -> int:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        try:
            return write_readings(self._conn, batch)
        except psycopg.OperationalError:
            self._conn.close()
            self._conn = None
            raise

    async def flush(self) -> None:
        """Write everything queued, in batches; raise if the database refuses."""
        while self._pending:
            batch = self._pending[: self.batch_size]
            self.written += await asyncio.to_thread(self._write, batch)
            del self._pending[: len(batch)]

    async def run(self) -> None:
        """Flush every ``flush_interval_s`` or when a batch is full, until :meth:`close`."""
        backoff = 0.5
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                backoff = 0.5
            except psycopg.Error as exc:
                self.failed_batches += 1
                log.error("writing %d queued readings failed, will retry in %.1f s: %s", self.queued, backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            if self._closing:
                return

    async def close(self) -> None:
        self._closing = True
        self._wake.set()

    def close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
