"""Every device profile decodes a fixture register image served by a real pymodbus server.

One parametrized test over every YAML in collectors/profiles/: the fixture image is built from
the profile itself (a known value per quantity, encoded with the register's type, word order,
scale and unit), served on 127.0.0.1, read with collectors.modbus.ModbusDevice and decoded. A new
profile needs no new test code. Registers marked ct_pt are checked with a CT and PT ratio set.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from pymodbus.client import ModbusBaseClient as C
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.modbus import ModbusDevice
from model.profile import _DATATYPE, REGISTER_COUNT, known_profiles, load_profile, ratio_factor
from model.readings import Quality
from model.site import DeviceConfig
from tests.conftest import free_port
from tests.collectors import named

#: a known value per quantity, canonical unit; each fits every profile's type and scale exactly
#: (integer registers) or to float32 precision (float registers)
KNOWN = {
    "energy_import": 12_345_670.0,
    "energy_export": 1_234_560.0,
    "active_power": -4_321.0,
    "active_power_l1": -1_440.0,
    "active_power_l2": -1_441.0,
    "active_power_l3": -1_440.0,
    "voltage_l1": 231.4,
    "voltage_l2": 229.9,
    "voltage_l3": 230.6,
    "current_l1": 12.34,
    "current_l2": 5.67,
    "current_l3": 0.89,
    "frequency": 50.01,
    "power_factor": 0.987,
    "state_of_charge": 56.7,
}
DEVICE_TIME = datetime(2025, 6, 21, 4, 15, tzinfo=timezone.utc)
UNIT = 7
CT, PT = Decimal(40), Decimal(100)  # e.g. 200/5 A current and 10 kV/100 V voltage transformers


class FixedClock:
    def now(self) -> datetime:
        return datetime(2025, 6, 21, 4, 16, 30, tzinfo=timezone.utc)


def encode(type_: str, word_order: str, raw: Decimal) -> list[int]:
    if type_.startswith("float"):
        value = float(raw)
    else:
        assert raw == raw.to_integral_value(), f"fixture value does not fit an integer register: {raw}"
        value = int(raw)
        if type_.startswith("uint"):
            assert value >= 0, f"negative fixture value for {type_}"
    return C.convert_to_registers(value, _DATATYPE[type_], word_order=word_order)


def runs(image: dict[int, int]) -> list[SimData]:
    """Contiguous runs of the image; addresses in between stay undefined (illegal address)."""
    blocks, start, values = [], None, []
    for addr in sorted(image):
        if start is not None and addr == start + len(values):
            values.append(image[addr])
            continue
        if start is not None:
            blocks.append(SimData(start, values=values, datatype=DataType.REGISTERS))
        start, values = addr, [image[addr]]
    if start is not None:
        blocks.append(SimData(start, values=values, datatype=DataType.REGISTERS))
    return blocks or [SimData(65535, values=[0], datatype=DataType.REGISTERS)]


@pytest.mark.parametrize("name", known_profiles())
def test_profile_decodes_its_fixture_image(name):
    profile = load_profile(name)  # validated on load
    ratios = {"ct_ratio": CT, "pt_ratio": PT} if profile.uses_ct_pt else {}
    port = free_port()
    device = DeviceConfig(name="dut", profile=name, host="127.0.0.1", port=port, unit_id=UNIT, **ratios)

    images: dict[str, dict[int, int]] = {"holding": {}, "input": {}}
    expected: dict[str, float] = {}
    for reg in profile.registers:
        assert reg.quantity in KNOWN, f"{name}: add a known value for {reg.quantity} to KNOWN"
        value = Decimal(repr(KNOWN[reg.quantity]))
        if reg.type.startswith("uint") and value < 0:
            value = -value
        ratio = ratio_factor(reg, device.ct_ratio, device.pt_ratio)
        raw = value / reg.factor  # what the meter holds, before the CT/PT ratio
        for i, word in enumerate(encode(reg.type, reg.word_order, raw)):
            images[reg.function][reg.address + i] = word
        expected[reg.quantity] = float(value * ratio)
    if profile.clock is not None:
        c = profile.clock
        for i, word in enumerate(encode(c.type, c.word_order, Decimal(int(DEVICE_TIME.timestamp())))):
            images[c.function][c.address + i] = word
    assert sum(len(v) for v in images.values()) == sum(REGISTER_COUNT[r.type] for r in profile.registers) + (
        profile.clock.count if profile.clock else 0), f"{name}: two registers overlap"

    point_ids = {r.quantity: i for i, r in enumerate(profile.registers, start=1)}

    async def serve_and_poll():
        sim = SimDevice(id=UNIT, simdata=(
            [SimData(0, values=False, datatype=DataType.BITS)],
            [SimData(0, values=False, datatype=DataType.BITS)],
            runs(images["holding"]),
            runs(images["input"]),
        ))
        server = ModbusTcpServer([sim], address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        dev = ModbusDevice(device, point_ids)
        try:
            return named(await dev.poll(FixedClock()))
        finally:
            await dev.close()
            await server.shutdown()

    readings = asyncio.run(serve_and_poll())
    by_quantity = {q: r for q, pid in point_ids.items() for r in readings if r.point_id == pid}
    assert set(by_quantity) == set(point_ids)
    ts = DEVICE_TIME if profile.clock is not None else FixedClock().now()
    for quantity, reading in by_quantity.items():
        assert reading.quality == Quality.GOOD, f"{name}.{quantity}: {reading}"
        assert reading.ts == ts
        assert reading.value == pytest.approx(expected[quantity], rel=1e-6), f"{name}.{quantity}"


def test_ct_ratio_on_a_profile_without_secondary_values_is_refused():
    # eastron-sdm630 reports primary values: a CT ratio would silently change nothing
    with pytest.raises(ValueError, match="ct_ratio/pt_ratio would change nothing"):
        DeviceConfig(name="m", profile="eastron-sdm630", host="127.0.0.1", ct_ratio=40)


def test_ct_pt_multiplies_by_the_right_ratio():
    profile = load_profile("acrel-dtsd1352")
    by_q = {r.quantity: ratio_factor(r, CT, PT) for r in profile.registers}
    assert by_q["voltage_l1"] == PT
    assert by_q["current_l1"] == CT
    assert by_q["active_power"] == CT * PT
    assert by_q["energy_import"] == CT * PT
    assert by_q["frequency"] == 1
