"""A simulated plant served over Modbus TCP on loopback: grid meter, PV meter, battery meter.

The plant is driven by a plausible day: a PV bell curve with passing clouds, a factory load with
shifts, a battery that charges from PV surplus at midday and discharges in the evening peak.
Energy is integer Wh per step and the grid meter closes the balance exactly each step, so the
counters are consistent with the power and the simulator's own totals are the truth a test can
check the whole pipeline against.

Registers are served from the site file's devices and their profiles: whichever quantity a point
maps to a role (``grid_import``, ``pv_generation``, ``storage_charge``…) carries that flow's
counter. Values are computed when a device is read, for the last completed simulation step, and
the device clock register carries that step's time, so a read is always a consistent snapshot.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pymodbus.client import ModbusBaseClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.clock import Clock
from model.profile import ClockSpec, RegisterSpec, _DATATYPE
from model.site import SUNSPEC_PROFILE, DeviceConfig, SimulationConfig, SiteConfig

#: counters start here, as on meters that have been in service for a while [Wh]
INITIAL_COUNTERS_WH = {
    "grid_import": 12_345_678,
    "grid_export": 1_234_567,
    "pv_generation": 3_456_789,
    "storage_charge": 456_789,
    "storage_discharge": 401_234,
    "subproject": 2_345_678,
}


@dataclass
class Step:
    """Energy of one simulation step, integer Wh, and the state at its end."""

    end: datetime
    load_wh: int
    pv_wh: int
    charge_wh: int
    discharge_wh: int
    import_wh: int
    export_wh: int
    subproject_wh: int
    soc_pct: float


@dataclass
class PlantState:
    counters_wh: dict[str, int] = field(default_factory=lambda: dict(INITIAL_COUNTERS_WH))
    stored_wh: float = 0.0
    power_w: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ["grid", "pv", "battery", "load"], 0.0))
    soc_pct: float = 0.0
    time: datetime | None = None


class Plant:
    """The physics: deterministic for a start time and seed, advanced in fixed steps."""

    def __init__(self, cfg: SimulationConfig, start: datetime, tz: str, seed: int = 7,
                 subproject_share: float = 0.3) -> None:
        self.cfg = cfg
        self.tz = ZoneInfo(tz)
        self.start = start.astimezone(timezone.utc)
        self.step = timedelta(seconds=cfg.step_s)
        self.rng = random.Random(seed)
        self.subproject_share = subproject_share
        self.state = PlantState(time=self.start)
        self.state.stored_wh = cfg.battery_capacity_wh * cfg.battery_reserve
        self.state.soc_pct = 100.0 * cfg.battery_reserve
        self.steps: list[Step] = []
        self._cloud = 1.0
        # power shown before the first step ends: the plant as it runs at the start
        pv, load = self.pv_w(self.start), self.load_w(self.start)
        self.state.power_w = {"grid": load - pv, "pv": pv, "battery": 0.0, "load": load,
                              "subproject": self.shift_w(self.start) * subproject_share}

    # -- profiles of the day ------------------------------------------------------------------
    def _hour(self, t: datetime) -> float:
        local = t.astimezone(self.tz)
        return local.hour + local.minute / 60 + local.second / 3600

    def pv_w(self, t: datetime) -> float:
        c = self.cfg
        h = self._hour(t)
        if not c.sunrise_h < h < c.sunset_h:
            return 0.0
        x = (h - c.sunrise_h) / (c.sunset_h - c.sunrise_h)
        # passing clouds: a slowly wandering attenuation between 0.55 and 1
        self._cloud = min(1.0, max(0.55, self._cloud + self.rng.uniform(-0.08, 0.08)))
        return c.pv_peak_w * math.sin(math.pi * x) ** 1.5 * self._cloud

    def shift_w(self, t: datetime) -> float:
        """Shift load with 15-minute ramps at the start and end of each shift."""
        h = self._hour(t)
        level = 0.0
        for start, end in self.cfg.shifts:
            ramp = 0.25
            if start <= h < end:
                level = max(level, min(1.0, (h - start) / ramp, (end - h) / ramp))
        return self.cfg.load_shift_w * level

    def load_w(self, t: datetime) -> float:
        return self.cfg.load_base_w * (1 + self.rng.uniform(-0.03, 0.03)) + self.shift_w(t)

    # -- stepping -------------------------------------------------------------------------------
    def advance_to(self, t: datetime) -> None:
        """Run every whole step that has ended by ``t``."""
        while self.state.time + self.step <= t:
            self._do_step()

    def _do_step(self) -> None:
        c, s = self.cfg, self.state
        mid = s.time + self.step / 2
        hours = c.step_s / 3600
        pv_wh = round(self.pv_w(mid) * hours)
        shift_w = self.shift_w(mid)
        load_wh = round(self.load_w(mid) * hours)
        sub_wh = round(shift_w * self.subproject_share * hours)
        eff = math.sqrt(c.battery_efficiency)  # one way
        room_wh = c.battery_capacity_wh - s.stored_wh
        avail_wh = s.stored_wh - c.battery_capacity_wh * c.battery_reserve
        limit_wh = c.battery_power_w * hours
        charge_wh = discharge_wh = 0
        h = self._hour(mid)
        if pv_wh > load_wh:  # charge from PV surplus only, never from the grid
            charge_wh = int(min(pv_wh - load_wh, limit_wh, max(room_wh, 0) / eff))
        elif c.evening_peak[0] <= h < c.evening_peak[1] and load_wh > pv_wh:
            discharge_wh = int(min(load_wh - pv_wh, limit_wh, max(avail_wh, 0) * eff))
        s.stored_wh += charge_wh * eff - discharge_wh / eff
        net = load_wh - pv_wh - discharge_wh + charge_wh
        import_wh, export_wh = max(net, 0), max(-net, 0)
        for role, wh in (("grid_import", import_wh), ("grid_export", export_wh), ("pv_generation", pv_wh),
                         ("storage_charge", charge_wh), ("storage_discharge", discharge_wh),
                         ("subproject", sub_wh)):
            s.counters_wh[role] += wh
        s.time = s.time + self.step
        to_w = 1 / hours
        s.power_w = {"grid": net * to_w, "pv": pv_wh * to_w, "battery": (charge_wh - discharge_wh) * to_w,
                     "load": load_wh * to_w, "subproject": sub_wh * to_w}
        s.soc_pct = 100.0 * s.stored_wh / c.battery_capacity_wh if c.battery_capacity_wh else 0.0
        self.steps.append(Step(s.time, load_wh, pv_wh, charge_wh, discharge_wh, import_wh, export_wh,
                               sub_wh, s.soc_pct))

    def totals(self, start: datetime, end: datetime) -> dict[str, int]:
        """The simulator's own energy totals for steps ending in (start, end] [Wh]."""
        keys = ["load_wh", "pv_wh", "charge_wh", "discharge_wh", "import_wh", "export_wh", "subproject_wh"]
        sel = [st for st in self.steps if start < st.end <= end]
        return {k: sum(getattr(st, k) for st in sel) for k in keys}


# -- serving the plant over Modbus ----------------------------------------------------------------

_POWER_KEY = {"grid_import": "grid", "grid_export": "grid", "pv_generation": "pv",
              "storage_charge": "battery", "storage_discharge": "battery", "subproject": "subproject"}


def _encode(spec: RegisterSpec | ClockSpec, raw: int | float) -> list[int]:
    if spec.type.startswith("float"):
        value = float(raw)
    else:
        value = int(round(raw))
        bits = int(spec.type[-2:]) if spec.type[-2:].isdigit() else 16
        if spec.type.startswith("uint"):
            value %= 2**bits
    return ModbusBaseClient.convert_to_registers(value, _DATATYPE[spec.type], word_order=spec.word_order)


class SimulatedDevice:
    def __init__(self, plant: Plant, clock: Clock, device: DeviceConfig) -> None:
        self.plant, self.clock, self.device = plant, clock, device
        self.profile = device.profile_model
        self.roles = {p.quantity: p.role for p in device.point_configs() if p.role}
        kinds = {_POWER_KEY[r] for r in self.roles.values()}
        self.power_key = kinds.pop() if len(kinds) == 1 else "grid"
        specs: list = list(self.profile.registers) + ([self.profile.clock] if self.profile.clock else [])
        self.low = min(s.address for s in specs)
        self.high = max(s.address + s.count for s in specs)

    def values(self) -> dict[str, float]:
        s = self.plant.state
        # the plant's power in our stored convention (grid + import, PV + generation, battery +
        # discharge; docs/devices.md "Power sign"), served as the meter measures it: positive
        # when its energy_import counts up
        stored = s.power_w.get(self.power_key, 0.0)
        if self.power_key == "battery":
            stored = -stored  # the plant keeps battery power positive on charge
        power = stored * self.device.power_sign
        out: dict[str, float] = {}
        for reg in self.profile.registers:
            q = reg.quantity
            if q in self.roles:
                out[q] = s.counters_wh[self.roles[q]]
            elif reg.quantity in ("energy_import", "energy_export"):
                out[q] = 0  # the flow this device does not carry
            elif q == "active_power":
                out[q] = power
            elif q.startswith("active_power_l"):
                out[q] = power / 3
            elif q.startswith("voltage_l"):
                out[q] = 230.0 + (int(q[-1]) - 2) * 0.8
            elif q.startswith("current_l"):
                out[q] = abs(power) / 3 / 230.0
            elif q == "state_of_charge":
                out[q] = s.soc_pct
            elif q == "frequency":
                out[q] = 50.0
            elif q == "power_factor":
                out[q] = 0.98
        return out

    def sim_device(self) -> SimDevice:
        return SimDevice(
            id=self.device.unit_id,
            simdata=[SimData(self.low, count=self.high - self.low, values=0, datatype=DataType.REGISTERS)],
            action=self._on_access,
        )

    async def _on_access(self, function_code, start_address, address, count, registers, set_values):
        self.plant.advance_to(self.clock.now())
        values = self.values()
        for reg in self.profile.registers:
            raw = float(values[reg.quantity]) / float(reg.factor)
            regs = _encode(reg, raw)
            registers[reg.address - start_address : reg.address - start_address + len(regs)] = regs
        if self.profile.clock is not None:
            c = self.profile.clock
            regs = _encode(c, self.plant.state.time.timestamp())
            registers[c.address - start_address : c.address - start_address + len(regs)] = regs
        return None


class SimulatedSite:
    """Every device of a site file, each on its host, port and unit id."""

    def __init__(self, site: SiteConfig, clock: Clock, start: datetime, seed: int = 7) -> None:
        self.site = site
        self.clock = clock
        self.plant = Plant(site.simulation, start, site.enterprise.timezone, seed=seed)
        self.devices = [SimulatedDevice(self.plant, clock, d) for d in site.devices if d.profile != SUNSPEC_PROFILE]
        #: SunSpec devices are served by collectors.sunspec_sim, not by the plant simulator
        self.skipped = [d.name for d in site.devices if d.profile == SUNSPEC_PROFILE]
        self.servers: list[ModbusTcpServer] = []

    async def start(self) -> None:
        by_endpoint: dict[tuple[str, int], list[SimDevice]] = {}
        for dev in self.devices:
            by_endpoint.setdefault((dev.device.host, dev.device.port), []).append(dev.sim_device())
        for (host, port), sims in by_endpoint.items():
            server = ModbusTcpServer(sims, address=(host, port))
            await server.serve_forever(background=True)
            self.servers.append(server)

    async def stop(self) -> None:
        for server in self.servers:
            await server.shutdown()
        self.servers.clear()
