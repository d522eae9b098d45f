"""The site configuration: one YAML file describes an enterprise, its site, devices and points.

Validated with pydantic; errors name the file, the line and the field (see
:mod:`model.yamlfile`). ``greengauge site apply FILE`` upserts it into the database.
"""

from __future__ import annotations

import os
import ssl
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from model.profile import Profile, load_profile
from model.quantities import QUANTITIES, unit_factor
from model.yamlfile import ConfigError, load_model

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
    counter_rollover_wh: float | None = Field(
        default=None, gt=0, allow_inf_nan=False,
        description="the stored (primary-side) counter's wrap width [Wh], when the profile cannot tell it")

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

#: the power gauges whose sign follows the device's role (docs/devices.md, "Power sign")
POWER_QUANTITIES = frozenset({"active_power", "active_power_l1", "active_power_l2", "active_power_l3"})
#: +1 where a role's counter counts the direction its power is positive in: grid power is positive
#: on import, PV power on generation, battery power on discharge, a sub-meter's on consumption
_ROLE_POLARITY = {"grid_import": 1, "grid_export": -1, "pv_generation": 1, "storage_discharge": 1,
                  "storage_charge": -1, "subproject": 1}


def power_sign(points: list[PointConfig]) -> Literal[1, -1]:
    """The factor from a device's native power (positive when its ``energy_import`` counts up) to
    the stored one (positive in its role's direction): -1 when the role's positive direction is
    the one ``energy_export`` counts, e.g. a PV meter whose export is the generation.

    Raises ``ValueError`` when the device's roles ask for opposite signs.
    """
    signs = {}
    for p in points:
        if p.role is not None and p.quantity in ("energy_import", "energy_export"):
            signs[p.role] = _ROLE_POLARITY[p.role] * (1 if p.quantity == "energy_import" else -1)
    if len(set(signs.values())) > 1:
        described = ", ".join(f"{p.role} on {p.quantity}" for p in points if p.role in signs)
        raise ValueError(f"roles {described} give this device's power opposite signs (grid power is positive on "
                         "import, PV power on generation, battery power on discharge): one device plays one part")
    return next(iter(signs.values()), 1)


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
            from model.sunspec_models import sunspec_quantities

            mapped = sunspec_quantities()
            if not self.points:
                raise ValueError("a sunspec device lists its points (greengauge devices scan prints them)")
            if self.ct_ratio != 1 or self.pt_ratio != 1:
                raise ValueError("ct_ratio/pt_ratio do not apply to SunSpec devices (they report primary values)")
            if self.sunspec_models is not None:
                from model.sunspec_models import models

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
        power_sign(self.points or [])
        return self

    @property
    def power_sign(self) -> Literal[1, -1]:
        """Native power (positive when energy_import counts up) times this is the stored power."""
        return power_sign(self.points or [])

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


class MqttTls(_Strict):
    """TLS to the broker; all paths are PEM files. ``enabled`` with no paths uses the system CAs.

    The files are checked when the site file is loaded (``site check``, ``collect``): a CA file that
    is missing or no PEM certificate would otherwise show only when the collector first connects.
    """

    enabled: bool = True
    ca_certs: str | None = None
    certfile: str | None = Field(default=None, description="client certificate, for brokers that require one")
    keyfile: str | None = None
    insecure: bool = Field(default=False, description="skip the broker host name check (test brokers only)")

    @field_validator("ca_certs")
    @classmethod
    def _ca_loads(cls, value: str | None) -> str | None:
        if value is not None:
            _readable(value, "CA file")
            try:
                ssl.create_default_context(cafile=value)
            except (ssl.SSLError, ValueError) as exc:
                raise ValueError(f"CA file {value!r} holds no PEM certificate ({exc})") from None
        return value

    @field_validator("certfile", "keyfile")
    @classmethod
    def _files_exist(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _readable(value, "client certificate" if info.field_name == "certfile" else "client key")
        return value

    @model_validator(mode="after")
    def _pair(self) -> MqttTls:
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("keyfile needs certfile (the client certificate it belongs to)")
        if self.certfile is not None:
            try:
                ssl.create_default_context().load_cert_chain(self.certfile, self.keyfile)
            except (ssl.SSLError, ValueError) as exc:
                raise ValueError(f"client certificate {self.certfile!r} / key {self.keyfile!r} do not load "
                                 f"({exc})") from None
        return self


def _readable(path: str, what: str) -> None:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what} {path!r} not found" + ("" if p.is_absolute() else
                         f" (relative to the working directory {Path.cwd()})"))
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"{what} {path!r} cannot be read ({exc.strerror})") from None


class MqttDeviceConfig(_Strict):
    """A source behind the broker (a gateway or a meter that publishes): a device row of its own."""

    name: str = Field(pattern=CODE_PATTERN)
    interval_s: float = Field(default=60.0, gt=0, description="how often it publishes: stale-device, gap and "
                              "completeness findings expect a message this often")
    points: list[PointConfig] = Field(min_length=1)

    def point_configs(self) -> list[PointConfig]:
        return list(self.points)

    @model_validator(mode="after")
    def _unique(self) -> MqttDeviceConfig:
        quantities = [p.quantity for p in self.points]
        dupes = {q for q in quantities if quantities.count(q) > 1}
        if dupes:
            raise ValueError(f"quantity listed twice: {', '.join(sorted(dupes))}")
        power_sign(self.points)  # its power is stored with its role's sign, as a Modbus device's
        return self

    @property
    def power_sign(self) -> Literal[1, -1]:
        """Published power (positive when energy_import counts up) times this is the stored power."""
        return power_sign(self.points)


class MqttField(_Strict):
    path: str = Field(description="dotted path into the JSON payload, list items by index: 'ENERGY.Total', 'phases.0.v'")
    unit: str | None = Field(default=None, description="unit of the published value; the quantity's canonical unit when omitted")
    min: float | None = Field(default=None, description="plausible minimum, canonical unit")
    max: float | None = Field(default=None, description="plausible maximum, canonical unit")
    sign: Literal[1, -1] = Field(
        default=1, description="-1 for a published power positive in the direction energy_export counts (a "
        "gateway publishing its inverter's generation as positive), as a Modbus profile register's sign: the "
        "device's native power is positive when energy_import counts up; the role's sign applies after it")


class MqttSubscription(_Strict):
    """One topic pattern and how its payloads map to points.

    ``topic`` may use MQTT wildcards (``+``, ``#``); a whole level ``{device}`` matches any one
    level and names the device (``tele/{device}/SENSOR``). Without ``{device}``, ``device`` names it.
    """

    topic: str
    device: str | None = None
    format: Literal["json", "number"] = "json"
    fields: dict[str, str | MqttField] = Field(
        default_factory=dict, description="json: quantity -> field path (or {path, unit, min, max})")
    timestamp: str | None = Field(
        default=None, description="json: field path of the device's timestamp (epoch s or ms, or ISO 8601)")
    quantity: str | None = Field(default=None, description="number: the quantity of the bare number")
    unit: str | None = Field(default=None, description="number: its unit (canonical when omitted)")
    min: float | None = None
    max: float | None = None
    sign: Literal[1, -1] = Field(default=1, description="number: as a field's sign")

    @model_validator(mode="after")
    def _check(self) -> MqttSubscription:
        levels = self.topic.split("/")
        if not self.topic or any(("+" in lv or "#" in lv or "{" in lv) and lv not in ("+", "#", "{device}")
                                 for lv in levels):
            raise ValueError(f"topic {self.topic!r}: wildcards '+', '#' and '{{device}}' must fill a whole level")
        if "#" in levels[:-1]:
            raise ValueError(f"topic {self.topic!r}: '#' must be the last level")
        if levels.count("{device}") > 1:
            raise ValueError(f"topic {self.topic!r}: '{{device}}' may appear once")
        if ("{device}" in levels) == (self.device is not None):
            raise ValueError(f"topic {self.topic!r}: name the device either with a '{{device}}' level or with 'device'")
        if self.format == "json":
            if not self.fields:
                raise ValueError("a json subscription maps at least one quantity in 'fields'")
            if self.quantity is not None or self.unit is not None:
                raise ValueError("'quantity' and 'unit' are for format 'number'; json uses 'fields'")
        else:
            if self.quantity is None:
                raise ValueError("format 'number' needs 'quantity'")
            if self.fields or self.timestamp:
                raise ValueError("format 'number' has no 'fields' or 'timestamp' (the payload is one number)")
        for q, f in self.field_specs().items():
            if q not in QUANTITIES:
                raise ValueError(f"unknown quantity {q!r} (known: {', '.join(sorted(QUANTITIES))})")
            unit_factor(f.unit or QUANTITIES[q].unit, q)
            if f.sign != 1 and q not in POWER_QUANTITIES:
                raise ValueError(f"{q}: 'sign' is for power (its direction); a {QUANTITIES[q].kind} of {q} has none")
        return self

    def field_specs(self) -> dict[str, MqttField]:
        if self.format == "number":
            return {self.quantity: MqttField(path="", unit=self.unit, min=self.min, max=self.max, sign=self.sign)}
        return {q: (MqttField(path=f) if isinstance(f, str) else f) for q, f in self.fields.items()}


class MqttConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    password_env: str | None = Field(default=None, description="environment variable holding the password")
    password_file: str | None = Field(default=None, description="file holding the password (a Docker secret: "
                                      "/run/secrets/...); one line, its trailing newline ignored")
    tls: MqttTls | None = None
    client_id: str | None = Field(default=None, description="stable id of the persistent session; "
                                  "defaults to greengauge-<enterprise>-<site>")
    protocol: Literal["5", "3.1.1"] = Field(
        default="5", description="5 lets the collector announce receive_maximum; 3.1.1 is capped by the broker "
        "(mosquitto: 20 unacknowledged messages)")
    keepalive_s: int = Field(default=60, ge=5)
    session_expiry_s: int = Field(default=7 * 86_400, ge=0, description="MQTT 5: how long the broker keeps the session")
    receive_maximum: int = Field(default=5000, ge=1, le=65535,
                                 description="messages the broker may send before the collector acknowledges")
    reconnect_min_s: int = Field(default=1, ge=1)
    reconnect_max_s: int = Field(default=60, ge=1)
    max_payload_bytes: int = Field(default=262_144, ge=64, description="a bigger payload is not parsed: its "
                                   "points are stored bad with an oversized_payload finding")
    takeover_backoff_s: float = Field(default=60.0, gt=0, description="wait after another client took the "
                                      "session (same client_id) over; doubles at each takeover, up to 1 h")
    share_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$", description=(
        "MQTT 5 shared subscriptions: collectors with the same group share the topics ($share/GROUP/...), "
        "each message goes to one of them; each needs its own client_id (greengauge collect --member)"))
    member: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$", description=(
        "this collector's name in its share group, appended to the client_id (greengauge collect --member)"))
    devices: list[MqttDeviceConfig] = Field(min_length=1)
    subscriptions: list[MqttSubscription] = Field(min_length=1)

    @field_validator("password", "password_env", "password_file")
    @classmethod
    def _needs_user(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not info.data.get("username"):
            raise ValueError(f"{info.field_name} without username: the broker is sent no password unless a "
                             "username goes with it; add username")
        return value

    @field_validator("password_file")
    @classmethod
    def _one_password(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            given = [k for k in ("password", "password_env") if info.data.get(k) is not None]
            if given:
                raise ValueError(f"password_file and {given[0]} are both given; keep one")
            _readable(value, "password file")
        return value

    def secret(self) -> str | None:
        """The password to send, from wherever the site file says it is (None: none)."""
        if self.password is not None:
            return self.password
        if self.password_env is not None:
            return os.environ.get(self.password_env)
        if self.password_file is not None:
            return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        return None

    @field_validator("password_env")
    @classmethod
    def _env_set(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            if info.data.get("password") is not None:
                raise ValueError("password and password_env are both given; keep one (password_env)")
            if value not in os.environ:
                raise ValueError(f"environment variable {value} (password_env) is not set: export it where the "
                                 "collector runs")
        return value

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        if self.share_group is not None and self.protocol != "5":
            raise ValueError("share_group needs protocol '5' (shared subscriptions are an MQTT 5 feature)")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(f"reconnect_min_s ({self.reconnect_min_s}) is above reconnect_max_s "
                             f"({self.reconnect_max_s})")
        names = [d.name for d in self.devices]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"mqtt device names used twice: {', '.join(sorted(dupes))}")
        by_name = {d.name: d for d in self.devices}
        for i, sub in enumerate(self.subscriptions):
            targets = [by_name.get(sub.device)] if sub.device is not None else list(self.devices)
            if sub.device is not None and targets[0] is None:
                raise ValueError(f"subscriptions[{i}]: no mqtt device {sub.device!r} (known: {', '.join(names)})")
            if sub.device is not None:
                has = {p.quantity for p in targets[0].points}
                missing = set(sub.field_specs()) - has
                if missing:
                    raise ValueError(f"subscriptions[{i}]: device {sub.device!r} has no point for "
                                     f"{', '.join(sorted(missing))} (add it to its points)")
        return self

    def device(self, name: str) -> MqttDeviceConfig | None:
        for d in self.devices:
            if d.name == name:
                return d
        return None
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


def resolve_point(devices: list[DeviceConfig | MqttDeviceConfig], ref: str, role: str
                  ) -> tuple[DeviceConfig | MqttDeviceConfig, PointConfig]:
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
    devices: list[DeviceConfig | MqttDeviceConfig] | None = info.data.get("devices")
    mqtt = info.data.get("mqtt")
    if devices is not None and mqtt is not None:
        devices = devices + list(mqtt.devices)
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
    devices: list[DeviceConfig] = Field(default_factory=list, description="Modbus devices")
    mqtt: MqttConfig | None = None
    simulation: SimulationConfig = SimulationConfig()
    projects: Projects = Field(default_factory=list, description="PV/storage projects and the points metering them")

    @model_validator(mode="after")
    def _unique(self) -> SiteConfig:
        if not self.devices and self.mqtt is None:
            raise ValueError("a site has at least one device (under 'devices' or 'mqtt.devices')")
        names: set[str] = {d.name for d in self.mqtt.devices} if self.mqtt else set()
        endpoints: set[tuple[str, int]] = set()
        for d in self.devices:
            if d.name in names:
                raise ValueError(f"device name {d.name!r} is used twice")
            names.add(d.name)
            endpoint = (d.endpoint, d.unit_id)
            if endpoint in endpoints:
                raise ValueError(f"device {d.name!r}: {d.endpoint} unit {d.unit_id} is already used by another device")
            endpoints.add(endpoint)
        point_names = [n for n, _, _ in self.points()] + [n for n, _, _ in self.mqtt_points()]
        dupes = {n for n in point_names if point_names.count(n) > 1}
        if dupes:
            raise ValueError(f"point names used twice: {', '.join(sorted(dupes))}")
        return self

    def point_name(self, device: DeviceConfig | MqttDeviceConfig, point: PointConfig) -> str:
        return point.name or f"{self.enterprise.code}.{self.site.code}.{device.name}.{point.quantity}"

    def points(self) -> list[tuple[str, DeviceConfig, PointConfig]]:
        return [(self.point_name(d, p), d, p) for d in self.devices for p in d.point_configs()]

    def all_devices(self) -> list[DeviceConfig | MqttDeviceConfig]:
        """Modbus devices and MQTT sources."""
        return [*self.devices, *(self.mqtt.devices if self.mqtt else [])]

    def mqtt_points(self) -> list[tuple[str, MqttDeviceConfig, PointConfig]]:
        if self.mqtt is None:
            return []
        return [(self.point_name(d, p), d, p) for d in self.mqtt.devices for p in d.points]

    def devices_with_role(self, role: Role) -> list[tuple[DeviceConfig, PointConfig]]:
        return [(d, p) for _, d, p in self.points() if p.role == role]


def load_site(path: Path | str) -> SiteConfig:
    """Load and validate a site file; :class:`ConfigError` names file, line and field."""
    return load_model(path, SiteConfig)


__all__ = ["ConfigError", "SiteConfig", "DeviceConfig", "PointConfig", "MqttConfig", "ProjectConfig", "load_site",
           "resolve_point"]
