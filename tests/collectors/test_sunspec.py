"""SunSpec discovery and decoding against the SunSpec simulator served by a real pymodbus server."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timezone

import pytest
from pymodbus.client import ModbusBaseClient as C
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors import sunspec
from collectors.modbus import ModbusDevice
from model.readings import Quality
from collectors.sunspec_sim import SimulatedSunSpec, build_image, demo_inverter, demo_meter, serve
from collectors.transport import ConnectionPool, Endpoint
from model.site import DeviceConfig
from tests.conftest import free_port
from tests.collectors import named

NOW = datetime(2025, 6, 21, 4, 16, 30, tzinfo=timezone.utc)


class FixedClock:
    def now(self) -> datetime:
        return NOW


def run(coro):
    return asyncio.run(coro)


async def scan_unit(port: int, unit: int):
    pool = ConnectionPool()
    conn = pool.acquire(Endpoint("tcp", "127.0.0.1", port))
    try:
        return await sunspec.scan(lambda a, n: conn.read("holding", a, n, unit))
    finally:
        pool.release(conn)


@pytest.mark.parametrize("base", [40000, 0, 50000])
def test_scan_finds_the_models_of_an_inverter_battery_and_meter(base):
    port = free_port()

    async def go():
        server = await serve([demo_inverter(1, base=base), demo_meter(2, base=base)], port=port)
        try:
            return await scan_unit(port, 1), await scan_unit(port, 2), await scan_unit(port, 3)
        finally:
            await server.shutdown()

    inverter, meter, nobody = run(go())
    assert inverter.base == base
    assert inverter.model_ids == [1, 103, 120, 124, 701, 702, 713, 802]
    assert meter.model_ids == [1, 203]
    assert nobody is None  # unit 3 does not exist: no crash, just nothing found
    common = inverter.decoded(1)
    assert (common["Mn"], common["Md"], common["SN"]) == ("GreenGauge", "SIM-HYB-50K", "GG-INV-0001")
    q = inverter.quantities()
    assert q["capacity_w"] == 50_000.0           # 120 WRtg 500 x 10^2
    assert q["storage_capacity_wh"] == 100_000.0  # 120 WHRtg
    assert q["state_of_charge"] == pytest.approx(56.7)
    assert q["state_of_health"] == 98.0
    assert q["active_power"] == -12_300.0         # injecting: negative in our convention
    assert q["energy_export"] == 123_456_789.0    # 103 WH, lifetime production
    assert q["energy_import"] == 2_345_678.0      # 701 TotWhAbs (103 has none)
    assert q["frequency"] == pytest.approx(50.01)
    assert q["power_factor"] == pytest.approx(0.995)
    m = meter.quantities()
    assert (m["energy_import"], m["energy_export"], m["active_power"]) == (987_654_321.0, 12_345_678.0, 30_500.0)
    assert m["voltage_l2"] == pytest.approx(230.2)
    assert m["current_l3"] == pytest.approx(44.0)


# --- sentinels: not implemented is no value, never a number ---------------------------------------

def _point(type_, size=None):
    return sunspec.Point(name="x", offset=0, type=type_, size=size)


@pytest.mark.parametrize("type_, regs", [
    ("int16", [0x8000]),
    ("uint16", [0xFFFF]),
    ("enum16", [0xFFFF]),
    ("bitfield16", [0xFFFF]),
    ("sunssf", [0x8000]),
    ("acc16", [0]),
    ("int32", [0x8000, 0x0000]),
    ("uint32", [0xFFFF, 0xFFFF]),
    ("acc32", [0, 0]),                       # an accumulator at 0 has not accumulated
    ("bitfield32", [0xFFFF, 0xFFFF]),
    ("int64", [0x8000, 0, 0, 0]),
    ("uint64", [0xFFFF] * 4),
    ("acc64", [0, 0, 0, 0]),
    ("float32", [0x7FC0, 0x0000]),           # quiet NaN
    ("float32", [0xFFC0, 0x0001]),           # another NaN pattern
    ("float32", [0x7F80, 0x0000]),           # +inf is no measurement either
])
def test_not_implemented_sentinels_decode_to_none(type_, regs):
    assert sunspec.decode_raw(_point(type_), regs) is None


def test_an_all_zero_string_is_none():
    assert sunspec.decode_raw(_point("string", 4), [0, 0, 0, 0]) is None


@pytest.mark.parametrize("type_, regs, value", [
    ("int16", [0x7FFF], 32767),
    ("int16", [0xFFFE], -2),
    ("uint16", [0xFFFE], 65534),
    ("acc32", [0x0001, 0x0000], 65536),
    ("int32", [0xFFFF, 0xFFFF], -1),
    ("uint64", [0, 0, 1, 0], 65536),
])
def test_values_next_to_the_sentinels_are_numbers(type_, regs, value):
    assert sunspec.decode_raw(_point(type_), regs) == value


def test_scale_factor_not_implemented_makes_the_value_none():
    model = sunspec.models()[103]
    chain = [(103, {"W": 1200, "W_SF": None, "Hz_SF": -2, "Hz": 50.0})]
    data = build_image(chain)[4:4 + model.length]
    values = sunspec.decode_model(model, data)
    assert values["W"] is None            # W has a value but its scale factor is 0x8000
    assert values["Hz"] == pytest.approx(50.0)
    assert values["PhVphB"] is None       # left out: served as its sentinel 0xFFFF


def test_a_shorter_older_model_leaves_the_missing_points_absent():
    model = sunspec.models()[713]
    data = [1000, 500, 567, 0xFFFF, 1, 2]  # 713 of an earlier draft: six registers, no Pct_SF
    values = sunspec.decode_model(model, data)
    assert values["WHRtg"] == 100_000
    assert "Pct_SF" not in values and values["SoH"] is None


# --- polling SunSpec devices: faults become BAD readings, the collector keeps running -------------

def sunspec_device(port, unit=1, points=("active_power", "energy_export", "state_of_charge", "capacity_w")):
    return DeviceConfig(name=f"dev{unit}", profile="sunspec", host="127.0.0.1", port=port, unit_id=unit,
                        points=[{"quantity": q} for q in points])


def poll(device: DeviceConfig, servers_for, times: int = 1):
    point_ids = {p.quantity: i for i, p in enumerate(device.points, start=1)}

    async def go():
        servers = await servers_for()
        dev = ModbusDevice(device, point_ids)
        try:
            results = [named(await dev.poll(FixedClock())) for _ in range(times)]
        finally:
            await dev.close()
            for s in servers:
                await s.shutdown()
        return results

    results = run(go())
    return [{q: r for q, pid in point_ids.items() for r in readings if r.point_id == pid} for readings in results]


def test_polling_a_sunspec_device_decodes_its_quantities():
    port = free_port()
    first, second = poll(sunspec_device(port), lambda: _serve([demo_inverter()], port), times=2)
    for readings in (first, second):  # the second poll reads the known span in bulk
        assert readings["active_power"].value == -12_300.0
        assert readings["energy_export"].value == 123_456_789.0
        assert readings["state_of_charge"].value == pytest.approx(56.7)
        assert readings["capacity_w"].value == 50_000.0
        assert all(r.quality == Quality.GOOD and r.ts == NOW for r in readings.values())


async def _serve(devices, port):
    return [await serve(devices, port=port)]


def test_nan_registers_become_bad_readings():
    port = free_port()
    sim = SimulatedSunSpec(1, chain=[
        (1, {"Mn": "X", "Md": "Y", "SN": "1"}),
        (113, {"W": math.nan, "WH": 5_000.0, "Hz": 50.0}),   # float inverter with a NaN power
        (213, {"W": math.nan, "TotWhImp": math.nan, "TotWhExp": 7.0}),
    ])
    (readings,) = poll(sunspec_device(port, points=("active_power", "energy_export", "energy_import", "frequency")),
                       lambda: _serve([sim], port))
    assert readings["active_power"].quality == Quality.BAD and readings["active_power"].value is None
    assert readings["energy_import"].quality == Quality.BAD and readings["energy_import"].value is None
    assert readings["energy_export"].value == 5_000.0      # 113 comes first in the chain
    assert readings["frequency"].value == 50.0


def test_not_implemented_points_become_bad_readings():
    port = free_port()
    sim = SimulatedSunSpec(1, chain=[(1, {"Mn": "X"}), (103, {"W_SF": 0, "W": 1000})])  # WH left out
    (readings,) = poll(sunspec_device(port, points=("active_power", "energy_export")), lambda: _serve([sim], port))
    assert readings["active_power"].value == -1000.0
    assert readings["energy_export"] == readings["energy_export"].__class__(
        readings["energy_export"].point_id, NOW, None, Quality.BAD)


def test_illegal_address_responses_become_bad_readings_without_crashing():
    port = free_port()
    image = build_image(demo_inverter().chain)
    truncated = image[: len(image) - 40]  # the chain promises registers the device does not have

    async def servers():
        sim = SimDevice(id=1, simdata=[SimData(40000, values=truncated, datatype=DataType.REGISTERS)])
        server = ModbusTcpServer([sim], address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        return [server]

    results = poll(sunspec_device(port), servers, times=2)
    for readings in results:
        assert {r.quality for r in readings.values()} == {Quality.BAD}
        assert all(r.value is None for r in readings.values())


def test_a_device_without_sunspec_gives_bad_readings():
    port = free_port()

    async def servers():
        # answers at 40000, but not 'SunS'; nothing at 0 and 50000
        sim = SimDevice(id=1, simdata=[SimData(40000, values=[1, 2, 3, 4], datatype=DataType.REGISTERS)])
        server = ModbusTcpServer([sim], address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        return [server]

    (readings,) = poll(sunspec_device(port), servers)
    assert {r.quality for r in readings.values()} == {Quality.BAD}


def test_the_model_file_maps_only_known_quantities_and_units():
    # loading validates offsets, scale-factor names and quantity/unit pairs
    ms = sunspec.models()
    required = {1, 101, 102, 103, 111, 112, 113, 120, 124, 201, 202, 203, 204, 211, 212, 213, 214, 701, 702, 713, 802}
    assert required <= set(ms)
    assert {"energy_import", "energy_export", "active_power", "capacity_w", "storage_capacity_wh"} <= (
        sunspec.sunspec_quantities())


# --- greengauge devices scan -------------------------------------------------------------------

def test_devices_scan_reports_the_devices_and_prints_pasteable_entries():
    import socket
    import subprocess
    import sys
    import time

    from ruamel.yaml import YAML
    from typer.testing import CliRunner

    from greengauge.cli_devices import app

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "collectors.sunspec_sim", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the SunSpec simulator did not start"
                time.sleep(0.1)
        result = CliRunner().invoke(app, ["scan", f"127.0.0.1:{port}", "--unit-ids", "1-4", "--timeout", "1"])
    finally:
        proc.terminate()
        proc.wait(10)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "SIM-PV-50K" in out and "GG-PV-0001" in out and "SIM-METER-3P" in out and "SIM-BAT-100K" in out
    assert "rated active power" in out and "50,000 W" in out   # nameplate from 120/702
    assert "battery energy rating" in out and "200,000 Wh" in out  # from 802
    entries = YAML(typ="safe").load(out[out.index("\ndevices:\n"):])["devices"]
    assert [(e["name"], e["unit_id"], e["sunspec_base"]) for e in entries] == [
        ("inverter-1", 1, 40000), ("meter-2", 2, 40000), ("battery-3", 3, 40000)]
    for e in entries:
        DeviceConfig(**e)  # pasteable: the site model accepts it as it is
    roles = [{p["quantity"]: p.get("role") for p in e["points"]} for e in entries]
    # the roles proposed, each marked for confirmation
    assert roles[0]["energy_export"] == "pv_generation" and roles[0]["energy_import"] is None
    assert (roles[1]["energy_import"], roles[1]["energy_export"]) == ("grid_import", "grid_export")
    assert (roles[2]["energy_import"], roles[2]["energy_export"]) == ("storage_charge", "storage_discharge")
    assert out.count("# role proposed for a") == 5
    assert {"energy_import", "energy_export", "active_power", "voltage_l1"} <= set(roles[1])
    rated = [{p["quantity"]: p.get("rated_power_w") for p in e["points"]}["energy_export"] for e in entries]
    assert rated == [50_000, None, 100_000]  # 702 WMaxRtg (the meter has no nameplate)


def test_scan_proposes_no_energy_role_for_a_hybrid_inverter():
    from ruamel.yaml import YAML

    from greengauge.cli_devices import Found, device_entry

    image = build_image(demo_inverter().chain)  # PV and battery behind one AC side (120 DERTyp PV_STOR)

    async def read(address, count):
        return image[address - 40000 : address - 40000 + count]

    dev = asyncio.run(sunspec.scan(read))
    assert Found(1, dev).kind == "hybrid"
    text = device_entry(Found(1, dev), Endpoint("tcp", "127.0.0.1", 502))
    (entry,) = YAML(typ="safe").load(text)
    assert entry["name"] == "inverter-1"
    assert all("role" not in p for p in entry["points"])
    assert text.count("hybrid inverter: AC counter of PV and battery together") == 2


def test_sunspec_models_picks_the_inverter_when_a_meter_shares_the_unit_id():
    port = free_port()
    chain = [(1, {"Mn": "X"}),
             (203, {"W_SF": 0, "W": 30_500, "TotWh_SF": 0, "TotWhImp": 1_000, "TotWhExp": 2_000}),
             (103, {"W_SF": 0, "W": 12_300, "WH_SF": 0, "WH": 5_000})]
    points = ("active_power", "energy_export")
    (both,) = poll(sunspec_device(port, points=points), lambda: _serve([SimulatedSunSpec(1, chain=chain)], port))
    assert both["active_power"].value == 30_500.0      # the first model in the chain: the meter
    port = free_port()
    inverter_only = sunspec_device(port, points=points).model_copy(update={"sunspec_models": [1, 103]})
    (inv,) = poll(inverter_only, lambda: _serve([SimulatedSunSpec(1, chain=chain)], port))
    assert (inv["active_power"].value, inv["energy_export"].value) == (-12_300.0, 5_000.0)


def test_sunspec_fields_are_validated():
    with pytest.raises(ValueError, match="lists its points"):
        DeviceConfig(name="x", profile="sunspec", host="127.0.0.1")
    with pytest.raises(ValueError, match="no definition for model"):
        DeviceConfig(name="x", profile="sunspec", host="127.0.0.1", sunspec_models=[64001],
                     points=[{"quantity": "active_power"}])
    with pytest.raises(ValueError, match="go with profile 'sunspec'"):
        DeviceConfig(name="x", profile="eastron-sdm630", host="127.0.0.1", sunspec_base=40000)
    with pytest.raises(ValueError, match="unknown quantity 'nonsense'"):
        DeviceConfig(name="x", profile="sunspec", host="127.0.0.1", points=[{"quantity": "state_of_charge"},
                                                                           {"quantity": "nonsense"}])


def test_scan_entry_for_an_inverter_with_a_meter_on_the_same_unit_id():
    from ruamel.yaml import YAML

    from greengauge.cli_devices import Found, device_entry

    image = build_image([(1, {"Mn": "X", "Md": "Y", "SN": "7"}), (103, {"W_SF": 0, "W": 5, "WH_SF": 0, "WH": 9}),
                         (203, {"W_SF": 0, "W": 7, "TotWh_SF": 0, "TotWhImp": 3})])

    async def read(address, count):
        return image[address - 40000 : address - 40000 + count]

    dev = asyncio.run(sunspec.scan(read))
    text = device_entry(Found(4, dev), Endpoint("rtu-over-tcp", "10.0.0.9", 8899))
    (entry,) = YAML(typ="safe").load(text)
    assert entry["sunspec_models"] == [1, 103] and entry["transport"] == "rtu-over-tcp"
    assert {p["quantity"] for p in entry["points"]} == {"active_power", "energy_export"}  # not the meter's import
    assert "meter model(s) [203]" in text


def test_the_simulator_serves_changed_values_and_the_bulk_reread_sees_them():
    port = free_port()
    sim = demo_inverter()
    device = sunspec_device(port, points=("active_power", "energy_export"))

    async def go():
        server = await serve([sim], port=port)
        dev = ModbusDevice(device, {"active_power": 1, "energy_export": 2})
        try:
            first = named(await dev.poll(FixedClock()))
            sim.set(103, W=15_000, WH=123_457_000)
            sim.set(701, W=15_000)
            second = named(await dev.poll(FixedClock()))  # the known span, re-read in bulk
            return first, second
        finally:
            await dev.close()
            await server.shutdown()

    first, second = run(go())
    assert [r.value for r in first] == [-12_300.0, 123_456_789.0]
    assert [r.value for r in second] == [-15_000.0, 123_457_000.0]


# --- the peer: pysunspec2 (the SunSpec Alliance's library) builds and reads the images ---------------

import random  # noqa: E402
import struct  # noqa: E402

from sunspec2 import device as ssdevice  # noqa: E402
from sunspec2 import mb as ssmb  # noqa: E402
from sunspec2.modbus import client as ssclient  # noqa: E402

from collectors.sunspec_sim import _encode_point  # noqa: E402

_RAW_RANGE = {  # raw values that are numbers, never the not-implemented sentinel
    "int16": (-32767, 32767), "uint16": (0, 65534), "acc16": (1, 65535), "enum16": (0, 65534),
    "bitfield16": (0, 65534), "int32": (-2**31 + 1, 2**31 - 1), "uint32": (0, 2**32 - 2), "acc32": (1, 2**32 - 1),
    "enum32": (0, 2**32 - 2), "bitfield32": (0, 2**32 - 2), "int64": (-2**63 + 1, 2**63 - 1),
    "uint64": (0, 2**64 - 2), "acc64": (1, 2**63 - 1),
}


def peer_model(model_id: int, rng: random.Random, leave_out: int = 7) -> ssdevice.Model:
    """A pysunspec2 model with a raw value in every point (every ``leave_out``-th left not
    implemented); scale factors -3..3, always implemented."""
    m = ssdevice.Model(model_id=model_id)
    for i, (name, point) in enumerate(m.points.items()):
        ptype = point.pdef["type"]
        if name in ("ID", "L") or ptype == "pad":
            continue
        if ptype == "sunssf":
            point.value = rng.randint(-3, 3)
        elif i % leave_out == 0:
            point.value = None
        elif ptype == "string":
            point.value = f"gg{name}"[: 2 * point.len]
        elif ptype == "float32":
            point.value = rng.randint(-2**20, 2**20) / 8  # exact in float32
        else:
            point.value = rng.randint(*_RAW_RANGE[ptype])
    return m


def regs_of(data: bytes) -> list[int]:
    return list(struct.unpack(f">{len(data) // 2}H", data))


def _same(ours, theirs) -> bool:
    if theirs is None or (isinstance(theirs, float) and math.isnan(theirs)):
        return ours is None  # not implemented (pysunspec2 keeps a NaN float as a value; we do not)
    if isinstance(theirs, str):
        return ours == theirs
    return ours is not None and float(ours) == pytest.approx(float(theirs), rel=1e-12, abs=1e-9)


async def _serve_image(image: list[int], port: int, unit: int = 1, base: int = 40000):
    sim = SimDevice(id=unit, simdata=[SimData(base, values=image, datatype=DataType.REGISTERS)])
    server = ModbusTcpServer([sim], address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    return server


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_image_built_by_pysunspec2_decodes_point_for_point_as_pysunspec2_reads_it(seed):
    # every model we define, in one chain, with pysunspec2's encoding of random raw values and of
    # not-implemented points; read over Modbus TCP with our discovery and decoder
    rng = random.Random(seed)
    peers = {mid: peer_model(mid, rng) for mid in sorted(sunspec.models())}
    image = [*sunspec.SUNS]
    for m in peers.values():
        image += regs_of(m.get_mb())
    image += [sunspec.END_ID, 0]
    port = free_port()

    async def go():
        server = await _serve_image(image, port)
        try:
            return await scan_unit(port, 1)
        finally:
            await server.shutdown()

    dev = run(go())
    assert dev.model_ids == list(peers)
    compared = 0
    for block in dev.blocks:
        ours = sunspec.decode_model(block.model, block.data)
        theirs = ssdevice.Model(model_id=block.id, data=peers[block.id].get_mb())  # pysunspec2 parses its bytes
        assert not theirs.error_info, theirs.error_info
        for name, point in theirs.points.items():
            if name in ("ID", "L") or point.pdef["type"] == "pad":
                continue
            assert _same(ours[name], point.cvalue), f"model {block.id} {name}: ours {ours[name]!r}, pysunspec2 {point.cvalue!r}"
            compared += 1
    assert compared == sum(1 for m in sunspec.models().values() for p in m.points if p.type != "pad")  # all of them


def _poll_image(image: list[int], points: tuple[str, ...]):
    port = free_port()
    return poll(sunspec_device(port, points=points), lambda: _serve_with(image, port))


async def _serve_with(image, port):
    return [await _serve_image(image, port)]


def test_a_500_kw_rating_built_by_pysunspec2_is_stored_as_500_kw():
    # 702 as the Alliance lays it out (PFOvrExt/PFUndExt included): W_SF at offset 43. Read two
    # registers early, the rating came out as 50 W (WMaxRtg 500 x 10^-1 from the wrong register).
    m702 = ssdevice.Model(model_id=702)
    m702.points["W_SF"].value = 3
    m702.points["PF_SF"].value = -1
    m702.points["WMaxRtg"].cvalue = 500_000   # 500 x 10^3 W
    m702.points["PFOvrExt"].value = 9         # the registers that used to be missing
    m702.points["PFUndExt"].value = 9
    m1 = ssdevice.Model(model_id=1)
    m1.points["Mn"].value = "X"
    image = [*sunspec.SUNS, *regs_of(m1.get_mb()), *regs_of(m702.get_mb()), sunspec.END_ID, 0]
    (readings,) = _poll_image(image, ("capacity_w",))
    assert (readings["capacity_w"].value, readings["capacity_w"].quality) == (500_000.0, Quality.GOOD)


def test_701_voltages_are_unsigned_and_0xffff_is_not_implemented():
    m701 = ssdevice.Model(model_id=701)
    m701.points["V_SF"].value = 0
    m701.points["VL1"].value = 34_500   # a 34.5 kV medium-voltage output: above int16's range
    m701.points["VL2"].value = None     # pysunspec2 writes uint16's not-implemented 0xFFFF
    m701.points["VL3"].value = 0xFFFE   # the largest voltage that is one
    image = [*sunspec.SUNS, *regs_of(m701.get_mb()), sunspec.END_ID, 0]
    assert image[2 + 2 + 68] == 0xFFFF
    (readings,) = _poll_image(image, ("voltage_l1", "voltage_l2", "voltage_l3"))
    assert (readings["voltage_l1"].value, readings["voltage_l1"].quality) == (34_500.0, Quality.GOOD)
    assert (readings["voltage_l2"].value, readings["voltage_l2"].quality) == (None, Quality.BAD)  # was -0.1 V GOOD
    assert readings["voltage_l3"].value == 65_534.0


def test_pysunspec2_reads_our_simulator_as_we_do():
    # the other direction: the Alliance's Modbus client scans the demo inverter we serve
    port = free_port()
    sim = demo_inverter()

    async def go():
        server = await serve([sim], port=port)
        try:
            def peer_scan():
                d = ssclient.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=5)
                try:
                    d.scan()
                    return {m.model_id: {n: p.cvalue for n, p in m.points.items()} for m in d.model_list}
                finally:
                    d.close()

            return await asyncio.to_thread(peer_scan), await scan_unit(port, 1)
        finally:
            await server.shutdown()

    theirs, ours = run(go())
    assert list(theirs) == ours.model_ids
    for model_id, given in sim.chain:
        decoded = ours.decoded(model_id)
        for name, value in given.items():
            assert _same(decoded[name], theirs[model_id][name]), (model_id, name)
            if value is not None and not isinstance(value, str):
                assert float(theirs[model_id][name]) == pytest.approx(value), (model_id, name)


# --- every type's not-implemented value, served by the simulator, is no value ---------------------

def _point_of_type(ptype: str):
    """A (model, point) of ``ptype``, preferring one that feeds a quantity."""
    candidates = [(m, p) for m in sunspec.models().values() for p in m.points if p.type == ptype]
    return sorted(candidates, key=lambda mp: (mp[1].quantity is None, mp[0].id))[0] if candidates else None


SERVED_TYPES = sorted({p.type for m in sunspec.models().values() for p in m.points} - {"pad"})


@pytest.mark.parametrize("ptype", SERVED_TYPES)
def test_the_simulator_serves_each_types_not_implemented_value_and_it_is_a_bad_reading(ptype):
    model, point = _point_of_type(ptype)
    served = _encode_point(point, None, 0)
    # the sentinel as the Alliance's library writes it
    assert served == regs_of(ssmb.create_unimpl_value(ptype, len=2 * point.width))
    values = {p.name: 0 for p in model.points if p.type == "sunssf"}
    values.update({p.name: 1 for p in model.points if p.type not in ("sunssf", "pad", "string") and p is not point})
    if ptype == "sunssf":
        values[point.name] = None
    sim = SimulatedSunSpec(1, chain=[(1, {"Mn": "X"})] * (model.id != 1) + [(model.id, values)])
    fed = point.quantity or next((p.quantity for p in model.points if p.sf == point.name and p.quantity), None)
    port = free_port()
    if fed is None:  # a point that feeds no stored quantity: decoded to no value
        async def go():
            server = await serve([sim], port=port)
            try:
                return await scan_unit(port, 1)
            finally:
                await server.shutdown()

        assert run(go()).decoded(model.id)[point.name] is None
        return
    (readings,) = poll(sunspec_device(port, points=(fed,)), lambda: _serve([sim], port))
    assert (readings[fed].value, readings[fed].quality) == (None, Quality.BAD), (model.id, point.name)


@pytest.mark.parametrize("ptype", sorted({*sunspec._NOT_IMPLEMENTED, "float32", "string"}))
def test_the_simulators_sentinel_of_every_type_is_the_alliances_and_decodes_to_none(ptype):
    point = sunspec.Point(name="x", offset=0, type=ptype, size=4 if ptype == "string" else None)
    served = _encode_point(point, None, 0)
    assert served == regs_of(ssmb.create_unimpl_value(ptype, len=2 * point.width))
    assert sunspec.decode_raw(point, served) is None


def test_sunspec_power_is_stored_with_the_sign_of_the_devices_role():
    # the demo plant as the scan proposes it: PV inverter producing 12.3 kW, grid meter importing
    # 30.5 kW, battery inverter discharging 40 kW (SunSpec DER power is + when injecting)
    from collectors.sunspec_sim import demo_battery, demo_pv_inverter

    port = free_port()
    roles = {
        1: [{"quantity": "energy_export", "role": "pv_generation"}, {"quantity": "active_power"}],
        2: [{"quantity": "energy_import", "role": "grid_import"}, {"quantity": "energy_export", "role": "grid_export"},
            {"quantity": "active_power"}, {"quantity": "active_power_l1"}],
        3: [{"quantity": "energy_import", "role": "storage_charge"},
            {"quantity": "energy_export", "role": "storage_discharge"}, {"quantity": "active_power"}],
        4: [{"quantity": "active_power"}],  # the PV inverter again, without a role
    }

    async def go():
        server = await serve([demo_pv_inverter(1), demo_meter(2), demo_battery(3), demo_pv_inverter(4)], port=port)
        out = {}
        try:
            for unit, points in roles.items():
                device = DeviceConfig(name=f"d{unit}", profile="sunspec", host="127.0.0.1", port=port, unit_id=unit,
                                      points=points)
                ids = {p["quantity"]: i for i, p in enumerate(points)}
                dev = ModbusDevice(device, ids)
                readings = named(await dev.poll(FixedClock()))
                await dev.close()
                out[unit] = {q: r.value for q, i in ids.items() for r in readings if r.point_id == i}
            return out
        finally:
            await server.shutdown()

    got = run(go())
    assert got[1]["active_power"] == 12_300.0    # PV: + generation
    assert got[2]["active_power"] == 30_500.0    # grid: + import
    assert got[2]["active_power_l1"] == 10_170.0
    assert got[3]["active_power"] == 40_000.0    # battery: + discharge
    assert got[4]["active_power"] == -12_300.0   # no role: + import, so a producing inverter is negative
