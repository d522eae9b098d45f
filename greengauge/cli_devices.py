"""``greengauge devices``: find Modbus devices and write the site-file entry for them.

``greengauge devices scan HOST[:PORT] [--unit-ids 1-10]`` asks each unit id for a SunSpec marker
('SunS' at 40000, 0 or 50000), walks its model chain, and reports the models, the manufacturer,
model and serial number (model 1) and the nameplate (models 120, 702, 713, 802). It then prints a
``devices:`` entry per device found, with the points the device actually delivers and the role
each energy counter likely plays (inverter: pv_generation; battery: storage_charge/discharge;
meter: grid_import/export), marked for confirmation, ready to paste into the site file.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import typer
from pymodbus.exceptions import ModbusException
from rich.table import Table

from collectors import sunspec
from collectors.transport import ConnectionPool, DeviceRefused, Endpoint
from model.site import DeviceConfig
from greengauge.terminal import console, err

app = typer.Typer(help="Find Modbus devices and describe them for the site file.", no_args_is_help=True)



@app.callback()
def devices() -> None:
    """Find Modbus devices and describe them for the site file."""


#: nameplate points shown by the scan: (model, point, label, unit)
NAMEPLATE = [
    (120, "WRtg", "rated active power", "W"), (120, "VARtg", "rated apparent power", "VA"),
    (120, "WHRtg", "rated storage energy", "Wh"), (120, "MaxChaRte", "max charge rate", "W"),
    (120, "MaxDisChaRte", "max discharge rate", "W"),
    (702, "WMaxRtg", "rated active power", "W"), (702, "VAMaxRtg", "rated apparent power", "VA"),
    (702, "WChaRteMaxRtg", "max charge rate", "W"), (702, "WDisChaRteMaxRtg", "max discharge rate", "W"),
    (702, "VNomRtg", "nominal voltage", "V"), (702, "AMaxRtg", "max current", "A"),
    (713, "WHRtg", "storage energy rating", "Wh"), (713, "WHAvail", "storage energy available", "Wh"),
    (802, "WHRtg", "battery energy rating", "Wh"), (802, "AHRtg", "battery charge rating", "Ah"),
    (802, "WChaRteMax", "battery max charge rate", "W"), (802, "WDisChaRteMax", "battery max discharge rate", "W"),
]
#: the site-file role a counter of a device of this kind usually plays: proposed, for the user to confirm
ROLE_HINTS = {
    ("meter", "energy_import"): "grid_import", ("meter", "energy_export"): "grid_export",
    ("inverter", "energy_export"): "pv_generation",
    ("battery", "energy_import"): "storage_charge", ("battery", "energy_export"): "storage_discharge",
}
#: SunSpec model 120 DERTyp: the DER types that include PV
DERTYP_PV = {4: "PV", 82: "PV_STOR"}


def parse_target(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not host:
        return target, 502
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise typer.BadParameter(f"{target!r}: the port must be a number 1-65535")
    return host, int(port)


def parse_unit_ids(spec: str) -> list[int]:
    """'1-10', '1,2,240' or a mix: '1-3,240'."""
    ids: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise typer.BadParameter(f"{spec!r}: use unit ids like 1-10 or 1,2,240")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if not 0 <= lo <= hi <= 247:
            raise typer.BadParameter(f"{part!r}: unit ids run from 0 to 247")
        ids += [i for i in range(lo, hi + 1) if i not in ids]
    return ids


@dataclass
class Found:
    unit_id: int
    device: sunspec.SunSpecDevice

    @property
    def kind(self) -> str:
        """meter, inverter (PV), battery, hybrid (PV and battery behind one AC side) or device.

        Inverter models with storage models are a battery inverter, unless the nameplate (120
        DERTyp) says the DER includes PV: then a hybrid, whose AC counters mix PV and battery.
        """
        roles = {sunspec.role_of(i) for i in self.device.model_ids}
        if "inverter" in roles and "storage" in roles:
            return "hybrid" if (self.device.decoded(120) or {}).get("DERTyp") in DERTYP_PV else "battery"
        if "inverter" in roles:
            return "inverter"
        if "storage" in roles:
            return "battery"
        if "meter" in roles:
            return "meter"
        return "device"


async def scan_units(endpoint: Endpoint, unit_ids: list[int]) -> list[Found]:
    pool = ConnectionPool()
    conn = pool.acquire(endpoint)
    found: list[Found] = []
    try:
        for unit in unit_ids:
            async def read(address: int, count: int, unit: int = unit) -> list[int]:
                return await conn.read("holding", address, count, unit)

            try:
                dev = await sunspec.scan(read)
            except DeviceRefused as exc:
                err.print(f"unit {unit}: SunSpec marker found but the chain could not be read: {exc}")
                continue
            except (ModbusException, OSError, asyncio.TimeoutError) as exc:
                err.print(f"unit {unit}: no answer ({type(exc).__name__})", highlight=False)
                conn.close()
                continue
            if dev is None:
                err.print(f"unit {unit}: answers, but no SunSpec marker at {sunspec.BASE_ADDRESSES}")
                continue
            found.append(Found(unit, dev))
    finally:
        pool.release(conn)
    return found


def _fmt(value) -> str:
    if value is None:
        return "-"
    f = float(value)
    return f"{f:,.0f}" if f == int(f) else f"{f:,.3f}".rstrip("0")


def describe(f: Found) -> None:
    dev = f.device
    common = dev.decoded(1) or {}
    console.print(f"\n[bold]unit {f.unit_id}[/bold]: SunSpec at {dev.base} — "
                  f"{common.get('Mn') or '?'} {common.get('Md') or '?'}, serial {common.get('SN') or '?'}, "
                  f"version {common.get('Vr') or '?'}", highlight=False)
    table = Table("model", "name", "registers", "length")
    for b in dev.blocks:
        m = b.model
        table.add_row(str(b.id), m.label if m else "(not decoded)", f"{b.address}-{b.address + 1 + b.length}",
                      str(b.length))
    console.print(table)
    rows = []
    for model_id, point, label, unit in NAMEPLATE:
        values = dev.decoded(model_id)
        if values and values.get(point) is not None:
            rows.append((f"{model_id} {point}", label, f"{_fmt(values[point])} {unit}"))
    if rows:
        plate = Table("point", "nameplate", "value")
        for r in rows:
            plate.add_row(*r)
        console.print(plate)


def device_entry(f: Found, endpoint: Endpoint) -> str:
    """The YAML of one site-file device entry; validated against the site model before printing."""
    q = f.device.quantities()
    kind = f.kind
    name = f"{'inverter' if kind == 'hybrid' else kind}-{f.unit_id}"
    rated = q.get("capacity_w")
    common = f.device.decoded(1) or {}
    lines = [f"  - name: {name}   # {common.get('Mn') or ''} {common.get('Md') or ''} SN {common.get('SN') or '?'}".rstrip(),
             "    profile: sunspec"]
    if endpoint.transport != "tcp":
        lines.append(f"    transport: {endpoint.transport}")
    lines += [f"    host: {endpoint.host}", f"    port: {endpoint.port}", f"    unit_id: {f.unit_id}",
              f"    sunspec_base: {f.device.base}"]
    roles = {i: sunspec.role_of(i) for i in f.device.model_ids}
    only = None
    if kind != "meter" and "meter" in roles.values():
        # a meter answers on the same unit id: take this entry's values from the device's own models
        only = [i for i, r in roles.items() if r not in ("meter", None)]
        q = f.device.quantities(set(only))
        lines.append(f"    sunspec_models: [{', '.join(map(str, only))}]")
    lines.append("    points:")
    points = []
    for quantity in sorted(k for k, v in q.items() if v is not None):
        point: dict = {"quantity": quantity}
        hint = ROLE_HINTS.get((kind, quantity))
        if hint:
            point["role"] = hint
        if quantity in ("energy_import", "energy_export") and rated:
            point["rated_power_w"] = int(rated)
        points.append(point)
        item = "{" + ", ".join(f"{k}: {v}" for k, v in point.items()) + "}"
        note = ""
        if hint:
            note = f"   # role proposed for a {kind}: confirm"
        elif kind == "hybrid" and quantity in ("energy_import", "energy_export"):
            note = "   # hybrid inverter: AC counter of PV and battery together; no role proposed"
        lines.append(f"      - {item}{note}")
    if only is not None:
        meters = [i for i, r in roles.items() if r == "meter"]
        lines.append(f"    # meter model(s) {meters} answer on this unit id too; a site file holds one device per "
                     "unit id, so they are left out")
    DeviceConfig(name=name, profile="sunspec", transport=endpoint.transport, host=endpoint.host,
                 port=endpoint.port, unit_id=f.unit_id, sunspec_base=f.device.base, sunspec_models=only,
                 points=points)
    return "\n".join(lines)


@app.command("scan")
def scan(
    target: str = typer.Argument(..., help="HOST or HOST:PORT of the device or serial gateway"),
    unit_ids: str = typer.Option("1", "--unit-ids", help="unit ids to ask, e.g. 1-10 or 1,2,240"),
    transport: str = typer.Option("tcp", "--transport", help="tcp or rtu-over-tcp (serial gateways)"),
    timeout_s: float = typer.Option(1.0, "--timeout", help="seconds to wait for each answer"),
) -> None:
    """Find SunSpec devices behind HOST[:PORT] and print their site-file entries."""
    if transport not in ("tcp", "rtu-over-tcp"):
        raise typer.BadParameter("--transport is tcp or rtu-over-tcp")
    host, port = parse_target(target)
    endpoint = Endpoint(transport, host, port, timeout_s=timeout_s)
    ids = parse_unit_ids(unit_ids)
    try:
        found = asyncio.run(scan_units(endpoint, ids))
    except (ModbusException, OSError) as exc:
        err.print(f"[red]error:[/red] cannot reach {endpoint}: {exc}", highlight=False)
        raise typer.Exit(2)
    if not found:
        err.print(f"no SunSpec device found at {endpoint} (unit ids {unit_ids})", highlight=False)
        raise typer.Exit(1)
    for f in found:
        describe(f)
    console.print("\n# paste under devices: in the site file. Roles are proposed from each device's SunSpec models:\n"
                  "# confirm each line marked 'confirm' (the role also sets the sign of the device's power: "
                  "docs/devices.md)", highlight=False)
    console.print("devices:", highlight=False)
    for f in found:
        console.print(device_entry(f, endpoint), highlight=False, markup=False)
