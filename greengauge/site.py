"""The site configuration: one YAML file describes an enterprise, its site, devices and points.

Validated with pydantic; errors name the file, the line and the field (see
:mod:`greengauge.yamlfile`). ``greengauge site apply FILE`` upserts it into the database.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from collectors.profile import Profile, load_profile
from collectors.quantities import QUANTITIES
from greengauge.yamlfile import ConfigError, load_model

Role = Literal["grid_import", "grid_export", "pv_generation", "storage_charge", "storage_discharge", "subproject"]
CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParkConfig(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str


class EnterpriseConfig(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str
    timezone: str = "Asia/Shanghai"
    industry: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from None
        return value


class SiteInfo(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str


class PointConfig(_Strict):
    quantity: str
    name: str | None = Field(default=None, description="defaults to enterprise.site.device.quantity")
    role: Role | None = None
    subproject: str | None = Field(default=None, description="name of the sub-metered project, with role subproject")
    rated_power_w: int | None = Field(default=None, gt=0, description="the most power this point can carry [W]")

    @model_validator(mode="after")
    def _check(self) -> PointConfig:
        if self.quantity not in QUANTITIES:
            raise ValueError(f"unknown quantity {self.quantity!r} (known: {', '.join(sorted(QUANTITIES))})")
        q = QUANTITIES[self.quantity]
        if self.role is not None and (q.kind != "counter" or q.unit != "Wh"):
            what = q.kind if q.kind != "counter" else f"counter in {q.unit}"
            raise ValueError(
                f"role {self.role!r} needs an electrical energy counter (Wh), but {self.quantity!r} is a {what}"
            )
        if (self.role == "subproject") != (self.subproject is not None):
            raise ValueError("role 'subproject' and a 'subproject' name go together")
        return self


SUNSPEC_PROFILE = "sunspec"  # not a file: the device is read by walking its SunSpec model chain


class DeviceConfig(_Strict):
    name: str = Field(pattern=CODE_PATTERN)
    profile: str = Field(description="a profile under collectors/profiles/, or 'sunspec'")
    transport: Literal["tcp", "rtu-over-tcp", "serial"] = Field(
        default="tcp", description="Modbus TCP; RTU frames over TCP (serial gateways); serial RTU"
    )
    host: str | None = Field(default=None, description="required for tcp and rtu-over-tcp")
    port: int = Field(default=502, ge=1, le=65535)
    serial_port: str | None = Field(default=None, description="e.g. /dev/ttyUSB0; required for serial")
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    unit_id: int = Field(default=1, ge=0, le=247)
    timeout_s: float = Field(default=3.0, gt=0)
    poll_interval_s: float = Field(default=60.0, gt=0)
    ct_ratio: Decimal = Field(default=Decimal(1), gt=0, description="current transformer ratio, e.g. 200/5 = 40")
    pt_ratio: Decimal = Field(default=Decimal(1), gt=0, description="voltage transformer ratio, e.g. 10000/100 = 100")
    sunspec_base: int | None = Field(
        default=None, description="register of 'SunS' (0, 40000 or 50000); found by scanning when omitted"
    )
    sunspec_models: list[int] | None = Field(
        default=None, description="SunSpec models to take values from (all when omitted), e.g. only the "
        "inverter's when a meter answers on the same unit id"
    )
    points: list[PointConfig] | None = Field(
        default=None, description="the quantities to store; all of the profile's when omitted"
    )

    @field_validator("profile")
    @classmethod
    def _profile_exists(cls, value: str) -> str:
        if value != SUNSPEC_PROFILE:
            load_profile(value)  # ConfigError names the known profiles
        return value

    @model_validator(mode="after")
    def _points_in_profile(self) -> DeviceConfig:
        if self.transport == "serial":
            if not self.serial_port:
                raise ValueError("transport 'serial' needs serial_port (e.g. /dev/ttyUSB0)")
        elif not self.host:
            raise ValueError(f"transport {self.transport!r} needs host")
        if self.profile == SUNSPEC_PROFILE:
            from collectors.sunspec import sunspec_quantities

            mapped = sunspec_quantities()
            if not self.points:
                raise ValueError("a sunspec device lists its points (greengauge devices scan prints them)")
            if self.ct_ratio != 1 or self.pt_ratio != 1:
                raise ValueError("ct_ratio/pt_ratio do not apply to SunSpec devices (they report primary values)")
            if self.sunspec_models is not None:
                from collectors.sunspec import models

                unknown = sorted(set(self.sunspec_models) - set(models()))
                if unknown:
                    raise ValueError(f"sunspec_models: no definition for model(s) {unknown} "
                                     f"(known: {', '.join(map(str, sorted(models())))})")
        elif self.sunspec_models is not None or self.sunspec_base is not None:
            raise ValueError("sunspec_models and sunspec_base go with profile 'sunspec'")
        else:
            profile = load_profile(self.profile)
            mapped = {r.quantity for r in profile.registers}
            if (self.ct_ratio != 1 or self.pt_ratio != 1) and not profile.uses_ct_pt:
                raise ValueError(
                    f"profile {self.profile!r} reports primary-side values (no register is marked ct_pt), "
                    "so ct_ratio/pt_ratio would change nothing; remove them"
                )
        seen: set[str] = set()
        for p in self.points or []:
            if p.quantity not in mapped:
                raise ValueError(
                    f"profile {self.profile!r} has no register for {p.quantity!r} (it has: {', '.join(sorted(mapped))})"
                )
            if p.quantity in seen:
                raise ValueError(f"quantity {p.quantity!r} is listed twice")
            seen.add(p.quantity)
        return self

    @property
    def endpoint(self) -> str:
        """Where the device is reached; devices with the same endpoint share one connection."""
        if self.transport == "serial":
            return f"serial:{self.serial_port}"
        return f"{self.transport}:{self.host}:{self.port}"

    @property
    def profile_model(self) -> Profile:
        if self.profile == SUNSPEC_PROFILE:
            raise ValueError(f"device {self.name!r} is a SunSpec device and has no register profile")
        return load_profile(self.profile)

    def point_configs(self) -> list[PointConfig]:
        if self.points is not None:
            return list(self.points)
        return [PointConfig(quantity=r.quantity) for r in self.profile_model.registers]


class SimulationConfig(_Strict):
    """Parameters of the simulated plant served by ``greengauge simulate`` (and the demo)."""

    pv_peak_w: int = Field(default=1_200_000, gt=0)
    sunrise_h: float = Field(default=5.5, ge=0, lt=24)
    sunset_h: float = Field(default=19.0, gt=0, le=24)
    load_base_w: int = Field(default=250_000, ge=0, description="night and weekend load")
    load_shift_w: int = Field(default=450_000, ge=0, description="extra load while a shift runs")
    shifts: list[tuple[float, float]] = Field(default=[(8.0, 12.0), (13.0, 17.5), (18.5, 22.0)])
    battery_capacity_wh: int = Field(default=1_000_000, ge=0)
    battery_power_w: int = Field(default=250_000, ge=0)
    battery_efficiency: float = Field(default=0.92, gt=0, le=1, description="round trip")
    battery_reserve: float = Field(default=0.10, ge=0, lt=1, description="state of charge never discharged")
    evening_peak: tuple[float, float] = Field(default=(17.0, 22.0), description="hours the battery discharges")
    step_s: int = Field(default=300, gt=0, description="simulation step; counters update once a step")


# ---- PV / storage projects (rule R3, 晋政规〔2024〕2号 §三(一)) -----------------------------------
# A project names the points that meter it as "device" (the device's point with the matching
# role) or "device.quantity". Nameplates left out are read from the devices' SunSpec nameplate
# gauges (capacity_w: models 120/702; storage_capacity_wh: models 713/802) when reports run.

PROJECT_LINK_ROLES: dict[str, str] = {"generation": "pv_generation", "charge": "storage_charge",
                                      "discharge": "storage_discharge"}


class ProjectPvConfig(_Strict):
    capacity_w: int | None = Field(default=None, gt=0, description="installed capacity [W]; when omitted, the "
                                   "sum of the nameplate devices' latest SunSpec capacity_w readings")
    commissioned: date = Field(description="local commissioning day (并网投产)")
    generation: list[str] = Field(min_length=1, description="points metering the PV generation")
    nameplate_devices: list[str] | None = Field(
        default=None,
        description="devices whose SunSpec nameplate gives the capacity (default: the generation points' devices)")


class ProjectStorageConfig(_Strict):
    power_w: int | None = Field(default=None, gt=0, description="rated power [W]; default: SunSpec capacity_w")
    energy_wh: int | None = Field(default=None, gt=0,
                                  description="rated energy [Wh]; default: SunSpec storage_capacity_wh")
    commissioned: date | None = Field(default=None, description="default: the PV's commissioning day")
    electrochemical: bool = True
    charge: list[str] = Field(default_factory=list, description="points metering the storage charge")
    discharge: list[str] = Field(default_factory=list, description="points metering the storage discharge")
    nameplate_devices: list[str] | None = Field(
        default=None, description="devices whose SunSpec nameplate gives power/energy (default: the charge and "
        "discharge points' devices)")


class ProjectConfig(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    pv: ProjectPvConfig
    storage: ProjectStorageConfig | None = None

    def links(self) -> list[tuple[str, str]]:
        """(link, point reference) pairs; link is generation, charge or discharge."""
        out = [("generation", r) for r in self.pv.generation]
        if self.storage:
            out += [("charge", r) for r in self.storage.charge] + [("discharge", r) for r in self.storage.discharge]
        return out


def resolve_point(devices: list[DeviceConfig], ref: str, role: str) -> tuple[DeviceConfig, PointConfig]:
    """The point a project reference names: ``device`` (its point with ``role``) or ``device.quantity``.

    Raises ``ValueError`` naming the reference and what exists.
    """
    dev_name, _, quantity = ref.partition(".")
    dev = next((d for d in devices if d.name == dev_name), None)
    if dev is None:
        raise ValueError(f"{ref!r}: no device {dev_name!r} (devices: {', '.join(d.name for d in devices)})")
    pts = dev.point_configs()
    if quantity:
        p = next((p for p in pts if p.quantity == quantity), None)
        if p is None:
            raise ValueError(f"{ref!r}: device {dev_name!r} has no point {quantity!r} "
                             f"(it has: {', '.join(p.quantity for p in pts)})")
    else:
        found = [p for p in pts if p.role == role]
        if len(found) != 1:
            raise ValueError(f"{ref!r}: device {dev_name!r} has {len(found)} points with role {role!r}; "
                             f"name the point as '{dev_name}.QUANTITY'")
        p = found[0]
    q = QUANTITIES[p.quantity]
    if q.kind != "counter" or q.unit != "Wh":
        raise ValueError(f"{ref!r}: {p.quantity!r} is not an energy counter (a project is metered by Wh counters)")
    return dev, p


def _check_projects(projects: list[ProjectConfig], info: ValidationInfo) -> list[ProjectConfig]:
    devices: list[DeviceConfig] | None = info.data.get("devices")
    codes: set[str] = set()
    used: dict[tuple[str, str], str] = {}
    for pr in projects:
        if pr.code in codes:
            raise ValueError(f"project code {pr.code!r} is used twice")
        codes.add(pr.code)
        if devices is None:  # the devices are wrong already; that error is reported
            continue
        names = {d.name for d in devices}
        for link, ref in pr.links():
            try:
                dev, p = resolve_point(devices, ref, PROJECT_LINK_ROLES[link])
            except ValueError as exc:
                raise ValueError(f"project {pr.code!r} {link}: {exc}") from None
            key = (f"{dev.name}.{p.quantity}", link)
            if key in used:
                raise ValueError(f"project {pr.code!r} {link}: point {key[0]} already meters project {used[key]!r}")
            used[key] = pr.code
        for part in (pr.pv, pr.storage):
            for d in (part.nameplate_devices or []) if part else []:
                if d not in names:
                    raise ValueError(f"project {pr.code!r}: nameplate device {d!r} does not exist")
    return projects


Projects = Annotated[list[ProjectConfig], AfterValidator(_check_projects)]


class SiteConfig(_Strict):
    park: ParkConfig | None = None
    enterprise: EnterpriseConfig
    site: SiteInfo
    devices: list[DeviceConfig] = Field(min_length=1)
    simulation: SimulationConfig = SimulationConfig()
    projects: Projects = Field(default_factory=list, description="PV/storage projects and the points metering them")

    @model_validator(mode="after")
    def _unique(self) -> SiteConfig:
        names: set[str] = set()
        endpoints: set[tuple[str, int]] = set()
        for d in self.devices:
            if d.name in names:
                raise ValueError(f"device name {d.name!r} is used twice")
            names.add(d.name)
            endpoint = (d.endpoint, d.unit_id)
            if endpoint in endpoints:
                raise ValueError(f"device {d.name!r}: {d.endpoint} unit {d.unit_id} is already used by another device")
            endpoints.add(endpoint)
        point_names = [n for n, _, _ in self.points()]
        dupes = {n for n in point_names if point_names.count(n) > 1}
        if dupes:
            raise ValueError(f"point names used twice: {', '.join(sorted(dupes))}")
        return self

    def point_name(self, device: DeviceConfig, point: PointConfig) -> str:
        return point.name or f"{self.enterprise.code}.{self.site.code}.{device.name}.{point.quantity}"

    def points(self) -> list[tuple[str, DeviceConfig, PointConfig]]:
        return [(self.point_name(d, p), d, p) for d in self.devices for p in d.point_configs()]

    def devices_with_role(self, role: Role) -> list[tuple[DeviceConfig, PointConfig]]:
        return [(d, p) for _, d, p in self.points() if p.role == role]


def load_site(path: Path | str) -> SiteConfig:
    """Load and validate a site file; :class:`ConfigError` names file, line and field."""
    return load_model(path, SiteConfig)


__all__ = ["ConfigError", "SiteConfig", "DeviceConfig", "PointConfig", "ProjectConfig", "load_site", "resolve_point"]
