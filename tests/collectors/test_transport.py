"""Transports against real pymodbus servers: Modbus TCP, RTU over TCP, shared connections."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from datetime import datetime, timezone

import pytest
from pymodbus.client import ModbusBaseClient as C
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.modbus import ModbusDevice
from model.readings import Quality
from collectors.transport import ConnectionPool, Endpoint
from model.site import DeviceConfig
from tests.conftest import free_port
from tests.collectors import named

NOW = datetime(2025, 6, 21, 4, 16, 30, tzinfo=timezone.utc)


class FixedClock:
    def now(self) -> datetime:
        return NOW


def sdm630_image(import_kwh: float, volts: float) -> list[SimData]:
    """The registers of an Eastron SDM630 (input registers, float32) with two known values."""
    f = lambda v: C.convert_to_registers(float(v), C.DATATYPE.FLOAT32)  # noqa: E731
    regs = [0] * 76
    regs[0:2] = f(volts)
    regs[72:74] = f(import_kwh)
    return [SimData(0, values=regs, datatype=DataType.REGISTERS)]


def meter(unit: int, import_kwh: float, volts: float) -> SimDevice:
    # non-shared blocks, so input registers are what the SDM630 profile reads
    bits = [SimData(0, values=False, datatype=DataType.BITS)]
    return SimDevice(id=unit, simdata=(bits, bits, [SimData(0, values=[0], datatype=DataType.REGISTERS)],
                                       sdm630_image(import_kwh, volts)))


def device(unit: int, port: int, transport: str) -> DeviceConfig:
    return DeviceConfig(name=f"m{unit}", profile="eastron-sdm630", transport=transport, host="127.0.0.1",
                        port=port, unit_id=unit, timeout_s=2,
                        points=[{"quantity": "energy_import"}, {"quantity": "voltage_l1"}])


async def poll_all(devices: list[DeviceConfig], sims: list[SimDevice], framer: FramerType, rounds: int = 3):
    port = devices[0].port
    server = ModbusTcpServer(sims, address=("127.0.0.1", port), framer=framer)
    await server.serve_forever(background=True)
    pool = ConnectionPool()
    devs = [ModbusDevice(d, {"energy_import": 1, "voltage_l1": 2}, pool=pool) for d in devices]
    try:
        results = []
        for _ in range(rounds):  # all devices at once, as the poller runs them
            results.append([named(r) for r in await asyncio.gather(*(d.poll(FixedClock()) for d in devs))])
        conns = {id(d.conn) for d in devs}
        requests = devs[0].conn.requests
        return results, len(pool), conns, requests
    finally:
        for d in devs:
            await d.close()
        await server.shutdown()


@pytest.mark.parametrize("transport, framer", [("tcp", FramerType.SOCKET), ("rtu-over-tcp", FramerType.RTU)])
def test_two_unit_ids_behind_one_gateway_share_one_connection(transport, framer):
    port = free_port()
    devices = [device(1, port, transport), device(2, port, transport)]
    sims = [meter(1, 1234.5, 230.5), meter(2, 777.25, 228.0)]
    results, pool_size, conns, requests = asyncio.run(poll_all(devices, sims, framer))
    assert pool_size == 1 and len(conns) == 1  # one connection for both unit ids
    # SDM630 energy and voltage are two reads per device per round, strictly one at a time
    assert requests == 3 * 2 * 2
    for round_ in results:
        r1, r2 = ({r.point_id: r for r in readings} for readings in round_)
        assert (r1[1].value, r1[2].value) == (1_234_500.0, 230.5)   # unit 1, kWh -> Wh
        assert (r2[1].value, r2[2].value) == (777_250.0, 228.0)     # unit 2, not mixed up
        assert all(r.quality == Quality.GOOD for r in [*r1.values(), *r2.values()])


def test_requests_on_one_connection_never_overlap():
    port = free_port()
    in_flight = 0
    most = 0

    async def slow(function_code, start_address, address, count, registers, set_values):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return None

    async def go():
        sims = [SimDevice(id=u, simdata=[SimData(0, values=list(range(10)), datatype=DataType.REGISTERS)],
                          action=slow) for u in (1, 2, 3)]
        server = ModbusTcpServer(sims, address=("127.0.0.1", port), framer=FramerType.RTU)
        await server.serve_forever(background=True)
        pool = ConnectionPool()
        conn = pool.acquire(Endpoint("rtu-over-tcp", "127.0.0.1", port))
        try:
            got = await asyncio.gather(*(conn.read("holding", 0, 10, u) for u in (1, 2, 3) for _ in range(3)))
        finally:
            pool.release(conn)
            await server.shutdown()
        return got

    got = asyncio.run(go())
    assert all(regs == list(range(10)) for regs in got)
    assert most == 1


def test_a_refused_block_gives_bad_readings_and_the_rest_is_read():
    port = free_port()

    async def go():
        # only the voltage registers exist: the energy read is answered with illegal address
        f = C.convert_to_registers(231.0, C.DATATYPE.FLOAT32)
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        sim = SimDevice(id=1, simdata=(bits, bits, [SimData(0, values=[0], datatype=DataType.REGISTERS)],
                                       [SimData(0, values=f, datatype=DataType.REGISTERS)]))
        server = ModbusTcpServer([sim], address=("127.0.0.1", port), framer=FramerType.RTU)
        await server.serve_forever(background=True)
        dev = ModbusDevice(device(1, port, "rtu-over-tcp"), {"energy_import": 1, "voltage_l1": 2})
        try:
            return named(await dev.poll(FixedClock()))
        finally:
            await dev.close()
            await server.shutdown()

    by_id = {r.point_id: r for r in asyncio.run(go())}
    assert by_id[1].quality == Quality.BAD and by_id[1].value is None
    assert by_id[2].value == 231.0 and by_id[2].quality == Quality.GOOD


def test_serial_and_tcp_settings_are_validated():
    with pytest.raises(ValueError, match="needs serial_port"):
        DeviceConfig(name="s", profile="eastron-sdm630", transport="serial")
    with pytest.raises(ValueError, match="needs host"):
        DeviceConfig(name="s", profile="eastron-sdm630", transport="rtu-over-tcp")
    d = DeviceConfig(name="s", profile="eastron-sdm630", transport="serial", serial_port="/dev/ttyUSB0",
                     baudrate=2400, parity="E")
    assert d.endpoint == "serial:/dev/ttyUSB0"
    assert Endpoint.of(d).key == ("serial", "/dev/ttyUSB0")


def test_a_silent_unit_id_does_not_break_its_neighbours_on_the_line():
    port = free_port()

    async def go():
        server = ModbusTcpServer([meter(1, 10.0, 230.0)], address=("127.0.0.1", port), framer=FramerType.RTU)
        await server.serve_forever(background=True)
        pool = ConnectionPool()
        present = device(1, port, "rtu-over-tcp").model_copy(update={"timeout_s": 0.5})
        silent = device(9, port, "rtu-over-tcp").model_copy(update={"timeout_s": 0.5})
        good = ModbusDevice(present, {"energy_import": 1, "voltage_l1": 2}, pool=pool)
        bad = ModbusDevice(silent, {"energy_import": 1, "voltage_l1": 2}, pool=pool)
        try:
            before = named(await good.poll(FixedClock()))
            # unit 9 is not on the line: the simulated gateway answers with an exception (a real one
            # may stay silent and time out, which is raised at the boundary); either way no value
            try:
                assert {r.quality for r in named(await bad.poll(FixedClock()))} == {Quality.BAD}
            except (ModbusException, OSError, asyncio.TimeoutError):
                pass
            after = named(await good.poll(FixedClock()))
            return before, after, len(pool)
        finally:
            await good.close()
            await bad.close()
            await server.shutdown()

    before, after, pool_size = asyncio.run(go())
    assert pool_size == 1
    assert [r.value for r in before] == [r.value for r in after] == [10_000.0, 230.0]


def test_a_unit_id_that_never_answers_times_out_and_the_line_recovers():
    """An RS-485 gateway forwards to a unit that is not there: silence, then a timeout. The late
    or missing answer must not be taken for the next request's."""
    up_port, gw_port = free_port(), free_port()

    async def gateway(reader, writer):
        up_r, up_w = await asyncio.open_connection("127.0.0.1", up_port)

        async def down():
            while data := await up_r.read(256):
                writer.write(data)
                await writer.drain()

        task = asyncio.create_task(down())
        try:
            while data := await reader.read(256):
                if data[0] != 9:  # RTU frame: the first byte is the unit id; unit 9 stays silent
                    up_w.write(data)
                    await up_w.drain()
        finally:
            task.cancel()
            up_w.close()
            writer.close()

    async def go():
        server = ModbusTcpServer([meter(1, 10.0, 230.0)], address=("127.0.0.1", up_port), framer=FramerType.RTU)
        await server.serve_forever(background=True)
        gw = await asyncio.start_server(gateway, "127.0.0.1", gw_port)
        pool = ConnectionPool()
        good = ModbusDevice(device(1, gw_port, "rtu-over-tcp").model_copy(update={"timeout_s": 0.5}),
                            {"energy_import": 1, "voltage_l1": 2}, pool=pool)
        bad = ModbusDevice(device(9, gw_port, "rtu-over-tcp").model_copy(update={"timeout_s": 0.5}),
                           {"energy_import": 1, "voltage_l1": 2}, pool=pool)
        try:
            before = named(await good.poll(FixedClock()))
            with pytest.raises((ModbusException, OSError, asyncio.TimeoutError)):
                await bad.poll(FixedClock())
            after = named(await good.poll(FixedClock()))
            return before, after
        finally:
            await good.close()
            await bad.close()
            gw.close()
            await server.shutdown()

    before, after = asyncio.run(go())
    assert [r.value for r in before] == [r.value for r in after] == [10_000.0, 230.0]


@pytest.mark.skipif(shutil.which("socat") is None, reason="needs socat for a linked pseudo-terminal pair")
def test_serial_rtu_over_a_pseudo_terminal_pair(tmp_path):
    pytest.importorskip("serial", reason="serial RTU needs pyserial")
    from pymodbus.server import ModbusSerialServer

    line_a, line_b = tmp_path / "ttyA", tmp_path / "ttyB"
    socat = subprocess.Popen(["socat", f"pty,raw,echo=0,link={line_a}", f"pty,raw,echo=0,link={line_b}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (line_a.exists() and line_b.exists()):
            assert time.monotonic() < deadline, "socat did not create the terminals"
            time.sleep(0.05)

        async def go():
            server = ModbusSerialServer([meter(1, 42.0, 231.0), meter(2, 43.0, 232.0)], framer=FramerType.RTU,
                                        port=str(line_a), baudrate=9600)
            await server.serve_forever(background=True)
            pool = ConnectionPool()
            devs = [ModbusDevice(DeviceConfig(name=f"s{u}", profile="eastron-sdm630", transport="serial",
                                              serial_port=str(line_b), baudrate=9600, unit_id=u, timeout_s=2,
                                              points=[{"quantity": "energy_import"}, {"quantity": "voltage_l1"}]),
                                 {"energy_import": 1, "voltage_l1": 2}, pool=pool) for u in (1, 2)]
            try:
                got = [named(r) for r in await asyncio.gather(*(d.poll(FixedClock()) for d in devs))]
                return got, len(pool)
            finally:
                for d in devs:
                    await d.close()
                await server.shutdown()

        (r1, r2), pool_size = asyncio.run(go())
    finally:
        socat.terminate()
        socat.wait(10)
    assert pool_size == 1  # both unit ids on the one serial line
    assert [r.value for r in r1] == [42_000.0, 231.0]
    assert [r.value for r in r2] == [43_000.0, 232.0]
