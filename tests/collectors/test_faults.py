"""Faults injected for real: a private PostgreSQL cut and restarted, a private Mosquitto restarted,
the collector process killed with SIGKILL and stopped with SIGTERM, garbage from devices.

Never the shared servers: the database that goes away is a PrivateCluster of the test's own, the
broker that restarts is a ``mosquitto -p PORT`` of the test's own. The database cut lasts
``CUT_S`` seconds (the issue asks for 60; 12 keeps the suite fast and exercises the same path:
the spool fills, the backoff runs, the replay happens).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from ruamel.yaml import YAML

from collectors.clock import WallClock
from model.readings import Quality
from collectors.run import collect
from collectors.spool import decode
from model.site import SiteConfig
from store.cluster import PrivateCluster, find_pg_bin
from store.migrate import upgrade
from store.sites import apply_site
from tests.collectors.mqtt_helpers import HOST, PORT, PrivateBroker, Publisher, unique
from tests.conftest import free_port

CUT_S = float(os.environ.get("GREENGAUGE_TEST_DB_CUT_S", "12"))
needs_pg = pytest.mark.skipif(not find_pg_bin("initdb"), reason="PostgreSQL server programs not installed")
T0 = int(datetime(2025, 6, 21, tzinfo=timezone.utc).timestamp())


@pytest.fixture
def cluster():
    # reachable by the 'postgres' user when the tests run as root (see tests/store/test_cluster.py)
    d = tempfile.mkdtemp(prefix="gg-pg-")
    os.chmod(d, 0o755)
    c = PrivateCluster(Path(d) / "pg", free_port())
    c.start()
    with psycopg.connect(c.url) as conn:
        upgrade(conn)
    try:
        yield c
    finally:
        c.stop("immediate")
        subprocess.run(["rm", "-rf", d])


def site_dict(prefix: str, *, modbus_port: int | None = None, n_devices: int = 0, mqtt_port: int = PORT,
              client_id: str | None = None, poll_s: float = 0.5) -> dict:
    devices = [{"name": f"m{i}", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": modbus_port,
                "unit_id": i, "poll_interval_s": poll_s, "timeout_s": 2} for i in range(1, n_devices + 1)]
    return {
        "enterprise": {"code": "acme", "name": "Acme"},
        "site": {"code": "main", "name": "Main"},
        "devices": devices,
        "mqtt": {
            "host": HOST, "port": mqtt_port, "client_id": client_id or f"gg-fault-{uuid.uuid4().hex[:8]}",
            "reconnect_min_s": 1, "reconnect_max_s": 1,
            "devices": [{"name": "gw1", "points": [{"quantity": "energy_import"}, {"quantity": "active_power"}]}],
            "subscriptions": [{"topic": f"{prefix}/{{device}}", "timestamp": "ts",
                               "fields": {"energy_import": "e", "active_power": "p"}}],
        },
    }


def applied(url: str, site: SiteConfig) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        ids = apply_site(conn, site)
        return ids


def message(i: int) -> str:
    return json.dumps({"ts": T0 + i, "e": 1000 + i, "p": i})


def meter_image() -> list[int]:
    regs = [0] * 18  # clock 0 (never set): readings carry the collector's time, suspect
    regs[3] = 1234    # energy_import 1234 Wh
    regs[8:11] = [2300, 2301, 2302]
    return regs


async def wall_clock(function_code, start_address, address, count, registers, set_values):
    """A pymodbus action: the device clock (registers 0..1) set to the wall time, as a meter's is."""
    if start_address == 0 and len(registers) >= 2:
        seconds = int(time.time())
        registers[0:2] = [seconds >> 16, seconds & 0xFFFF]
    return None


async def until(predicate, timeout: float = 30.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return True
        await asyncio.sleep(step)
    return await asyncio.to_thread(predicate)


async def subscribed(source, pub: Publisher, prefix: str, timeout: float = 20.0) -> bool:
    """True once the collector's subscription is in place at the broker. ``wait_connected`` returns
    on the CONNACK and the SUBSCRIBE goes out after it (collectors/mqtt.py ``_on_connect``): a message
    published before the broker has the subscription is routed to no one (under load the first
    message of the database-cut test was lost so: 600 rows of 602). Probes on the subscription's
    topic level that no device uses (an unknown_topic finding, never a reading) until one arrives."""

    def arrived() -> bool:
        if source.received:
            return True
        pub.publish(f"{prefix}/subscription-probe", "{}")
        return False

    return await until(arrived, timeout=timeout, step=0.2)


def count(url: str, where: str = "TRUE") -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute(f"SELECT count(*) FROM reading WHERE {where}").fetchone()[0]
    except psycopg.OperationalError:
        return -1


@needs_pg
def test_database_cut_while_ten_devices_poll_and_mqtt_publishes(cluster, tmp_path):
    """Readings stored = readings produced, none twice, across a database outage of CUT_S seconds."""
    prefix = unique()
    mb_port = free_port()
    site = SiteConfig.model_validate(site_dict(prefix, modbus_port=mb_port, n_devices=10))
    ids = applied(cluster.url, site)
    produced: list = []
    pub = Publisher()
    published = []

    def publish_forever(stop: threading.Event):
        i = 0
        while not stop.is_set():
            published.append(pub.publish(f"{prefix}/gw1", message(i), wait=False))
            i += 1
            time.sleep(0.05)

    async def main():
        server = ModbusTcpServer([SimDevice(id=u, simdata=[SimData(0, values=meter_image(), datatype=DataType.REGISTERS)])
                                  for u in range(1, 11)], address=("127.0.0.1", mb_port))
        await server.serve_forever(background=True)
        stop = asyncio.Event()
        started = asyncio.Future()
        task = asyncio.create_task(collect(site, ids, cluster.url, WallClock(), stop, flush_interval_s=0.2,
                                           spool_dir=tmp_path / "spool", max_backoff_s=1.0,
                                           tap=produced.extend, on_start=started.set_result))
        parts = await started
        assert await parts.source.wait_connected(10)
        assert await subscribed(parts.source, pub, prefix)
        pub_stop = threading.Event()
        publisher = threading.Thread(target=publish_forever, args=(pub_stop,))
        publisher.start()
        try:
            await asyncio.sleep(2)
            await asyncio.to_thread(cluster.stop, "fast")  # the database goes away
            await asyncio.sleep(CUT_S)
            assert parts.writer.db_down and parts.writer.spooled > 0 and len(parts.writer.spool) > 0
            await asyncio.to_thread(cluster.start)  # and comes back
            assert await until(lambda: not parts.writer.db_down and not parts.writer.spool, timeout=20)
            await asyncio.sleep(1)
        finally:
            pub_stop.set()
            publisher.join()
            await asyncio.to_thread(pub.wait_all, published)
            # the broker holds every published message; wait until the collector has taken them all
            # (a fixed sleep lost the race under load: a message still at the broker is not lost, but
            # it would be counted here only after the next start)
            gw1 = {pid for name, pid in ids.items() if name.startswith("acme.main.gw1.")}
            await until(lambda: sum(r[0] in gw1 for r in produced) >= 2 * len(published), timeout=30)
            stop.set()
            writer = await task
            await server.shutdown()
        return writer

    writer = asyncio.run(main())
    pub.close()
    with psycopg.connect(cluster.url) as conn:
        stored = conn.execute("SELECT point_id, ts, value, quality FROM reading").fetchall()
        mqtt_rows = conn.execute(
            "SELECT count(*) FROM reading JOIN point USING (point_id) WHERE point.name LIKE 'acme.main.gw1.%'"
        ).fetchone()[0]
    expected = {(r[0], r[1]) for r in produced}  # (readings by position: the Modbus poll's are plain tuples)
    assert len(expected) == len(produced)  # every reading produced has its own (point, ts)
    assert {(p, ts) for p, ts, _, _ in stored} == expected
    assert len(stored) == len(produced)  # none lost, none twice
    assert mqtt_rows == 2 * len(published)  # every message published: both of its fields
    assert writer.spooled > 0 and writer.replayed == writer.spooled
    modbus_rows = len(stored) - mqtt_rows
    assert modbus_rows >= 10 * 9 * (CUT_S + 2)  # ten devices kept polling through the cut
    assert not list((tmp_path / "spool").glob("*.seg"))


def test_broker_restarted_while_messages_are_published_with_qos1_none_lost(db_url, conn):
    broker = PrivateBroker(free_port())
    broker.start()
    prefix = unique()
    site = SiteConfig.model_validate(site_dict(prefix, mqtt_port=broker.port))
    ids = applied(db_url, site)
    n = 300

    async def main():
        stop = asyncio.Event()
        started = asyncio.Future()
        task = asyncio.create_task(collect(site, ids, db_url, WallClock(), stop, flush_interval_s=0.1,
                                           on_start=started.set_result))
        parts = await started
        assert await parts.source.wait_connected(10)
        pub = await asyncio.to_thread(Publisher, HOST, broker.port)
        assert await subscribed(parts.source, pub, prefix)
        infos = []
        try:
            for i in range(n):
                infos.append(pub.publish(f"{prefix}/gw1", message(i), wait=False))
                if i == 100:
                    await asyncio.to_thread(broker.stop)  # the broker goes down mid-stream...
                if i == 150:
                    await asyncio.to_thread(broker.start)  # ...and comes back with its persisted sessions
                await asyncio.sleep(0.01)
            await asyncio.to_thread(pub.wait_all, infos)
            assert await until(lambda: count(db_url) == 2 * n, timeout=30)
        finally:
            pub.close()
            stop.set()
            await task

    try:
        asyncio.run(main())
    finally:
        broker.cleanup()
    rows = conn.execute("SELECT count(*), count(DISTINCT (point_id, ts)), min(value), max(value) FROM reading "
                        "JOIN point USING (point_id) WHERE quantity = 'active_power'").fetchone()
    assert rows == (n, n, 0.0, float(n - 1))


def spooled(spool: Path) -> int:
    """Readings in a spool another process is using (read-only: no Spool object, which would lock it),
    each (point, ts) once: a message the collector spooled but had not acknowledged yet when it was
    killed comes again from the broker (at least once, mqtt.py) and is spooled a second time; the
    ingest absorbs the copy (the database rows are counted exactly at the end)."""
    keys = set()
    for seg in spool.glob("*.seg"):
        try:
            keys.update((r.point_id, r.ts) for r in decode(seg.read_bytes()))
        except FileNotFoundError:
            pass
    return len(keys)


def _write_site(path: Path, data: dict) -> Path:
    YAML().dump(data, path)
    return path


def _collector(site_file: Path, url: str, spool: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "GREENGAUGE_DATABASE_URL": url, "GREENGAUGE_LOG_LEVEL": "INFO"}
    return subprocess.Popen([sys.executable, "-m", "greengauge", "collect", str(site_file), "--spool-dir", str(spool),
                             *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _mqtt_connected(proc: subprocess.Popen, lines: list[str]) -> bool:
    """Read the collector's log until it says it is connected to the broker."""
    for line in proc.stdout:
        lines.append(line)
        if "connected to MQTT broker" in line or "MQTT broker" in line and "back" in line:
            return True
    return False


def _reader(proc, lines):
    t = threading.Thread(target=lambda: [lines.append(x) for x in proc.stdout], daemon=True)
    t.start()
    return t


@needs_pg
def test_collector_killed_with_a_spool_then_restarted_replays_it_nothing_twice(cluster, tmp_path):
    prefix = unique()
    client_id = f"gg-kill-{uuid.uuid4().hex[:8]}"
    site_file = _write_site(tmp_path / "site.yaml", site_dict(prefix, client_id=client_id))
    spool = tmp_path / "spool"
    pub = Publisher()
    lines: list[str] = []
    a = _collector(site_file, cluster.url, spool, "--flush-interval", "0.2")
    try:
        assert _mqtt_connected(a, lines), "".join(lines)
        _reader(a, lines)
        time.sleep(0.3)
        for i in range(50):
            pub.publish(f"{prefix}/gw1", message(i))
        assert _wait_for(lambda: count(cluster.url) == 100), "".join(lines)
        cluster.stop("fast")  # the database goes away: the collector spools
        for i in range(50, 150):
            pub.publish(f"{prefix}/gw1", message(i))
        assert _wait_for(lambda: spooled(spool) == 200, timeout=20), "".join(lines)
    finally:
        a.send_signal(signal.SIGKILL)  # kill -9 with a spool on disk
        a.wait()
    assert len(list(spool.glob("*.seg"))) > 0
    for i in range(150, 200):  # published while the collector is dead: the broker keeps them
        pub.publish(f"{prefix}/gw1", message(i))
    lines_b: list[str] = []
    b = _collector(site_file, cluster.url, spool, "--flush-interval", "0.2")  # restarted, the database still away
    try:
        _reader(b, lines_b)
        assert _wait_for(lambda: spooled(spool) == 300, timeout=20), "".join(lines_b)
        cluster.start()  # the database returns: the spool is replayed, old and new
        assert _wait_for(lambda: count(cluster.url) == 400), "".join(lines_b)
        time.sleep(0.5)
    finally:
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=20) == 0, "".join(lines_b)
        pub.close()
    with psycopg.connect(cluster.url) as conn:
        rows = conn.execute("SELECT count(*), count(DISTINCT (point_id, ts)), min(value), max(value) FROM reading "
                            "JOIN point USING (point_id) WHERE quantity = 'active_power'").fetchone()
    assert rows == (200, 200, 0.0, 199.0)
    assert not list(spool.glob("*.seg"))
    assert any("replayed" in x for x in lines_b), "".join(lines_b)


def test_sigterm_flushes_what_is_queued(db_url, tmp_path):
    prefix = unique()
    data = site_dict(prefix)
    site_file = _write_site(tmp_path / "site.yaml", data)
    pub = Publisher()
    lines: list[str] = []
    proc = _collector(site_file, db_url, tmp_path / "spool", "--flush-interval", "600")  # never by time
    try:
        assert _mqtt_connected(proc, lines), "".join(lines)
        _reader(proc, lines)
        time.sleep(0.3)
        for i in range(30):
            pub.publish(f"{prefix}/gw1", message(i))
        time.sleep(1.0)  # received and queued, not yet written
        assert count(db_url) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        pub.close()
    assert code == 0, "".join(lines)
    assert count(db_url) == 60
    assert not list((tmp_path / "spool").glob("*.seg"))
    with psycopg.connect(db_url) as conn:  # `greengauge status`: not collected now, not "ok"
        assert conn.execute("SELECT d.name, h.status, h.stopped_at IS NOT NULL FROM device_health h "
                            "JOIN device d USING (device_id)").fetchall() == [("gw1", "ok", True)]

    # the acknowledgements went out before the session was closed: the broker redelivers nothing
    site = SiteConfig.model_validate(data)
    ids = applied(db_url, site)

    async def again():
        stop = asyncio.Event()
        started = asyncio.Future()
        task = asyncio.create_task(collect(site, ids, db_url, WallClock(), stop, on_start=started.set_result))
        parts = await started
        assert await parts.source.wait_connected(10)
        await asyncio.sleep(1.0)
        stop.set()
        await task
        return parts.source.received

    assert asyncio.run(again()) == 0


def test_devices_refusing_reads_are_stored_bad_reported_and_polling_goes_on(db_url, conn):
    port = free_port()
    site = SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [
            {"name": "good", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port, "unit_id": 1,
             "poll_interval_s": 0.3, "points": [{"quantity": "energy_import"}, {"quantity": "voltage_l1"}]},
            # unit 2 serves registers 0..1 only: every other read is refused (illegal address)
            {"name": "broken", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port, "unit_id": 2,
             "poll_interval_s": 0.3, "points": [{"quantity": "energy_import"}, {"quantity": "active_power"}]},
            {"name": "gone", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": free_port(),
             "unit_id": 1, "poll_interval_s": 0.3, "timeout_s": 0.5, "points": [{"quantity": "energy_import"}]},
        ],
    })
    ids = apply_site(conn, site)

    async def main():
        server = ModbusTcpServer([
            SimDevice(id=1, simdata=[SimData(0, values=meter_image(), datatype=DataType.REGISTERS)],
                      action=wall_clock),
            SimDevice(id=2, simdata=[SimData(0, count=2, values=0, datatype=DataType.REGISTERS)]),
        ], address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        stop = asyncio.Event()
        task = asyncio.create_task(collect(site, ids, db_url, WallClock(), stop, flush_interval_s=0.1,
                                           health_interval_s=0.2))
        await asyncio.sleep(2.0)
        stop.set()
        await task
        await server.shutdown()

    asyncio.run(main())
    by_device = dict(conn.execute(
        """SELECT d.name, array_agg(DISTINCT r.quality) FROM reading r JOIN point p USING (point_id)
           JOIN device d USING (device_id) GROUP BY d.name""").fetchall())
    assert by_device == {"good": [Quality.GOOD], "broken": [Quality.BAD]}
    n_broken = conn.execute("SELECT count(*) FROM reading r JOIN point p USING (point_id) "
                            "WHERE p.name LIKE 'acme.main.broken.%'").fetchone()[0]
    assert n_broken >= 2 * 4  # kept polling: several polls, each stored BAD
    health = {name: (status, fails, err) for name, status, fails, err in conn.execute(
        "SELECT d.name, h.status, h.consecutive_failures, h.last_error FROM device_health h JOIN device d USING (device_id)")}
    assert health["good"][:2] == ("ok", 0)
    assert health["broken"][0] == "away" and "refused" in health["broken"][2]
    assert health["gone"][0] == "away" and health["gone"][1] >= 2 and "connect" in health["gone"][2]
    kinds = dict(conn.execute("SELECT source, kind FROM collector_finding").fetchall())
    assert kinds == {"broken": "device_error"}


def test_nan_registers_are_stored_bad_never_as_numbers_and_polling_goes_on(db_url, conn):
    import struct

    port = free_port()
    site = SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": "sdm", "profile": "eastron-sdm630", "host": "127.0.0.1", "port": port,
                     "poll_interval_s": 0.3, "points": [{"quantity": "voltage_l1"}, {"quantity": "voltage_l2"},
                                                        {"quantity": "energy_import"}]}],
    })
    ids = apply_site(conn, site)

    def f32(x):
        return list(struct.unpack(">HH", struct.pack(">f", x)))

    inputs = [0] * 0x4C
    inputs[0:2] = f32(float("nan"))     # voltage_l1: NaN
    inputs[2:4] = f32(230.5)            # voltage_l2
    inputs[0x48:0x4A] = f32(12.5)       # energy_import 12.5 kWh

    async def main():
        sim = SimDevice(id=1, simdata=([SimData(0, values=False, datatype=DataType.BITS)],
                                       [SimData(0, values=False, datatype=DataType.BITS)],
                                       [SimData(0, values=[0], datatype=DataType.REGISTERS)],
                                       [SimData(0, values=inputs, datatype=DataType.REGISTERS)]))
        server = ModbusTcpServer([sim], address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        stop = asyncio.Event()
        task = asyncio.create_task(collect(site, ids, db_url, WallClock(), stop, flush_interval_s=0.1,
                                           health_interval_s=0.2))
        await asyncio.sleep(1.5)
        stop.set()
        await task
        await server.shutdown()

    asyncio.run(main())
    rows = {name: (n, values, quality) for name, n, values, quality in conn.execute(
        """SELECT p.quantity, count(*), array_agg(DISTINCT r.value), array_agg(DISTINCT r.quality)
           FROM reading r JOIN point p USING (point_id) GROUP BY p.quantity""")}
    assert rows["voltage_l1"][1:] == ([None], [Quality.BAD])  # NaN: no number stored
    assert rows["voltage_l2"][1:] == ([230.5], [Quality.GOOD])
    assert rows["energy_import"][1:] == ([12500.0], [Quality.GOOD])
    assert rows["voltage_l1"][0] >= 3  # several polls: the collector kept going
    assert conn.execute("SELECT kind, source, count >= 3 FROM collector_finding").fetchall() == [
        ("device_error", "sdm", True)]
