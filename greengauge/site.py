"""The site configuration: one YAML file describes an enterprise, its site, devices and points.

Validated with pydantic; errors name the file, the line and the field (see
:mod:`greengauge.yamlfile`). ``greengauge site apply FILE`` upserts it into the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collectors.profile import Profile, load_profile
from collectors.quantities import QUANTITIES, unit_factor
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
        if self.role is not None and QUANTITIES[self.quantity].kind != "counter":
            raise ValueError(
                f"role {self.role!r} needs an energy counter, but {self.quantity!r} is a "
                f"{QUANTITIES[self.quantity].kind}"
            )
        if (self.role == "subproject") != (self.subproject is not None):
            raise ValueError("role 'subproject' and a 'subproject' name go together")
        return self


class DeviceConfig(_Strict):
    name: str = Field(pattern=CODE_PATTERN)
    profile: str
    transport: Literal["tcp"] = "tcp"
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=247)
    timeout_s: float = Field(default=3.0, gt=0)
    poll_interval_s: float = Field(default=60.0, gt=0)
    points: list[PointConfig] | None = Field(
        default=None, description="the quantities to store; all of the profile's when omitted"
    )

    @field_validator("profile")
    @classmethod
    def _profile_exists(cls, value: str) -> str:
        load_profile(value)  # ConfigError names the known profiles
        return value

    @model_validator(mode="after")
    def _points_in_profile(self) -> DeviceConfig:
        profile = load_profile(self.profile)
        mapped = {r.quantity for r in profile.registers}
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
    def profile_model(self) -> Profile:
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
    """TLS to the broker; all paths are PEM files. ``enabled`` with no paths uses the system CAs."""

    enabled: bool = True
    ca_certs: str | None = None
    certfile: str | None = Field(default=None, description="client certificate, for brokers that require one")
    keyfile: str | None = None
    insecure: bool = Field(default=False, description="skip the broker host name check (test brokers only)")


class MqttDeviceConfig(_Strict):
    """A source behind the broker (a gateway or a meter that publishes): a device row of its own."""

    name: str = Field(pattern=CODE_PATTERN)
    points: list[PointConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> MqttDeviceConfig:
        quantities = [p.quantity for p in self.points]
        dupes = {q for q in quantities if quantities.count(q) > 1}
        if dupes:
            raise ValueError(f"quantity listed twice: {', '.join(sorted(dupes))}")
        return self


class MqttField(_Strict):
    path: str = Field(description="dotted path into the JSON payload, list items by index: 'ENERGY.Total', 'phases.0.v'")
    unit: str | None = Field(default=None, description="unit of the published value; the quantity's canonical unit when omitted")
    min: float | None = Field(default=None, description="plausible minimum, canonical unit")
    max: float | None = Field(default=None, description="plausible maximum, canonical unit")


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
        return self

    def field_specs(self) -> dict[str, MqttField]:
        if self.format == "number":
            return {self.quantity: MqttField(path="", unit=self.unit, min=self.min, max=self.max)}
        return {q: (MqttField(path=f) if isinstance(f, str) else f) for q, f in self.fields.items()}


class MqttConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    password_env: str | None = Field(default=None, description="environment variable holding the password")
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
    devices: list[MqttDeviceConfig] = Field(min_length=1)
    subscriptions: list[MqttSubscription] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
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


class SiteConfig(_Strict):
    park: ParkConfig | None = None
    enterprise: EnterpriseConfig
    site: SiteInfo
    devices: list[DeviceConfig] = Field(default_factory=list, description="Modbus devices")
    mqtt: MqttConfig | None = None
    simulation: SimulationConfig = SimulationConfig()

    @model_validator(mode="after")
    def _unique(self) -> SiteConfig:
        if not self.devices and self.mqtt is None:
            raise ValueError("a site has at least one device (under 'devices' or 'mqtt.devices')")
        names: set[str] = {d.name for d in self.mqtt.devices} if self.mqtt else set()
        endpoints: set[tuple[str, int, int]] = set()
        for d in self.devices:
            if d.name in names:
                raise ValueError(f"device name {d.name!r} is used twice")
            names.add(d.name)
            endpoint = (d.host, d.port, d.unit_id)
            if endpoint in endpoints:
                raise ValueError(f"device {d.name!r}: {d.host}:{d.port} unit {d.unit_id} is already used by another device")
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

    def mqtt_points(self) -> list[tuple[str, MqttDeviceConfig, PointConfig]]:
        if self.mqtt is None:
            return []
        return [(self.point_name(d, p), d, p) for d in self.mqtt.devices for p in d.points]

    def devices_with_role(self, role: Role) -> list[tuple[DeviceConfig, PointConfig]]:
        return [(d, p) for _, d, p in self.points() if p.role == role]


def load_site(path: Path | str) -> SiteConfig:
    """Load and validate a site file; :class:`ConfigError` names file, line and field."""
    return load_model(path, SiteConfig)


__all__ = ["ConfigError", "SiteConfig", "DeviceConfig", "PointConfig", "MqttConfig", "load_site"]
