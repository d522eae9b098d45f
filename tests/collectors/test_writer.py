"""The batching writer against a real PostgreSQL: batches, acknowledgements, spool while the database is away."""

import asyncio
from datetime import datetime, timedelta, timezone

import psycopg

from model.readings import Reading
from collectors.spool import Spool
from collectors.writer import BatchingWriter
from model.site import SiteConfig
from store.sites import apply_site
from tests.conftest import free_port

T0 = datetime(2025, 6, 21, tzinfo=timezone.utc)
SITE = SiteConfig.model_validate({
    "enterprise": {"code": "acme", "name": "Acme"},
    "site": {"code": "main", "name": "Main"},
    "devices": [{"name": "grid", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": 1502,
                 "points": [{"quantity": "energy_import"}]}],
})


def readings(pid, n, start=0):
    return [Reading(pid, T0 + timedelta(seconds=start + i), float(start + i)) for i in range(n)]


def test_batches_are_written_and_acknowledged_only_once_durable(db_url, conn):
    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    acked = []

    async def main():
        w = BatchingWriter(lambda: psycopg.connect(db_url), batch_size=100, flush_interval_s=0.05)
        task = asyncio.create_task(w.run())
        w.submit(readings(pid, 250), lambda: acked.append("a"))
        w.submit([], lambda: acked.append("empty"))  # nothing of its own: after what came before
        assert acked == []  # not before it is written
        await asyncio.sleep(0.5)
        assert acked == ["a", "empty"]
        w.submit(readings(pid, 250), lambda: acked.append("again"))  # the same rows again
        await w.close()
        await task
        w.close_connection()
        return w

    w = asyncio.run(main())
    assert acked == ["a", "empty", "again"]
    assert (w.written, w.submitted) == (250, 500)
    assert conn.execute("SELECT count(*), count(DISTINCT ts) FROM reading").fetchone() == (250, 250)


def test_while_the_database_is_away_batches_go_to_the_spool_and_are_replayed_in_order(db_url, conn, tmp_path):
    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    target = {"url": f"postgresql://127.0.0.1:{free_port()}/nothing"}  # nobody listens: the database is away
    acked = []

    async def main():
        w = BatchingWriter(lambda: psycopg.connect(target["url"], connect_timeout=2), spool=Spool(tmp_path),
                           batch_size=100, flush_interval_s=0.05, min_backoff_s=0.1, max_backoff_s=0.2)
        task = asyncio.create_task(w.run())
        for k in range(5):
            w.submit(readings(pid, 100, k * 100), lambda k=k: acked.append(k))
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        assert acked == [0, 1, 2, 3, 4]  # durable in the spool: acknowledged
        assert w.db_down and len(w.spool) == 5 and w.queued == 0
        target["url"] = db_url  # the database is back
        for _ in range(100):
            await asyncio.sleep(0.05)
            if not w.spool and not w.db_down:
                break
        await w.close()
        await task
        w.close_connection()
        return w

    w = asyncio.run(main())
    assert w.spooled == 500 and w.replayed == 500 and w.written == 500
    assert not list(tmp_path.glob("*.seg"))  # removed once replayed
    assert conn.execute("SELECT count(*), min(value), max(value) FROM reading").fetchone() == (500, 0.0, 499.0)


def test_closing_with_the_database_away_spools_everything(conn, tmp_path):
    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    url = f"postgresql://127.0.0.1:{free_port()}/nothing"

    async def main():
        w = BatchingWriter(lambda: psycopg.connect(url, connect_timeout=2), spool=Spool(tmp_path),
                           flush_interval_s=60)
        task = asyncio.create_task(w.run())
        w.submit(readings(pid, 42))
        await w.close()
        await task
        return w

    w = asyncio.run(main())
    w.spool.close()
    assert w.queued == 0 and w.spooled == 42
    assert list(Spool(tmp_path).readings()) == readings(pid, 42)


def test_rows_the_database_refuses_for_their_content_are_set_aside_not_retried_forever(db_url, conn, tmp_path):
    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    good = readings(pid, 10)
    orphan = [Reading(pid + 999, T0, 1.0)]  # no such point: a foreign-key violation

    async def main():
        w = BatchingWriter(lambda: psycopg.connect(db_url), spool=Spool(tmp_path), flush_interval_s=0.05)
        task = asyncio.create_task(w.run())
        w.submit(good[:5] + orphan + good[5:])
        await w.close()
        await task
        w.close_connection()
        return w

    w = asyncio.run(main())
    assert (w.written, w.rejected, w.spooled) == (10, 1, 0)
    assert "\t" in (tmp_path / "rejected.txt").read_text()
    assert conn.execute("SELECT count(*) FROM reading").fetchone() == (10,)


class FreezableProxy:
    """A TCP proxy in front of PostgreSQL that the test can freeze: connections stay open, nothing
    passes — a database that hangs rather than refuses."""

    def __init__(self, target: tuple[str, int]) -> None:
        import socket
        import threading

        self.target = target
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self.closed.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst) -> None:
        import time as _time

        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self.frozen.is_set() and not self.closed.is_set():
                    _time.sleep(0.02)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


def test_a_database_that_hangs_is_treated_as_away_after_the_write_timeout(db_url, conn, tmp_path):
    from psycopg.conninfo import conninfo_to_dict

    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    params = conninfo_to_dict(db_url)
    proxy = FreezableProxy((params.get("host", "127.0.0.1"), int(params.get("port", 5432))))
    via_proxy = {**params, "host": "127.0.0.1", "port": proxy.port}
    acked = []

    async def main():
        w = BatchingWriter(lambda: psycopg.connect(**via_proxy, connect_timeout=2), spool=Spool(tmp_path),
                           flush_interval_s=0.05, min_backoff_s=0.1, max_backoff_s=0.3, write_timeout_s=1.0)
        task = asyncio.create_task(w.run())
        w.submit(readings(pid, 100, 0), lambda: acked.append("a"))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if acked:
                break
        proxy.frozen.set()  # the database hangs
        w.submit(readings(pid, 100, 100), lambda: acked.append("b"))
        await asyncio.sleep(2.0)
        w.submit(readings(pid, 100, 200), lambda: acked.append("c"))
        await asyncio.sleep(1.0)
        assert w.db_down and acked == ["a", "b", "c"]  # b and c spooled, durable, acknowledged
        proxy.frozen.clear()  # it answers again
        for _ in range(200):
            await asyncio.sleep(0.05)
            if not w.spool and not w.db_down:
                break
        await w.close()
        await task
        w.close_connection()
        return w

    try:
        w = asyncio.run(main())
    finally:
        proxy.close()
    assert w.spooled == 200 and not w.spool
    conn.commit()
    assert conn.execute("SELECT count(*), count(DISTINCT ts), max(value) FROM reading").fetchone() == (300, 300, 299.0)


# -- a write in flight while more than max_queued arrive (the database slowed by a real lock) -------

async def lock_reading_for(db_url, seconds):
    """Another connection holds ACCESS EXCLUSIVE on ``reading``: the writer's INSERT waits for it."""
    locker = psycopg.connect(db_url)
    locker.execute("LOCK TABLE reading IN ACCESS EXCLUSIVE MODE")
    await asyncio.sleep(seconds)
    locker.rollback()
    locker.close()


def overflow_during_a_slow_write(db_url, pid, *, spool=None, on_drop=None):
    """batch_size 5, max_queued 6: readings 0-4 in flight for 0.5 s while 7 single readings (5-11)
    arrive; returns the writer and (acknowledged, lost) reading numbers."""
    acked, lost = [], []
    rows = readings(pid, 12)

    async def main():
        w = BatchingWriter(lambda: psycopg.connect(db_url), spool=spool, batch_size=5, max_queued=6,
                           flush_interval_s=0.05, on_drop=on_drop)
        task = asyncio.create_task(w.run())
        lock = asyncio.create_task(lock_reading_for(db_url, 0.5))
        await asyncio.sleep(0.05)  # the lock is held
        for i in range(5):
            w.submit([rows[i]], lambda i=i: acked.append(i), lambda i=i: lost.append(i))
        await asyncio.sleep(0.15)  # the batch 0-4 is in flight, waiting for the lock
        assert w.queued == 5 and acked == []
        for i in range(5, 12):
            w.submit([rows[i]], lambda i=i: acked.append(i), lambda i=i: lost.append(i))
            await asyncio.sleep(0.01)
        await lock
        for _ in range(100):
            await asyncio.sleep(0.05)
            if not w.queued and not (w.spool and len(w.spool)):
                break
        await w.close()
        await task
        w.close_connection()
        return w

    return asyncio.run(main()), acked, lost


def stored(conn):
    conn.commit()
    return sorted(int(v) for (v,) in conn.execute("SELECT value FROM reading").fetchall())


def test_a_write_in_flight_is_never_dropped_and_nothing_unstored_is_acknowledged(db_url, conn, caplog):
    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    drops = []
    w, acked, lost = overflow_during_a_slow_write(db_url, pid, on_drop=lambda n, detail: drops.append(n))
    # no spool: one reading over max_queued is dropped — the oldest *queued*, not one in flight
    assert w.dropped == 1 and drops == [1] and lost == [5]
    assert any(r.levelname == "ERROR" and "dropped" in r.getMessage() for r in caplog.records)
    in_db = stored(conn)
    assert in_db == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert acked == in_db  # acknowledged in order, each one stored; the lost one never acknowledged
    assert w.written == 11 and w.queued == 0


def test_overflow_goes_to_the_spool_not_dropped(db_url, conn, tmp_path):
    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    w, acked, lost = overflow_during_a_slow_write(db_url, pid, spool=Spool(tmp_path))
    assert w.dropped == 0 and lost == []
    assert w.spooled == 5 and w.replayed == 5 and not w.spool
    assert stored(conn) == list(range(12))
    assert acked == list(range(12))  # the spooled ones only after the batch before them committed


def test_overflow_with_a_full_spool_is_dropped_loudly_and_never_acknowledged(db_url, conn, tmp_path, caplog):
    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    drops = []
    w, acked, lost = overflow_during_a_slow_write(db_url, pid, spool=Spool(tmp_path, max_bytes=64),
                                                  on_drop=lambda n, detail: drops.append((n, detail)))
    assert w.dropped == 1 and lost == [5] and w.spooled == 0
    assert "spool is full" in drops[0][1]
    assert any(r.levelname == "ERROR" and "spool" in r.getMessage() and "full" in r.getMessage()
               for r in caplog.records)
    assert stored(conn) == acked == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]


def test_full_batches_go_out_at_once_the_rest_at_the_interval_or_when_woken(db_url, conn):
    # under load, what comes in during a write waits for a batch of its own (or the next whole flush)
    # rather than going out at once as a small batch: 250 readings, batches of 100, a long interval
    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    acked = []
    sizes = []

    async def main():
        w = BatchingWriter(lambda: psycopg.connect(db_url), batch_size=100, flush_interval_s=30)
        real = w._write

        def write(batch):
            sizes.append(len(batch))
            return real(batch)

        w._write = write
        task = asyncio.create_task(w.run())
        for k in range(25):  # a poll's worth at a time, as a source hands them over
            w.submit(readings(pid, 10, 10 * k), lambda k=k: acked.append(k))
        await asyncio.sleep(0.5)
        full = (list(sizes), w.queued, list(acked))
        w.wake()  # a source waiting for acknowledgements: everything now
        await asyncio.sleep(0.5)
        woken = (list(sizes), w.queued, list(acked))
        await w.close()
        await task
        w.close_connection()
        return full, woken

    full, woken = asyncio.run(main())
    assert full == ([100, 100], 50, list(range(20)))  # full batches only; the rest acknowledged later
    assert woken == ([100, 100, 50], 0, list(range(25)))
    assert stored(conn) == list(range(250))
