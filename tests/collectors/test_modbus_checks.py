"""Modbus readings pass the checks every source passes (model/readings.py, the functions the MQTT
parser calls too), on a real pymodbus server, collected by ``collect()`` into a real PostgreSQL:

- a negative energy counter, a value beyond ±2^53 or not finite after the unit conversion is BAD,
  without a value, with a finding naming the point;
- a device clock before 2000 (a clock never set) or more than 5 minutes ahead — a uint64 clock
  register far beyond any calendar included — is not trusted: the poll's time (when the value was
  read: the value stays GOOD), a finding at every poll;
  never an exception that stops the poll loop (it stopped the collector before).
"""

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest
from pymodbus.client import ModbusBaseClient as C
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.clock import WallClock
from collectors.modbus import ModbusDevice
from collectors.run import collect
from model.readings import MAX_ABS_VALUE, Quality, device_time, impossible_value
from model.site import SiteConfig
from store.sites import apply_site
from tests.collectors import named
from tests.conftest import free_port


def _regs(value, kind):
    return C.convert_to_registers(value, getattr(C.DATATYPE, kind.upper()), word_order="big")


@pytest.fixture
def test_profiles(extra_profiles):
    """Two meter models of the kind that exist, as profile files next to the shipped ones: one with
    signed and float energy registers and no clock, one with a 64-bit clock register."""
    extra_profiles("test-signed-meter",
                   "name: test-signed-meter\ntitle: t\nmanufacturer: t\nsource: a test\nregisters:\n"
                   "  - {quantity: energy_import, address: 0, type: int32, unit: Wh}\n"
                   "  - {quantity: energy_export, address: 2, type: float32, unit: kWh}\n"
                   "  - {quantity: active_power, address: 4, type: int32, unit: W}\n")
    extra_profiles("test-clock64-meter",
                   "name: test-clock64-meter\ntitle: t\nmanufacturer: t\nsource: a test\n"
                   "clock: {address: 0, type: uint64}\nregisters:\n"
                   "  - {quantity: energy_import, address: 4, type: uint32, unit: Wh}\n")


def _image(**at) -> list[int]:
    regs = [0] * 20
    for address, (value, kind) in at.items():
        r = _regs(value, kind)
        regs[int(address[1:]):int(address[1:]) + len(r)] = r
    return regs


async def _collect_until(site, ids, db_url, conn, servers, enough):
    """Serve ``servers`` (unit id -> registers) on the site's port, run ``collect()`` until
    ``enough()`` holds (or 20 s), stop it; return the writer."""
    port = site.devices[0].port
    server = ModbusTcpServer([SimDevice(id=u, simdata=[SimData(0, values=regs, datatype=DataType.REGISTERS)])
                              for u, regs in servers.items()], address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    stop = asyncio.Event()
    task = asyncio.create_task(collect(site, ids, db_url, WallClock(), stop, flush_interval_s=0.1,
                                       health_interval_s=0.2))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.1)
            conn.commit()
            if enough():
                break
        await asyncio.sleep(0.5)  # findings and health written
    finally:
        stop.set()
        try:
            return await task
        finally:
            await server.shutdown()


def _rows(conn):
    conn.commit()
    return conn.execute("SELECT p.name, r.ts, r.value, r.quality FROM reading r JOIN point p USING (point_id) "
                        "ORDER BY r.ts").fetchall()


def _findings(conn):
    conn.commit()
    return {(kind, source): (count, data) for kind, source, count, data in conn.execute(
        "SELECT kind, source, count, data FROM finding WHERE origin = 'collector'").fetchall()}


def test_impossible_values_are_bad_with_a_finding_as_on_the_mqtt_path(db_url, conn, test_profiles):
    port = free_port()
    site = SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": "m", "profile": "test-signed-meter", "host": "127.0.0.1", "port": port,
                     "poll_interval_s": 0.2}],
    })
    ids = apply_site(conn, site)
    image = _image(a0=(-5, "int32"),          # a negative energy counter
                   a2=(3e38, "float32"),      # 3e38 kWh: 3e41 Wh after the conversion, beyond 2^53
                   a4=(-4321, "int32"))       # negative power: a direction, not an error
    started = datetime.now(timezone.utc)
    writer = asyncio.run(_collect_until(site, ids, db_url, conn, {1: image}, lambda: len(_rows(conn)) >= 6))
    rows = _rows(conn)
    assert writer.written == len(rows) >= 6
    by_point: dict[str, set] = {}
    for name, ts, value, quality in rows:
        assert started <= ts <= datetime.now(timezone.utc)  # no clock: the poll's time
        by_point.setdefault(name, set()).add((value, quality))
    assert by_point == {
        "acme.main.m.energy_import": {(None, Quality.BAD)},
        "acme.main.m.energy_export": {(None, Quality.BAD)},
        "acme.main.m.active_power": {(-4321.0, Quality.GOOD)},
    }
    found = _findings(conn)
    count, data = found[("negative_counter", "m:energy_import")]
    assert count >= 2 and data == {"quantity": "energy_import", "value": "-5", "unit": "Wh"}
    count, data = found[("out_of_range", "m:energy_export")]
    assert count >= 2 and data["quantity"] == "energy_export" and float(data["value"]) > MAX_ABS_VALUE
    # the device answered: it is ok, two of its three values unusable (device_error counts them)
    assert conn.execute("SELECT status FROM device_health").fetchall() == [("ok",)]
    assert found[("device_error", "m")][1] == {"refused": 2, "values": 3}


def test_device_clocks_that_cannot_be_trusted_are_findings_not_a_crash(db_url, conn, test_profiles, caplog):
    # unit 1: a uint64 clock of garbage, far beyond any calendar (datetime.fromtimestamp raised and
    # stopped the collector); unit 2: a clock never set (0); unit 3: a uint32 clock at its top,
    # 2106; unit 4: a clock that is right
    port = free_port()
    base = {"host": "127.0.0.1", "port": port, "poll_interval_s": 0.2}
    site = SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [{**base, "name": "c64", "profile": "test-clock64-meter", "unit_id": 1},
                    {**base, "name": "unset", "profile": "generic-3ph-meter", "unit_id": 2,
                     "points": [{"quantity": "energy_import"}]},
                    {**base, "name": "ahead", "profile": "generic-3ph-meter", "unit_id": 3,
                     "points": [{"quantity": "energy_import"}]},
                    {**base, "name": "right", "profile": "generic-3ph-meter", "unit_id": 4,
                     "points": [{"quantity": "energy_import"}]}],
    })
    ids = apply_site(conn, site)
    right = int(time.time()) - 60
    servers = {1: _image(a0=(2 ** 64 - 1, "uint64"), a4=(1000, "uint32")),
               2: _image(a0=(0, "uint32"), a2=(2000, "uint32")),
               3: _image(a0=(2 ** 32 - 1, "uint32"), a2=(3000, "uint32")),
               4: _image(a0=(right, "uint32"), a2=(4000, "uint32"))}
    started = datetime.now(timezone.utc)

    def enough():  # each untrusted clock polled at least twice: the poll loop went on
        n = dict(conn.execute("SELECT p.name, count(*) FROM reading r JOIN point p USING (point_id) "
                              "GROUP BY p.name").fetchall())
        return all(n.get(f"acme.main.{d}.energy_import", 0) >= 2 for d in ("c64", "unset", "ahead"))

    with caplog.at_level(logging.ERROR):
        asyncio.run(_collect_until(site, ids, db_url, conn, servers, enough))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no poll failed
    ended = datetime.now(timezone.utc)
    rows: dict[str, list] = {}
    for name, ts, value, quality in _rows(conn):
        rows.setdefault(name.split(".")[2], []).append((ts, value, quality))
    for device, value in (("c64", 1000.0), ("unset", 2000.0), ("ahead", 3000.0)):
        assert len(rows[device]) >= 2
        for ts, v, quality in rows[device]:  # the value kept, at the poll's time: read then, good
            assert (v, quality) == (value, Quality.GOOD) and started <= ts <= ended
    # the right clock: its time, good, and one reading per device second (not measured anew since)
    assert rows["right"] == [(datetime.fromtimestamp(right, timezone.utc), 4000.0, Quality.GOOD)]
    found = _findings(conn)
    count, data = found[("future_timestamp", "c64")]
    assert count >= 2 and data["device_time"] == 2 ** 64 - 1 and data["ahead_s"] > 10 ** 18
    count, data = found[("past_timestamp", "unset")]
    assert count >= 2 and data == {"device_time": 0, "register": 0}
    count, data = found[("future_timestamp", "ahead")]
    assert count >= 2 and data["device_time"] == 2 ** 32 - 1 and data["ahead_s"] > 70 * 365 * 86400  # 2106
    assert not any(source == "right" for _, source in found)
    assert dict(conn.execute("SELECT d.name, h.status FROM device_health h JOIN device d USING (device_id)")
                .fetchall()) == {"c64": "ok", "unset": "ok", "ahead": "ok", "right": "ok"}


def test_a_poll_that_fails_unforeseen_is_logged_once_and_polling_goes_on(caplog):
    # a fault nobody foresaw in decoding (injected): the device's poll fails, the loop goes on
    port = free_port()
    site = SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": "m", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port,
                     "poll_interval_s": 0.05, "points": [{"quantity": "energy_import"}]}],
    })
    dev = ModbusDevice(site.devices[0], {"energy_import": 1})
    decode, calls, got = dev._decode, [], []

    def flaky(*args):
        calls.append(1)
        if len(calls) <= 3:
            raise ZeroDivisionError("injected")
        return decode(*args)

    dev._decode = flaky

    async def go():
        server = ModbusTcpServer([SimDevice(id=1, simdata=[SimData(0, values=_image(a2=(7, "uint32")),
                                                                   datatype=DataType.REGISTERS)])],
                                 address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        stop = asyncio.Event()

        def sink(readings):
            got.extend(named(readings))
            if len(got) >= 2:
                stop.set()
        try:
            await asyncio.wait_for(dev.run(WallClock(), sink, stop), 20)
        finally:
            await dev.close()
            await server.shutdown()

    with caplog.at_level(logging.INFO, logger="collectors.modbus"):
        asyncio.run(go())
    assert len(calls) >= 5 and [r.value for r in got] == [7.0, 7.0]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "ZeroDivisionError: injected" in errors[0].getMessage() and errors[0].exc_info
    assert any("polled again without a fault" in r.getMessage() for r in caplog.records)


# -- the shared checks themselves ----------------------------------------------------------------

NOW = datetime(2025, 6, 21, 4, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("given, expected", [
    (NOW - timedelta(days=3), (NOW - timedelta(days=3), None)),            # late, but a time: kept
    (NOW + timedelta(minutes=5), (NOW + timedelta(minutes=5), None)),      # exactly the tolerance
    (NOW + timedelta(minutes=5, seconds=1), (NOW, "future_timestamp")),
    (datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone.utc), (NOW, "past_timestamp")),
    (datetime(9999, 12, 31, tzinfo=timezone.utc), (NOW, "future_timestamp")),
    (NOW.timestamp(), (NOW, None)),                                        # seconds since 1970
    (0, (NOW, "past_timestamp")),                                          # a clock never set
    (-1, (NOW, "past_timestamp")),
    (2 ** 32 - 1, (NOW, "future_timestamp")),                              # uint32 at its top: 2106
    (2 ** 64 - 1, (NOW, "future_timestamp")),                              # beyond any calendar
    (float("inf"), (NOW, "future_timestamp")),
    (float("nan"), (NOW, "wrong_type")),
])
def test_device_time(given, expected):
    assert device_time(given, NOW) == expected


@pytest.mark.parametrize("value, quantity, kind", [
    (0.0, "energy_import", None),
    (2.0 ** 53, "energy_import", None),                   # the largest a double still counts in Wh
    (2.0 ** 53 + 2, "energy_import", "out_of_range"),
    (-0.5, "energy_import", "negative_counter"),
    (-1e20, "energy_import", "out_of_range"),              # beyond 2^53 first
    (-4321.0, "active_power", None),                       # a gauge may be negative
    (-2.0 ** 53 - 2, "active_power", "out_of_range"),
    (float("inf"), "active_power", "out_of_range"),
    (float("nan"), "voltage_l1", "out_of_range"),
    (-3.0, "gas_volume", "negative_counter"),              # every counter, not energy only
])
def test_impossible_value(value, quantity, kind):
    assert impossible_value(value, quantity) == kind

