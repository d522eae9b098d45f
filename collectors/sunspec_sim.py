"""A SunSpec device simulator for tests and demos, served by pymodbus on loopback.

The register image is built from the same model definitions the decoder reads
(``collectors/sunspec_models/models.yaml``): values are given per point in the point's unit (after
scaling), scale factors per ``sunssf`` point; a point left out (or given as None) is served as its
not-implemented sentinel, exactly as a real device that does not implement it. Anything outside
the image is not defined, so a read there is answered with an illegal-address exception.

``python -m collectors.sunspec_sim --port 1502`` serves the demo plant: a PV inverter (models 1, 103,
120, 701, 702) on unit 1, a grid meter (1, 203) on unit 2 and a battery inverter (1, 701, 702, 713,
802) on unit 3. :func:`demo_inverter` is a hybrid inverter with a battery (1, 103, 120, 124, 701,
702, 713, 802) on one unit id.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from pymodbus.client import ModbusBaseClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.sunspec import _NOT_IMPLEMENTED, END_ID, SUNS, Model, Point, models

Value = int | float | str | None


def _encode_point(point: Point, value: Value, sf: int) -> list[int]:
    n = point.width
    if point.type == "pad":
        return [0x8000]
    if point.type == "string":
        raw = (value or "").encode("utf-8")[: 2 * n].ljust(2 * n, b"\x00")
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 2 * n, 2)]
    if point.type == "float32":
        v = math.nan if value is None else float(value)
        return ModbusBaseClient.convert_to_registers(v, ModbusBaseClient.DATATYPE.FLOAT32)
    if value is None:
        raw = _NOT_IMPLEMENTED[point.type]
    else:
        raw = round(float(value) / 10.0**sf) if point.sf else int(value)
        if raw < 0:
            raw += 1 << (16 * n)
    return [(raw >> (16 * (n - 1 - i))) & 0xFFFF for i in range(n)]


def encode_model(model: Model, values: dict[str, Value]) -> list[int]:
    """The L data registers of ``model`` with ``values`` (scaled; sunssf points as exponents)."""
    unknown = set(values) - {p.name for p in model.points}
    if unknown:
        raise ValueError(f"model {model.id} has no point(s) {', '.join(sorted(unknown))}")
    regs = [0] * model.length
    for p in model.points:
        if p.type == "sunssf":
            v = values.get(p.name, 0)  # a scale factor left out is 0, not "not implemented"
        else:
            v = values.get(p.name)
        sf = values.get(p.sf, 0) if p.sf else 0
        sf = 0 if sf is None else sf
        regs[p.offset : p.offset + p.width] = _encode_point(p, v, int(sf))
    return regs


def build_image(chain: Iterable[tuple[int, dict[str, Value]]]) -> list[int]:
    """'SunS', then each model as (ID, L, data), then the end marker (0xFFFF, 0)."""
    image = list(SUNS)
    for model_id, values in chain:
        model = models()[model_id]
        image += [model_id, model.length, *encode_model(model, values)]
    return image + [END_ID, 0]


@dataclass
class SimulatedSunSpec:
    """One unit id serving one model chain at ``base``; ``set`` changes values while serving."""

    unit_id: int
    chain: list[tuple[int, dict[str, Value]]]
    base: int = 40000
    image: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.image = build_image(self.chain)

    def set(self, model_id: int, **values: Value) -> None:
        for mid, vals in self.chain:
            if mid == model_id:
                vals.update(values)
                break
        else:
            raise KeyError(model_id)
        self.image = build_image(self.chain)

    def sim_device(self) -> SimDevice:
        return SimDevice(
            id=self.unit_id,
            simdata=[SimData(self.base, values=list(self.image), datatype=DataType.REGISTERS)],
            action=self._on_access,
        )

    async def _on_access(self, function_code, start_address, address, count, registers, set_values):
        offset = self.base - start_address
        registers[offset : offset + len(self.image)] = self.image
        return None


def demo_inverter(unit_id: int = 1, base: int = 40000) -> SimulatedSunSpec:
    """A 50 kW three-phase hybrid inverter with a 100 kWh battery, producing 12.3 kW."""
    return SimulatedSunSpec(unit_id, base=base, chain=[
        (1, {"Mn": "GreenGauge", "Md": "SIM-HYB-50K", "Opt": "demo", "Vr": "1.0.0", "SN": "GG-INV-0001", "DA": unit_id}),
        (103, {"A_SF": -2, "AphA": 17.83, "AphB": 17.81, "AphC": 17.85, "V_SF": -1, "PhVphA": 230.1,
               "PhVphB": 229.8, "PhVphC": 230.4, "W_SF": 1, "W": 12_300, "Hz_SF": -2, "Hz": 50.01,
               "PF_SF": -1, "PF": 99.5, "WH_SF": 0, "WH": 123_456_789, "St": 4}),
        (120, {"DERTyp": 82, "WRtg_SF": 2, "WRtg": 50_000, "WHRtg_SF": 2, "WHRtg": 100_000,
               "MaxChaRte_SF": 2, "MaxChaRte": 25_000, "MaxDisChaRte_SF": 2, "MaxDisChaRte": 25_000}),
        (124, {"WChaMax_SF": 2, "WChaMax": 25_000, "ChaState_SF": -1, "ChaState": 56.7, "ChaSt": 4}),
        (701, {"ACType": 3, "St": 2, "InvSt": 4, "ConnSt": 2, "W_SF": 0, "W": 12_300, "A_SF": -2,
               "V_SF": -1, "Hz_SF": -3, "Hz": 50.01, "PF_SF": -3, "PF": 0.995, "TotWh_SF": 0,
               "TotWhInj": 123_456_789, "TotWhAbs": 2_345_678, "WL1": 4100, "WL2": 4100, "WL3": 4100,
               "AL1": 17.83, "AL2": 17.81, "AL3": 17.85, "VL1": 230.1, "VL2": 229.8, "VL3": 230.4}),
        (702, {"W_SF": 2, "WMaxRtg": 50_000, "WChaRteMaxRtg": 25_000, "WDisChaRteMaxRtg": 25_000,
               "V_SF": 0, "VNomRtg": 230, "A_SF": 0, "AMaxRtg": 80}),
        (713, {"WH_SF": 2, "WHRtg": 100_000, "WHAvail": 54_000, "Pct_SF": -1, "SoC": 56.7, "SoH": 98.0, "Sta": 1}),
        (802, {"AHRtg_SF": 0, "AHRtg": 200, "WHRtg_SF": 2, "WHRtg": 100_000, "WChaDisChaMax_SF": 2,
               "WChaRteMax": 25_000, "WDisChaRteMax": 25_000, "SoC_SF": -1, "SoC": 56.7, "SoH_SF": 0, "SoH": 98,
               "ChaSt": 4, "LocRemCtl": 0, "Typ": 4, "State": 3, "V_SF": -1, "V": 512.3, "A_SF": -1, "A": 23.5,
               "W_SF": 0, "W": 12_040, "CellV_SF": -3, "AMax_SF": 0, "DisChaRte_SF": 0, "DoD_SF": 0, "NCyc": 321}),
    ])


def demo_pv_inverter(unit_id: int = 1, base: int = 40000) -> SimulatedSunSpec:
    """A 50 kW three-phase PV inverter (DERTyp PV), producing 12.3 kW."""
    hybrid = dict(demo_inverter(unit_id, base).chain)
    return SimulatedSunSpec(unit_id, base=base, chain=[
        (1, {**hybrid[1], "Md": "SIM-PV-50K", "SN": "GG-PV-0001"}),
        (103, hybrid[103]),
        (120, {"DERTyp": 4, "WRtg_SF": 2, "WRtg": 50_000, "VARtg_SF": 2, "VARtg": 50_000}),
        (701, {**hybrid[701], "TotWhAbs": 1_234}),   # a little taken in at night
        (702, {"W_SF": 2, "WMaxRtg": 50_000, "V_SF": 0, "VNomRtg": 230, "A_SF": 0, "AMaxRtg": 80}),
    ])


def demo_battery(unit_id: int = 3, base: int = 40000) -> SimulatedSunSpec:
    """A 100 kW / 200 kWh battery inverter (no PV: no nameplate model 120), discharging 40 kW."""
    return SimulatedSunSpec(unit_id, base=base, chain=[
        (1, {"Mn": "GreenGauge", "Md": "SIM-BAT-100K", "Vr": "1.2", "SN": "GG-BAT-0003", "DA": unit_id}),
        (701, {"ACType": 3, "St": 2, "InvSt": 4, "ConnSt": 2, "W_SF": 1, "W": 40_000, "V_SF": -1,
               "VL1": 230.2, "VL2": 230.0, "VL3": 229.7, "Hz_SF": -3, "Hz": 50.0, "TotWh_SF": 0,
               "TotWhInj": 45_678_000, "TotWhAbs": 51_234_000, "A_SF": -1, "AL1": 58.0, "AL2": 58.1, "AL3": 57.9}),
        (702, {"W_SF": 3, "WMaxRtg": 100_000, "WChaRteMaxRtg": 100_000, "WDisChaRteMaxRtg": 100_000,
               "V_SF": 0, "VNomRtg": 230, "A_SF": 0, "AMaxRtg": 160}),
        (713, {"WH_SF": 3, "WHRtg": 200_000, "WHAvail": 120_000, "Pct_SF": -1, "SoC": 60.0, "SoH": 97.5, "Sta": 1}),
        (802, {"AHRtg_SF": 0, "AHRtg": 390, "WHRtg_SF": 3, "WHRtg": 200_000, "WChaDisChaMax_SF": 3,
               "WChaRteMax": 100_000, "WDisChaRteMax": 100_000, "SoC_SF": -1, "SoC": 60.0, "SoH_SF": 0, "SoH": 97,
               "ChaSt": 5, "Typ": 4, "State": 3, "V_SF": -1, "V": 768.0, "A_SF": -1, "A": 53.0, "W_SF": 1, "W": 40_700,
               "CellV_SF": -3, "AMax_SF": 0, "DisChaRte_SF": 0, "DoD_SF": 0, "NCyc": 412}),
    ])


def demo_meter(unit_id: int = 2, base: int = 40000) -> SimulatedSunSpec:
    """A three-phase grid meter (model 203), importing 30.5 kW."""
    return SimulatedSunSpec(unit_id, base=base, chain=[
        (1, {"Mn": "GreenGauge", "Md": "SIM-METER-3P", "Vr": "2.1", "SN": "GG-MTR-0002", "DA": unit_id}),
        (203, {"A_SF": -2, "AphA": 44.1, "AphB": 44.3, "AphC": 44.0, "V_SF": -1, "PhVphA": 230.0,
               "PhVphB": 230.2, "PhVphC": 229.9, "Hz_SF": -2, "Hz": 50.0, "W_SF": 1, "W": 30_500,
               "WphA": 10_170, "WphB": 10_190, "WphC": 10_140, "PF_SF": -1, "PF": 98.0,
               "TotWh_SF": 0, "TotWhImp": 987_654_321, "TotWhExp": 12_345_678}),
    ])


async def serve(devices: list[SimulatedSunSpec], host: str = "127.0.0.1", port: int = 1502,
                framer=None) -> ModbusTcpServer:
    """Start a server in the background; ``await server.shutdown()`` stops it."""
    kwargs = {} if framer is None else {"framer": framer}
    server = ModbusTcpServer([d.sim_device() for d in devices], address=(host, port), **kwargs)
    await server.serve_forever(background=True)
    return server


def main() -> None:  # pragma: no cover - a demo entry point
    ap = argparse.ArgumentParser(description="Serve a simulated SunSpec PV inverter (unit 1), grid meter (unit 2) "
                                 "and battery (unit 3)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1502)
    args = ap.parse_args()

    async def run() -> None:
        await serve([demo_pv_inverter(1), demo_meter(2), demo_battery(3)], args.host, args.port)
        print(f"SunSpec simulator on {args.host}:{args.port} (unit 1 PV inverter, unit 2 grid meter, unit 3 battery)")
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":  # pragma: no cover
    main()
