"""The batching writer: readings in, COPY batches out, flushed by size or by time.

Never lose, never double count:

- readings (``(point_id, ts, value, quality)`` rows: :class:`model.readings.Reading` objects, or
  the Modbus poll loop's plain tuples; read by position only) are written in batches with COPY (:func:`store.ingest.write_readings`), idempotent on
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

A spool segment that cannot be read back whole (a bad checksum, or a valid one around an impossible
field) is set aside in the spool's ``corrupt/`` folder by :class:`collectors.spool.Spool` and
reported through ``on_corrupt`` (a ``spool_corrupt`` finding in run.py counting its readings); the
replay goes on with the next segment, never stops.

A batch the database rejects for its content (a data or integrity error, e.g. a point deleted
meanwhile) is written row by row; rows still refused are logged at ERROR, appended to
``rejected.txt`` in the spool directory and reported through ``on_reject`` (a ``readings_rejected``
finding in run.py, counting them: ``greengauge status`` shows it), never retried forever.

Memory is bounded by ``max_queued`` (plus the batches in flight): beyond it, while the database is
away or slow, the oldest queued readings go to the spool at once, not waiting for the write in
flight. Only when there is no spool or it is full are they dropped: loudly (an ERROR at most every
10 s, the ``dropped`` counter, ``on_drop`` — a ``readings_dropped`` collector finding in run.py).
That is the only place a reading can be lost. A batch in flight (taken off the queue, being written
or spooled) is never dropped, and a submission that lost a reading is never reported durable: its
``on_lost`` is called instead, so the MQTT source leaves those messages unacknowledged.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from model.readings import ReadingRow
from collectors.spool import SetAside, Spool
from store.ingest import write_readings

log = logging.getLogger(__name__)

OnDurable = Callable[[], None]
OnLost = Callable[[], None]
#: the longest a last write at stop waits for the database before spooling instead [s]
CLOSE_TIMEOUT_S = 5.0


class WriteTimeout(psycopg.OperationalError):
    """The database took longer than ``write_timeout_s`` for one batch: treated as away."""


def _is_data_error(exc: BaseException) -> bool:
    return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError))


@dataclass
class _Ack:
    start: int  # absolute offsets [start, end) of the readings of one submission
    end: int
    on_durable: OnDurable
    on_lost: OnLost | None
    lost: bool = False  # a reading of it was dropped: on_durable is never called


@dataclass
class _Batch:
    readings: list[ReadingRow]
    ranges: list[tuple[int, int]]  # the absolute offsets it covers, in the order of ``readings``


class BatchingWriter:
    def __init__(self, connect: Callable[[], psycopg.Connection], *, spool: Spool | None = None,
                 batch_size: int = 5000, flush_interval_s: float = 1.0, min_backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, max_queued: int = 2_000_000, write_timeout_s: float = 60.0,
                 on_drop: Callable[[int, str], None] | None = None) -> None:
        self._connect = connect
        self.spool = spool
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_queued = max_queued
        self.write_timeout_s = write_timeout_s
        #: called with (count, detail) whenever readings are dropped (run.py records a finding)
        self.on_drop = on_drop
        #: called with each spool segment set aside as corrupt (run.py records a finding)
        self.on_corrupt: Callable[[SetAside], None] | None = None
        #: on_reject(count, detail): rows the database refused for their content, set aside (called
        #: on the event loop, once per batch that had any)
        self.on_reject: Callable[[int, str], None] | None = None
        self.set_aside = 0  # readings in spool segments set aside as corrupt
        # Every reading gets an absolute offset at submission. Readings not yet taken: chunks
        # [offset of the first, readings], oldest first. A batch taken off the queue (being written,
        # waiting for a retry, being spooled) is out of the queue, so nothing can drop it.
        self._queue: deque[list] = deque()
        self._queued = 0
        self._out = 0  # readings taken off the queue, neither durable nor dropped yet
        self._held: _Batch | None = None  # the writer's batch: written, else spooled, before any other
        self._acks: deque[_Ack] = deque()  # in submission order
        self._submitted_abs = 0  # readings ever submitted
        self._watermark = 0  # every reading below this offset is durable (or dropped)
        self._resolved: list[tuple[int, int]] = []  # heap of durable/dropped ranges above the watermark
        self._spool_lock = asyncio.Lock()  # the spool is not thread-safe: one user at a time
        self._overflow_task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._flush_all = False  # wake(): the next flush writes everything, not full batches only
        self._closing = False
        self._conn: psycopg.Connection | None = None
        self._backoff = min_backoff_s
        self._retry_at = 0.0  # monotonic time before which the database is not tried again
        self.db_down = False
        self._spool_full = False
        self._last_drop_log = -1e9
        self.written = 0  # rows new to the database
        self.spooled = 0  # readings written to the spool
        self.replayed = 0  # readings replayed from the spool (new or not)
        self.rejected = 0
        self.dropped = 0
        self.failed_batches = 0

    # -- the producer side (event loop) ---------------------------------------------------------
    def submit(self, readings: list[ReadingRow], on_durable: OnDurable | None = None,
               on_lost: OnLost | None = None) -> None:
        """Queue readings; ``on_durable`` once all of them are committed or spooled (and all submitted
        before them are durable or dropped), or ``on_lost`` instead, at once, if any of them is dropped."""
        start = self._submitted_abs
        n = len(readings)
        queued = self._queued
        if n:
            queue = self._queue
            # offsets run on without a gap, so a submission joins the newest chunk until that holds a
            # batch: a batch is then mostly one chunk taken whole, not one per submission
            batch_size = self.batch_size
            if queue and len(tail := queue[-1][1]) < batch_size and queue[-1][0] + len(tail) == start:
                tail += readings
            else:
                queue.append([start, list(readings)])
            self._queued = queued = queued + n
            self._submitted_abs = start + n
            if queued >= batch_size:
                self._wake.set()
            if queued > self.max_queued:
                self._overflow()
        if on_durable is not None:
            self._acks.append(_Ack(start, self._submitted_abs, on_durable, on_lost))
            if not readings:
                self._fire_acks()  # nothing of its own to wait for: durable once what came before is

    def wake(self) -> None:
        """Flush everything now rather than at the next interval (a source waiting for acknowledgements)."""
        self._flush_all = True
        self._wake.set()

    @property
    def submitted(self) -> int:
        """Readings ever submitted."""
        return self._submitted_abs

    @property
    def queued(self) -> int:
        """Readings in memory, neither durable nor dropped (queued or in flight)."""
        return self._queued + self._out

    @property
    def spooled_now(self) -> int:
        return len(self.spool) if self.spool is not None else 0

    # -- taking readings off the queue ------------------------------------------------------------
    def _take_front(self, n: int) -> _Batch:
        """Up to ``n`` of the oldest queued readings, off the queue (the caller resolves or puts them back)."""
        queue = self._queue
        out: list[ReadingRow] = []
        ranges: list[tuple[int, int]] = []
        while queue and len(out) < n:
            chunk = queue[0]
            first, rows = chunk
            k = min(n - len(out), len(rows))
            if k == len(rows):
                queue.popleft()
                if out:
                    out += rows
                else:
                    out = rows  # the chunk whole, as it is (it is off the queue: no one appends to it)
            else:
                out += rows[:k]
                chunk[0], chunk[1] = first + k, rows[k:]
            if ranges and ranges[-1][1] == first:  # offsets run on: one range
                ranges[-1] = (ranges[-1][0], first + k)
            else:
                ranges.append((first, first + k))
        self._queued -= len(out)
        self._out += len(out)
        return _Batch(out, ranges)

    def _put_back(self, batch: _Batch) -> None:
        """A batch taken but neither written nor spooled: to the front of the queue again."""
        pos = len(batch.readings)
        for first, end in reversed(batch.ranges):
            self._queue.appendleft([first, batch.readings[pos - (end - first):pos]])
            pos -= end - first
        self._queued += len(batch.readings)
        self._out -= len(batch.readings)

    def _resolve(self, batch: _Batch) -> None:
        """The batch is durable (or dropped): advance the watermark, fire the acknowledgements it completes."""
        self._out -= len(batch.readings)
        for r in batch.ranges:
            heapq.heappush(self._resolved, r)
        while self._resolved and self._resolved[0][0] <= self._watermark:
            self._watermark = max(self._watermark, heapq.heappop(self._resolved)[1])
        self._fire_acks()

    def _fire_acks(self) -> None:
        while self._acks and self._acks[0].end <= self._watermark:
            ack = self._acks.popleft()
            if ack.lost:
                continue  # its source was told at the drop
            try:
                ack.on_durable()
            except Exception:  # an acknowledgement failing must not stop the writer
                log.exception("acknowledging durable readings failed")

    def _overflow(self) -> None:
        """More than ``max_queued`` in memory: to the spool if there is room, else drop the oldest queued."""
        if self.spool is not None and not self._spool_full:
            if self._overflow_task is None or self._overflow_task.done():
                try:
                    self._overflow_task = asyncio.get_running_loop().create_task(self._spool_overflow())
                except RuntimeError:  # no event loop running: the next flush spools or writes them
                    pass
            return  # meanwhile the queue may exceed max_queued by what arrives during one fsync
        self._drop_oldest(self._queued - self.max_queued)

    async def _spool_overflow(self) -> None:
        assert self.spool is not None
        async with self._spool_lock:
            while self._queued > self.max_queued:
                batch = self._take_front(max(self.batch_size, self._queued - self.max_queued))
                if not await asyncio.to_thread(self.spool.append, batch.readings):
                    self._put_back(batch)
                    self._log_spool_full()
                    break
                self._spool_full = False
                self.spooled += len(batch.readings)
                self._resolve(batch)
        if self._queued > self.max_queued:
            self._drop_oldest(self._queued - self.max_queued)

    def _log_spool_full(self) -> None:
        assert self.spool is not None
        if not self._spool_full:
            log.error("spool %s is full (%d bytes): readings stay in memory (at most %d, then the oldest "
                      "are dropped)", self.spool.directory, self.spool.bytes, self.max_queued)
            self._spool_full = True

    def _drop_oldest(self, n: int) -> None:
        """The only place a reading is lost: never one in flight (those are off the queue), always loudly.

        Every submission that loses a reading is told (``on_lost``) and never acknowledged: the MQTT
        source forgets its messages unacknowledged, so the broker redelivers them.
        """
        if n <= 0:
            return
        batch = self._take_front(n)
        n = len(batch.readings)
        self.dropped += n
        why = ("the spool is full" if self.spool is not None else "there is no spool")
        detail = (f"{n} queued readings dropped ({self.dropped} so far): more than {self.max_queued} in memory, "
                  f"the database {'is away' if self.db_down else 'is slow'} and {why}")
        now = time.monotonic()
        if now - self._last_drop_log >= 10:
            log.error("%s", detail)
            self._last_drop_log = now
        for first, end in batch.ranges:
            for ack in self._acks:
                if ack.start >= end:
                    break
                if ack.end > first and ack.end > ack.start and not ack.lost:  # (one with no readings loses none)
                    ack.lost = True
                    if ack.on_lost is not None:
                        try:
                            ack.on_lost()
                        except Exception:
                            log.exception("reporting dropped readings failed")
        self._resolve(batch)
        if self.on_drop is not None:
            try:
                self.on_drop(n, detail)
            except Exception:
                log.exception("reporting dropped readings failed")

    # -- database side (worker thread) -----------------------------------------------------------
    def _write(self, batch: list[ReadingRow]) -> int:
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

    def _write_rows(self, batch: list[ReadingRow]) -> tuple[int, list[str]]:
        """A batch refused for its content: write it row by row, set aside the rows refused.
        Returns the rows written and why each refused one was (worker thread: reported by the caller)."""
        written = 0
        refused = []
        for r in batch:
            try:
                written += self._write([r])
            except psycopg.Error as exc:
                if not _is_data_error(exc):
                    raise
                self.rejected += 1
                pid, ts, value, quality = r
                why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                refused.append(f"point {pid} at {ts.isoformat()}: {why}")
                log.error("reading %s refused by the database, set aside: %s", (pid, ts, value, int(quality)), exc)
                if self.spool is not None:
                    with open(Path(self.spool.directory) / "rejected.txt", "a", encoding="utf-8") as f:
                        f.write(f"{pid}\t{ts.isoformat()}\t{value}\t{int(quality)}\t{exc}\n")
        return written, refused

    async def _write_batch(self, batch: list[ReadingRow]) -> int:
        try:
            return await self._bounded(self._write, batch)
        except psycopg.Error as exc:
            if not _is_data_error(exc):
                raise
            written, refused = await self._bounded(self._write_rows, batch)
            if refused and self.on_reject is not None:
                try:
                    self.on_reject(len(refused), refused[0] + (f" (and {len(refused) - 1} more)" if len(refused) > 1
                                                               else ""))
                except Exception:
                    log.exception("reporting rejected readings failed")
            return written

    async def _bounded(self, fn, batch: list[ReadingRow]) -> int:
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
            async with self._spool_lock:
                item = await asyncio.to_thread(self.spool.oldest)
            self._report_set_aside()
            if item is None:
                return
            seg, readings = item
            self.written += await self._write_batch(readings)
            self.replayed += len(readings)
            async with self._spool_lock:
                await asyncio.to_thread(self.spool.remove, seg)
            self._spool_full = False  # room again
            if not self.spool:
                log.info("spool replayed; %d readings from it", self.replayed)

    def _report_set_aside(self) -> None:
        """Segments the spool set aside as corrupt: counted and reported (their readings were acknowledged)."""
        assert self.spool is not None
        while self.spool.set_aside:
            item = self.spool.set_aside.pop(0)
            self.set_aside += item.readings
            if self.on_corrupt is not None:
                try:
                    self.on_corrupt(item)
                except Exception:
                    log.exception("reporting a corrupt spool segment failed")

    def _next_batch(self) -> _Batch | None:
        """The held batch (a failed write's), else the next off the queue; it stays held until resolved."""
        if self._held is None and self._queued:
            self._held = self._take_front(self.batch_size)
        return self._held

    async def _write_pending(self, whole: bool = True) -> None:
        """Write the held batch, then the queue: what is queued now (``whole``), then full batches
        only — what comes in during the writes waits for a batch of its own or the next whole
        flush, rather than going out at once in small batches, a transaction each."""
        due = self._queued if whole else 0
        while True:
            if self._held is None:
                if not self._queued or (due <= 0 and self._queued < self.batch_size):
                    return
                self._held = self._take_front(self.batch_size)
                due -= len(self._held.readings)
            batch = self._held
            self.written += await self._write_batch(batch.readings)
            self._held = None
            self._resolve(batch)

    async def _spool_pending(self) -> None:
        if self.spool is None:
            return
        async with self._spool_lock:
            while (batch := self._next_batch()) is not None:
                if not await asyncio.to_thread(self.spool.append, batch.readings):
                    self._log_spool_full()
                    return
                self._spool_full = False
                self.spooled += len(batch.readings)
                self._held = None
                self._resolve(batch)

    async def flush(self, *, force: bool = False, whole: bool = True) -> None:
        """Write the spool then the queue to the database; spool the queue when it fails.

        While the database is in backoff it is not tried (unless ``force``): queued readings go
        straight to the spool. Not ``whole``: only full batches are written, the rest waits for
        the next whole flush (at most ``flush_interval_s``) or for more readings to fill a batch.
        """
        if force or time.monotonic() >= self._retry_at:
            try:
                if self.spool is not None and self.spool:
                    await self._replay()
                await self._write_pending(whole)
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
        """Flush everything every ``flush_interval_s`` or when woken by :meth:`wake`, full batches as
        soon as a batch is queued, until :meth:`close`; then a last flush.

        A batch is a transaction (and a hop to the writer's thread) whatever its size: while
        readings come faster than one write takes, what came during a write waits until it fills a
        batch, instead of being written at once as a small one."""
        whole_at = time.monotonic() + self.flush_interval_s
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, whole_at - time.monotonic()))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            now = time.monotonic()
            whole = self._flush_all or now >= whole_at
            if whole:
                self._flush_all = False
                whole_at = now + self.flush_interval_s
            await self.flush(whole=whole)
        # stopping: one more try unless the database is known to be away, then the spool; bounded
        # by CLOSE_TIMEOUT_S, so a service manager's stop timeout is not spent waiting on it
        if self._overflow_task is not None:
            await self._overflow_task
        await self.flush(force=not self.db_down)
        if self.queued:
            log.error("stopping with %d readings neither written nor spooled (no spool, or spool full)",
                      self.queued)

    async def close(self) -> None:
        self._closing = True
        self._wake.set()

    def close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
