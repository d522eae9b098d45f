"""The collector against a real pymodbus server on loopback, writing into a real PostgreSQL."""

import asyncio
from datetime import datetime, timezone

import psycopg
from pymodbus.client import ModbusBaseClient as C
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.modbus import ModbusDevice
from model.readings import Quality
from collectors.run import build_devices
from collectors.writer import BatchingWriter
from model.site import SiteConfig
from store.sites import apply_site
from tests.conftest import free_port
from tests.collectors import named

DEVICE_TIME = datetime(2025, 6, 21, 4, 15, tzinfo=timezone.utc)


class FixedClock:
    """A clock standing still, for devices without a clock register."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def _regs(value, kind, word_order="big"):
    return C.convert_to_registers(value, getattr(C.DATATYPE, kind.upper()), word_order=word_order)


def meter_image() -> list[int]:
    """Registers 0..17 of the generic three-phase meter with known values."""
    regs = [0] * 18
    def put(addr, value, kind):
        r = _regs(value, kind)
        regs[addr:addr + len(r)] = r
    put(0, int(DEVICE_TIME.timestamp()), "uint32")
    put(2, 123_456_789, "uint32")   # energy_import [Wh]
    put(4, 4_000_000_001, "uint32")  # energy_export [Wh], above 2**31: unsigned decoding
    put(6, -4321, "int32")           # active_power [W], exporting
    put(8, 2314, "uint16")           # voltage_l1 231.4 V
    put(9, 2299, "uint16")           # voltage_l2 229.9 V
    put(10, 6000, "uint16")          # voltage_l3 600.0 V: above the profile's plausible 500 V
    put(11, 12_345, "uint32")        # current_l1 12.345 A
    put(13, 0, "uint32")
    put(15, 1, "uint32")             # 0.001 A
    return regs


def site_for(port: int) -> SiteConfig:
    return SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"},
        "site": {"code": "main", "name": "Main"},
        "devices": [
            {"name": "grid", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port, "unit_id": 1},
            {"name": "broken", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port, "unit_id": 2,
             "points": [{"quantity": "energy_import"}, {"quantity": "active_power"}]},
        ],
    })


async def _serve_and_collect(site: SiteConfig, ids: dict[str, int], url: str, port: int):
    devices = [
        SimDevice(id=1, simdata=[SimData(0, values=meter_image(), datatype=DataType.REGISTERS)]),
        # unit 2 only has registers 0..1: the collector's reads of 0..3 and 6..7 are refused (illegal address)
        SimDevice(id=2, simdata=[SimData(0, count=2, values=0, datatype=DataType.REGISTERS)]),
    ]
    server = ModbusTcpServer(devices, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    try:
        writer = BatchingWriter(lambda: psycopg.connect(url))
        clock = FixedClock(datetime(2025, 6, 21, 4, 16, 30, tzinfo=timezone.utc))
        for dev in build_devices(site, ids):
            writer.submit(await dev.poll(clock))
            await dev.close()
        await writer.flush()
        writer.close_connection()
        return writer
    finally:
        await server.shutdown()


def test_collector_stores_exactly_the_values_served(db_url, conn):
    port = free_port()
    site = site_for(port)
    ids = apply_site(conn, site)
    writer = asyncio.run(_serve_and_collect(site, ids, db_url, port))
    assert writer.written == 9 + 2
    rows = {
        name: (ts, value, quality)
        for name, ts, value, quality in conn.execute(
            "SELECT p.name, r.ts, r.value, r.quality FROM reading r JOIN point p USING (point_id)")
    }
    good = Quality.GOOD
    assert rows["acme.main.grid.energy_import"] == (DEVICE_TIME, 123_456_789.0, good)
    assert rows["acme.main.grid.energy_export"] == (DEVICE_TIME, 4_000_000_001.0, good)
    assert rows["acme.main.grid.active_power"] == (DEVICE_TIME, -4321.0, good)
    assert rows["acme.main.grid.voltage_l1"] == (DEVICE_TIME, 231.4, good)
    assert rows["acme.main.grid.voltage_l2"] == (DEVICE_TIME, 229.9, good)
    assert rows["acme.main.grid.voltage_l3"] == (DEVICE_TIME, 600.0, Quality.SUSPECT)
    assert rows["acme.main.grid.current_l1"] == (DEVICE_TIME, 12.345, good)
    assert rows["acme.main.grid.current_l3"] == (DEVICE_TIME, 0.001, good)
    # the refused device: its points are stored BAD, without a value, at the collector's time
    collector_time = datetime(2025, 6, 21, 4, 16, 30, tzinfo=timezone.utc)
    assert rows["acme.main.broken.energy_import"] == (collector_time, None, Quality.BAD)
    assert rows["acme.main.broken.active_power"] == (collector_time, None, Quality.BAD)


def test_a_device_that_is_not_there_raises_at_the_boundary():
    site = site_for(free_port())
    dev = ModbusDevice(site.devices[0], {"energy_import": 1})

    async def poll():
        try:
            await dev.poll(FixedClock(DEVICE_TIME))
        finally:
            await dev.close()

    try:
        asyncio.run(poll())
    except (OSError, Exception) as exc:  # ConnectionError from our provider
        assert "cannot connect" in str(exc)
    else:
        raise AssertionError("polling a port nobody listens on must fail")


# --- power sign: one convention per role (docs/devices.md "Power sign") -------------------------

def test_power_is_stored_with_the_sign_of_the_devices_role(db_url, conn):
    # the same meter image (active power -4321 W: energy_export counting up) behind each role,
    # served on unit ids 1-5
    port = free_port()
    base = {"profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port}
    site = SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [
            {**base, "unit_id": 1, "name": "grid", "points": [{"quantity": "energy_import", "role": "grid_import"},
                                                {"quantity": "energy_export", "role": "grid_export"},
                                                {"quantity": "active_power"}]},
            {**base, "unit_id": 2, "name": "pv", "points": [{"quantity": "energy_export", "role": "pv_generation"},
                                              {"quantity": "active_power"}]},
            {**base, "unit_id": 3, "name": "pv-reversed", "points": [{"quantity": "energy_import", "role": "pv_generation"},
                                                       {"quantity": "active_power"}]},
            {**base, "unit_id": 4, "name": "battery", "points": [{"quantity": "energy_import", "role": "storage_charge"},
                                                   {"quantity": "energy_export", "role": "storage_discharge"},
                                                   {"quantity": "active_power"}]},
            {**base, "unit_id": 5, "name": "line", "points": [{"quantity": "energy_import"}, {"quantity": "active_power"}]},
        ],
    })
    ids = apply_site(conn, site)

    async def go():
        server = ModbusTcpServer([SimDevice(id=u, simdata=[SimData(0, values=meter_image(), datatype=DataType.REGISTERS)])
                                  for u in range(1, 6)], address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        try:
            writer = BatchingWriter(lambda: psycopg.connect(db_url))
            clock = FixedClock(datetime(2025, 6, 21, 4, 16, 30, tzinfo=timezone.utc))
            for dev in build_devices(site, ids):
                writer.submit(await dev.poll(clock))
                await dev.close()
            await writer.flush()
            writer.close_connection()
        finally:
            await server.shutdown()

    asyncio.run(go())
    power = dict(conn.execute("SELECT p.name, r.value FROM reading r JOIN point p USING (point_id) "
                              "WHERE p.quantity = 'active_power'").fetchall())
    assert power["acme.main.grid.active_power"] == -4321.0         # grid: + import, so exporting is negative
    assert power["acme.main.pv.active_power"] == 4321.0            # PV: + generation (its export counts up)
    assert power["acme.main.pv-reversed.active_power"] == -4321.0  # a PV meter counting generation as import
    assert power["acme.main.battery.active_power"] == 4321.0       # battery: + discharge
    assert power["acme.main.line.active_power"] == -4321.0         # no role: + import (consumption)


def test_a_profile_register_with_sign_minus_one_and_a_role(extra_profiles):
    # an inverter profile whose power register is positive on generation (what it exports)
    extra_profiles("test-inverter",
                   "name: test-inverter\ntitle: t\nmanufacturer: t\nsource: a test\nregisters:\n"
                   "  - {quantity: energy_export, address: 2, type: uint32, unit: Wh}\n"
                   "  - {quantity: active_power, address: 6, type: int32, unit: W, sign: -1, min: -1000, max: 60000}\n")
    port = free_port()
    image = meter_image()
    image[6:8] = _regs(5000, "int32")  # generating 5 kW, the inverter's own sign
    site = SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": "inv", "profile": "test-inverter", "host": "127.0.0.1", "port": port,
                     "points": [{"quantity": "active_power"}]},
                    {"name": "pv", "profile": "test-inverter", "host": "127.0.0.1", "port": port, "unit_id": 2,
                     "points": [{"quantity": "energy_export", "role": "pv_generation"},
                                {"quantity": "active_power"}]}],
    })

    async def go():
        server = ModbusTcpServer([SimDevice(id=u, simdata=[SimData(0, values=image, datatype=DataType.REGISTERS)])
                                  for u in (1, 2)], address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        try:
            out = []
            for dev in build_devices(site, {"acme.main.inv.active_power": 1, "acme.main.pv.energy_export": 2,
                                            "acme.main.pv.active_power": 3}):
                out += named(await dev.poll(FixedClock(DEVICE_TIME)))
                await dev.close()
            return {r.point_id: r for r in out}
        finally:
            await server.shutdown()

    got = asyncio.run(go())
    assert (got[1].value, got[1].quality) == (-5000.0, Quality.GOOD)  # no role: + import, so -5 kW
    assert (got[3].value, got[3].quality) == (5000.0, Quality.GOOD)   # role pv_generation: + generation


def test_the_plausible_range_follows_the_sign():
    from collectors.modbus import _scaled_range
    from decimal import Decimal

    assert _scaled_range(-1000, 60000, Decimal(-1)) == (-60000.0, 1000.0)
    assert _scaled_range(None, 500, Decimal(-2)) == (-1000.0, None)
    assert _scaled_range(0, 500, Decimal(100)) == (0.0, 50000.0)


# --- the poll loop's precompiled decoding equals the profile's reference decoding ------------------

from decimal import Decimal  # noqa: E402

import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from collectors.transport import DeviceRefused  # noqa: E402
from model.profile import ReadBlock, decode_raw, known_profiles, load_profile, registers_for, to_canonical  # noqa: E402
from model.readings import impossible_value  # noqa: E402
from model.site import DeviceConfig  # noqa: E402


def _reference(dev: ModbusDevice, blocks: dict) -> dict[str, tuple]:
    """What the profile's own functions and the checks of every source give for these blocks:
    (value, quality) per quantity."""
    out = {}
    for spec in dev.specs:
        regs = registers_for(spec, blocks)
        value = None if regs is None else to_canonical(spec, decode_raw(spec, regs), dev.ratios[spec.quantity])
        lo, hi = dev._limits[spec.quantity]
        if value is None or impossible_value(value, spec.quantity) is not None:
            out[spec.quantity] = (None, Quality.BAD)
        elif (lo is not None and value < lo) or (hi is not None and value > hi):
            out[spec.quantity] = (value, Quality.SUSPECT)
        else:
            out[spec.quantity] = (value, Quality.GOOD)
    return out


@pytest.mark.parametrize("name", known_profiles())
@pytest.mark.parametrize("word_order", ["big", "little"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_compiled_decoding_equals_the_reference(name, word_order, data):
    # any register image, any block refused, with CT/PT ratios and a power-sign role: the poll
    # loop's plan gives exactly what registers_for/decode_raw/to_canonical and the range give
    profile = load_profile(name)
    ratios = {"ct_ratio": Decimal(40), "pt_ratio": Decimal(100)} if profile.uses_ct_pt else {}
    role = data.draw(st.sampled_from([None, ("energy_export", "pv_generation"), ("energy_import", "grid_import")]))
    points = [{"quantity": r.quantity, **({"role": role[1]} if role and role[0] == r.quantity else {})}
              for r in profile.registers]
    device = DeviceConfig(name="m", profile=name, host="127.0.0.1", points=points, **ratios)
    dev = ModbusDevice(device, {p["quantity"]: i for i, p in enumerate(points)})
    if word_order == "little":  # the same map with the other word order, as some meters have
        dev.specs = [s.model_copy(update={"word_order": "little"}) for s in dev.specs]
        by_quantity = {s.quantity: s for s in dev.specs}
        dev._plan = [dev._compile(by_quantity[q], pid) for q, pid in dev.point_ids.items()]
    blocks = {b: None if data.draw(st.integers(0, 5), label=f"refused {b}") == 0
              else data.draw(st.lists(st.integers(0, 0xFFFF), min_size=b.count, max_size=b.count)) for b in dev.blocks}

    class Registers:  # the registers as read (reading them over TCP is tested above); None: refused
        async def read(self, function, address, count, unit_id):
            regs = blocks[ReadBlock(function, address, count)]
            if regs is None:
                raise DeviceRefused("illegal data address")
            return regs

    dev.conn = Registers()
    dev._clock = None
    readings = named(asyncio.run(dev.poll(FixedClock(DEVICE_TIME))))
    got = {q: (r.value, r.quality) for q, pid in dev.point_ids.items() for r in readings if r.point_id == pid}
    assert got == _reference(dev, blocks)


def test_a_short_answer_gives_bad_readings_not_a_crash():
    # a gateway answering fewer registers than asked: its values are BAD, the poll goes on
    site = site_for(free_port())
    dev = ModbusDevice(site.devices[0], {"energy_import": 1, "active_power": 2})

    class Short:
        async def read(self, function, address, count, unit_id):
            return meter_image()[address:address + count - 1]

    dev.conn = Short()
    readings = named(asyncio.run(dev.poll(FixedClock(DEVICE_TIME))))
    assert [(r.value, r.quality) for r in readings] == [(None, Quality.BAD), (None, Quality.BAD)]
