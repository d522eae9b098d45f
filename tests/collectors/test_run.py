"""The quality gate every reading passes: future timestamps and counter steps above the rating."""

from datetime import datetime, timedelta, timezone

import pytest

from collectors.health import HealthRecorder
from model.readings import Quality, Reading
from collectors.run import QualityGate
from model.site import SiteConfig

NOW = datetime(2025, 6, 21, 4, 0, tzinfo=timezone.utc)


class Still:
    def now(self):
        return NOW

    async def sleep(self, s):
        pass


SITE = SiteConfig.model_validate({
    "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
    "devices": [{"name": "grid", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": 1502,
                 "points": [{"quantity": "energy_import", "rated_power_w": 3600_000},  # 3.6 MW: 1 kWh per second
                            {"quantity": "active_power"}]}],
})
IDS = {"acme.main.grid.energy_import": 1, "acme.main.grid.active_power": 2}


def gate():
    health = HealthRecorder(lambda: None, {})
    return QualityGate(SITE, IDS, Still(), health), health


@pytest.mark.parametrize("ahead, quality", [
    (timedelta(minutes=5), Quality.GOOD),                  # exactly 5 minutes ahead: trusted
    (timedelta(minutes=5, seconds=1), Quality.SUSPECT),    # beyond: not trusted
    (timedelta(days=3650), Quality.SUSPECT),               # a device clock years off
])
def test_a_timestamp_from_the_future_is_replaced_by_the_collectors_and_flagged(ahead, quality):
    g, health = gate()
    [r] = g.check([Reading(2, NOW + ahead, 100.0)])
    assert r.quality == quality and r.value == 100.0
    assert r.ts == (NOW + ahead if quality == Quality.GOOD else NOW)
    assert health.findings_total.get("future_timestamp", 0) == (quality == Quality.SUSPECT)


def test_a_bad_reading_from_the_future_stays_bad():
    g, _ = gate()
    assert g.check([Reading(2, NOW + timedelta(hours=1), None, Quality.BAD)]) == [Reading(2, NOW, None, Quality.BAD)]


def test_a_counter_step_above_the_rating_is_suspect_and_does_not_become_the_baseline():
    g, health = gate()
    t = NOW - timedelta(minutes=10)
    steps = [
        (0, 1_000_000.0, Quality.GOOD),
        (10, 1_010_000.0, Quality.GOOD),       # 10 kWh in 10 s: exactly the rating (+1 Wh resolution)
        (20, 1_020_002.0, Quality.SUSPECT),    # 10.002 kWh in 10 s: above it
        (30, 1_040_000.0, Quality.SUSPECT),    # a spike (judged against the last good reading, at 10 s)
        (40, 1_030_000.0, Quality.GOOD),       # back in line with the last good: 20 kWh in 30 s
        (50, 5.0, Quality.SUSPECT),            # a drop: a candidate reset, not yet confirmed
        (60, 15.0, Quality.GOOD),              # continues from it: the counter was reset (metrics/ handles it)
        (70, 25.0, Quality.GOOD),              # followed from the new level
    ]
    got = g.check([Reading(1, t + timedelta(seconds=s), v) for s, v, _ in steps])
    assert [r.quality for r in got] == [q for _, _, q in steps]
    assert health.findings_total["counter_spike"] == 2
    assert health.findings_total["suspect_drop"] == 1


@pytest.mark.parametrize("glitch", [0.0, 9e12], ids=["zero", "spike"])
def test_one_glitch_makes_one_suspect_reading(glitch):
    # a counter rising 100 Wh every 5 minutes, one reading of which is a glitch (a zero, or a spike)
    g, _ = gate()
    t = NOW - timedelta(days=1)
    values = [1_000_000.0 + 100 * i for i in range(288)]
    values[5] = glitch
    got = g.check([Reading(1, t + timedelta(minutes=5 * i), v) for i, v in enumerate(values)])
    assert [i for i, r in enumerate(got) if r.quality != Quality.GOOD] == [5]


def test_a_jump_is_followed_after_one_suspect_reading():
    # the counter really moved (a replaced meter starting high): suspect once, then followed
    g, _ = gate()
    t = NOW - timedelta(hours=1)
    values = [1000.0, 1100.0, 9_000_000.0, 9_000_100.0, 9_000_200.0]
    got = g.check([Reading(1, t + timedelta(minutes=5 * i), v) for i, v in enumerate(values)])
    assert [r.quality for r in got] == [Quality.GOOD, Quality.GOOD, Quality.SUSPECT, Quality.GOOD, Quality.GOOD]


def test_points_without_a_rating_are_not_judged():
    g, _ = gate()
    got = g.check([Reading(2, NOW - timedelta(seconds=s), v) for s, v in ((2, 0.0), (1, 1e12))])
    assert [r.quality for r in got] == [Quality.GOOD, Quality.GOOD]


class ManualClock:
    def __init__(self, now):
        self.t = now

    def now(self):
        return self.t

    async def sleep(self, s):
        pass


def test_a_counter_that_glitches_once_on_a_real_modbus_server_stores_one_suspect_reading(db_url, conn):
    """A day of 5-minute polls of a real pymodbus server whose energy counter reads 0 once."""
    import asyncio

    import psycopg
    from pymodbus.client import ModbusBaseClient as C
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    from collectors.run import build_devices
    from collectors.writer import BatchingWriter
    from store.sites import apply_site
    from tests.conftest import free_port

    port = free_port()
    site = SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": "grid", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port,
                     "points": [{"quantity": "energy_import", "rated_power_w": 100_000}]}],
    })
    ids = apply_site(conn, site)
    counter = {"wh": 0, "t": 0}

    async def serve(function_code, start_address, address, count, registers, set_values):
        regs = C.convert_to_registers(counter["wh"], C.DATATYPE.UINT32, word_order="big")
        registers[2 - start_address:4 - start_address] = regs  # energy_import
        # the device clock (0..1), set: a clock never set (0) would make every reading suspect
        registers[0 - start_address:2 - start_address] = C.convert_to_registers(
            counter["t"], C.DATATYPE.UINT32, word_order="big")
        return None

    async def run():
        server = ModbusTcpServer([SimDevice(id=1, simdata=[SimData(0, count=18, values=0, datatype=DataType.REGISTERS)],
                                            action=serve)], address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        clock = ManualClock(NOW - timedelta(days=1))
        health = HealthRecorder(lambda: None, {})
        g = QualityGate(site, ids, clock, health)
        writer = BatchingWriter(lambda: psycopg.connect(db_url))
        [dev] = build_devices(site, ids)
        try:
            for i in range(288):
                clock.t = NOW - timedelta(days=1) + timedelta(minutes=5 * i)
                counter["t"] = int(clock.t.timestamp())
                counter["wh"] = 0 if i == 100 else 5_000_000 + 700 * i  # 8.4 kW against a 100 kW rating
                writer.submit(g.check(await dev.poll(clock)))
            await writer.flush()
        finally:
            await dev.close()
            writer.close_connection()
            await server.shutdown()
        return health

    health = asyncio.run(run())
    rows = conn.execute("SELECT value, quality FROM reading ORDER BY ts").fetchall()
    assert len(rows) == 288
    assert [(i, v) for i, (v, q) in enumerate(rows) if q != Quality.GOOD] == [(100, 0.0)]  # the glitch only
    assert health.findings_total == {"suspect_drop": 1}


def _dead_site():
    from tests.conftest import free_port
    return SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": "grid", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": free_port(),
                     "poll_interval_s": 0.2, "timeout_s": 0.5, "points": [{"quantity": "energy_import"}]}],
    })


def _collect_until(site, ids, db_url, spool_dir, conn, query: str, *, linger_s: float = 0.0):
    """Run collect() on ``spool_dir`` until ``query`` counts something (at most 10 s), then ``linger_s``
    more; stop it and return its writer."""
    import asyncio

    from collectors.clock import WallClock
    from collectors.run import collect

    async def run():
        stop = asyncio.Event()
        task = asyncio.create_task(collect(site, ids, db_url, WallClock(), stop, spool_dir=spool_dir,
                                           flush_interval_s=0.1, health_interval_s=0.2))
        for _ in range(100):
            await asyncio.sleep(0.1)
            if conn.execute(query).fetchone()[0]:
                break
        await asyncio.sleep(linger_s)
        stop.set()
        return await task

    return asyncio.run(run())


def test_a_spool_segment_with_an_impossible_field_is_set_aside_as_a_finding_and_the_writer_goes_on(
        db_url, conn, tmp_path):
    from collectors.spool import Spool
    from store.sites import apply_site
    from tests.collectors.test_spool import segment_with_rows

    site = _dead_site()
    ids = apply_site(conn, site)
    pid = ids["acme.main.grid.energy_import"]
    us = 1_750_000_000_000_000
    # spooled before a restart: a segment whose checksum is right around a quality code 7, then a good one
    (tmp_path / "000000000001.seg").write_bytes(segment_with_rows([(pid, us, 1.0, 1, 0), (pid, us + 1, 2.0, 1, 7)]))
    spool = Spool(tmp_path)
    spool.append([Reading(pid, datetime(2025, 6, 21, tzinfo=timezone.utc), 5.0)])
    spool.close()

    writer = _collect_until(site, ids, db_url, tmp_path, conn, "SELECT count(*) FROM reading WHERE quality = 0",
                            linger_s=0.3)
    assert writer.set_aside == 2 and writer.replayed == 1
    assert conn.execute("SELECT value FROM reading WHERE quality = 0").fetchall() == [(5.0,)]
    assert (tmp_path / "corrupt" / "000000000001.seg").exists()
    [(source, count, data)] = conn.execute(
        "SELECT source, count, data FROM finding WHERE kind = 'spool_corrupt' AND origin = 'collector'").fetchall()
    assert source == str(tmp_path / "corrupt" / "000000000001.seg") and count == 2
    assert data["readings"] == 2 and data["reason"].startswith("row 1: quality 7")


def test_spooled_readings_the_database_refuses_are_a_finding_set_aside_and_the_writer_goes_on(
        db_url, conn, tmp_path):
    # spooled before a restart: a reading of a point that no longer exists (deleted meanwhile, or a
    # spool carried to the wrong database) beside a good one: the database refuses it at replay

    from collectors.spool import Spool
    from store.sites import apply_site

    site = _dead_site()
    ids = apply_site(conn, site)
    pid = ids["acme.main.grid.energy_import"]
    t = datetime(2025, 6, 21, tzinfo=timezone.utc)
    spool = Spool(tmp_path)
    spool.append([Reading(pid, t, 5.0), Reading(pid + 999, t, 6.0)])
    spool.close()

    writer = _collect_until(site, ids, db_url, tmp_path, conn,
                            "SELECT count(*) FROM finding WHERE kind = 'readings_rejected'")
    assert (writer.replayed, writer.rejected) == (2, 1)
    assert conn.execute("SELECT point_id, value FROM reading").fetchall() == [(pid, 5.0)]
    assert f"{pid + 999}\t" in (tmp_path / "rejected.txt").read_text()
    [(source, count, data)] = conn.execute(
        "SELECT source, count, data FROM finding WHERE kind = 'readings_rejected' AND origin = 'collector'").fetchall()
    assert (source, count, data["readings"], data["set_aside"]) == ("writer", 1, 1, str(tmp_path / "rejected.txt"))
    assert data["first"].startswith(f"point {pid + 999} at 2025-06-21T00:00:00+00:00: ")


def test_when_the_writer_task_dies_collect_raises_with_the_reason(db_url, conn, tmp_path):
    import asyncio

    from collectors.clock import WallClock
    from collectors.run import CollectorFailed, collect
    from store.sites import apply_site

    site = _dead_site()
    ids = apply_site(conn, site)

    def break_the_writer(parts):
        async def broken(**kw):
            raise RuntimeError("injected fault")
        parts.writer.flush = broken

    async def run():
        stop = asyncio.Event()
        await asyncio.wait_for(collect(site, ids, db_url, WallClock(), stop, spool_dir=tmp_path,
                                       flush_interval_s=0.1, on_start=break_the_writer), 20)

    with pytest.raises(CollectorFailed, match=r"the writer task stopped \(RuntimeError: injected fault\)"):
        asyncio.run(run())
    # its devices are not shown as being collected
    assert conn.execute("SELECT status, stopped_at IS NOT NULL FROM device_health").fetchall() == [("away", True)]
