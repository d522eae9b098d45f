"""The batching writer: readings in, COPY batches out, flushed by size or by time.

Never lose, never double count:

- readings are written in batches with COPY (:func:`store.ingest.write_readings`), idempotent on
  (point, timestamp), one transaction per batch;
- when the database fails, queued batches go to the disk spool (:mod:`collectors.spool`) and the
  database is retried with exponential backoff; once it answers, the spool is replayed oldest
  first, each segment removed after its commit, before anything newer is written;
- :meth:`BatchingWriter.submit` takes an ``on_durable`` callback, called (in the event loop) once
  those readings are committed to the database or fsync'd to the spool: the MQTT source
  acknowledges messages to the broker there, so a ``kill -9`` loses nothing the broker was told
  was safe;
- :meth:`close` (SIGTERM) writes what is queued to the database, or to the spool if the database
  does not answer, then returns.

A batch the database rejects for its content (a data or integrity error, e.g. a point deleted
meanwhile) is written row by row; rows still refused are logged at ERROR and appended to
``rejected.txt`` in the spool directory, never retried forever.

Memory is bounded by ``max_queued``: when the spool is full or absent and the database is away,
the oldest readings beyond that are dropped with an ERROR naming their count (``dropped``); that
is the only place a reading can be lost, and it is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import psycopg

from collectors.readings import Reading
from collectors.spool import Spool
from store.ingest import write_readings

log = logging.getLogger(__name__)

OnDurable = Callable[[], None]
#: the longest a last write at stop waits for the database before spooling instead [s]
CLOSE_TIMEOUT_S = 5.0


class WriteTimeout(psycopg.OperationalError):
    """The database took longer than ``write_timeout_s`` for one batch: treated as away."""


def _is_data_error(exc: BaseException) -> bool:
    return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError))


class BatchingWriter:
    def __init__(self, connect: Callable[[], psycopg.Connection], *, spool: Spool | None = None,
                 batch_size: int = 5000, flush_interval_s: float = 1.0, min_backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, max_queued: int = 2_000_000, write_timeout_s: float = 60.0) -> None:
        self._connect = connect
        self.spool = spool
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_queued = max_queued
        self.write_timeout_s = write_timeout_s
        self._pending: list[Reading] = []
        # (absolute end offset of the readings it covers, callback), in submission order
        self._acks: deque[tuple[int, OnDurable]] = deque()
        self._submitted_abs = 0  # readings ever submitted
        self._taken_abs = 0  # readings ever taken off the queue (written, spooled or dropped)
        self._wake = asyncio.Event()
        self._closing = False
        self._conn: psycopg.Connection | None = None
        self._backoff = min_backoff_s
        self._retry_at = 0.0  # monotonic time before which the database is not tried again
        self.db_down = False
        self._spool_full = False
        self._last_drop_log = -1e9
        self.written = 0  # rows new to the database
        self.submitted = 0
        self.spooled = 0  # readings written to the spool
        self.replayed = 0  # readings replayed from the spool (new or not)
        self.rejected = 0
        self.dropped = 0
        self.failed_batches = 0

    # -- the producer side (event loop) ---------------------------------------------------------
    def submit(self, readings: list[Reading], on_durable: OnDurable | None = None) -> None:
        self._pending.extend(readings)
        self.submitted += len(readings)
        self._submitted_abs += len(readings)
        if on_durable is not None:
            self._acks.append((self._submitted_abs, on_durable))
            if not readings:
                self._fire_acks()  # nothing of its own to wait for: durable once what came before is
        if len(self._pending) >= self.batch_size:
            self._wake.set()
        if len(self._pending) > self.max_queued:
            self._drop_oldest(len(self._pending) - self.max_queued)

    def wake(self) -> None:
        """Flush now rather than at the next interval (a source waiting for acknowledgements)."""
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def spooled_now(self) -> int:
        return len(self.spool) if self.spool is not None else 0

    # -- taking readings off the queue ------------------------------------------------------------
    def _take(self, n: int) -> None:
        del self._pending[:n]
        self._taken_abs += n
        self._fire_acks()

    def _fire_acks(self) -> None:
        while self._acks and self._acks[0][0] <= self._taken_abs:
            _, cb = self._acks.popleft()
            try:
                cb()
            except Exception:  # an acknowledgement failing must not stop the writer
                log.exception("acknowledging durable readings failed")

    def _drop_oldest(self, n: int) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= 60:
            log.error("the database is away and the spool is full or absent: dropping the oldest queued readings "
                      "(%d so far)", self.dropped + n)
            self._last_drop_log = now
        self.dropped += n
        del self._pending[:n]
        self._taken_abs += n
        while self._acks and self._acks[0][0] <= self._taken_abs:
            self._acks.popleft()  # not acknowledged: a broker redelivers them

    # -- database side (worker thread) -----------------------------------------------------------
    def _write(self, batch: list[Reading]) -> int:
        conn = self._conn  # a local: a write abandoned after write_timeout_s must not touch its successor
        if conn is None or conn.closed:
            conn = self._conn = self._connect()
        try:
            return write_readings(conn, batch)
        except psycopg.Error as exc:
            if not _is_data_error(exc):
                conn.close()
                if self._conn is conn:
                    self._conn = None
            raise

    def _write_rows(self, batch: list[Reading]) -> int:
        """A batch refused for its content: write it row by row, set aside the rows refused."""
        written = 0
        for r in batch:
            try:
                written += self._write([r])
            except psycopg.Error as exc:
                if not _is_data_error(exc):
                    raise
                self.rejected += 1
                log.error("reading %s refused by the database, set aside: %s", r, exc)
                if self.spool is not None:
                    with open(Path(self.spool.directory) / "rejected.txt", "a", encoding="utf-8") as f:
                        f.write(f"{r.point_id}\t{r.ts.isoformat()}\t{r.value}\t{int(r.quality)}\t{exc}\n")
        return written

    async def _write_batch(self, batch: list[Reading]) -> int:
        try:
            return await self._bounded(self._write, batch)
        except psycopg.Error as exc:
            if not _is_data_error(exc):
                raise
            return await self._bounded(self._write_rows, batch)

    async def _bounded(self, fn, batch: list[Reading]) -> int:
        """Run a write in a thread; a database that does not answer within write_timeout_s is away.

        The thread cannot be stopped: it is left with its connection (if it commits after all, the
        batch also spooled is absorbed by the idempotent ingest) and the next write opens another.
        """
        fut = asyncio.get_running_loop().run_in_executor(None, fn, batch)
        timeout = min(self.write_timeout_s, CLOSE_TIMEOUT_S) if self._closing else self.write_timeout_s
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            self._conn = None
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # consume its late error
            raise WriteTimeout(f"no answer from the database within {timeout:g} s") from None

    async def _replay(self) -> None:
        assert self.spool is not None
        while True:
            item = await asyncio.to_thread(self.spool.oldest)
            if item is None:
                return
            seg, readings = item
            self.written += await self._write_batch(readings)
            self.replayed += len(readings)
            await asyncio.to_thread(self.spool.remove, seg)
            if not self.spool:
                log.info("spool replayed; %d readings from it", self.replayed)

    async def _write_pending(self) -> None:
        while self._pending:
            batch = self._pending[: self.batch_size]
            self.written += await self._write_batch(batch)
            self._take(len(batch))

    async def _spool_pending(self) -> None:
        if self.spool is None:
            return
        while self._pending:
            batch = self._pending[: self.batch_size]
            if not await asyncio.to_thread(self.spool.append, batch):
                if not self._spool_full:
                    log.error("spool %s is full (%d bytes): readings stay in memory (at most %d, then the oldest "
                              "are dropped)", self.spool.directory, self.spool.bytes, self.max_queued)
                    self._spool_full = True
                return
            self._spool_full = False
            self.spooled += len(batch)
            self._take(len(batch))

    async def flush(self, *, force: bool = False) -> None:
        """Write the spool then the queue to the database; spool the queue when it fails.

        While the database is in backoff it is not tried (unless ``force``): queued readings go
        straight to the spool.
        """
        if force or time.monotonic() >= self._retry_at:
            try:
                if self.spool is not None and self.spool:
                    await self._replay()
                await self._write_pending()
            except psycopg.Error as exc:
                self.failed_batches += 1
                if not self.db_down:
                    log.error("the database is away (%s); spooling to %s and retrying with backoff",
                              str(exc).strip() or type(exc).__name__,
                              self.spool.directory if self.spool is not None else "memory (no spool)")
                self.db_down = True
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, self.max_backoff_s)
            else:
                if self.db_down:
                    log.info("the database is back")
                self.db_down = False
                self._backoff = self.min_backoff_s
                self._retry_at = 0.0
                return
        await self._spool_pending()

    async def run(self) -> None:
        """Flush every ``flush_interval_s`` or when woken, until :meth:`close`; then a last flush."""
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            await self.flush()
        # stopping: one more try unless the database is known to be away, then the spool; bounded
        # by CLOSE_TIMEOUT_S, so a service manager's stop timeout is not spent waiting on it
        await self.flush(force=not self.db_down)
        if self._pending:
            log.error("stopping with %d readings neither written nor spooled (no spool, or spool full)",
                      len(self._pending))

    async def close(self) -> None:
        self._closing = True
        self._wake.set()

    def close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
