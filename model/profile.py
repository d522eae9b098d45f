"""Device profiles: a meter model is one YAML file under ``collectors/profiles/``.

A profile lists registers (wire address, 0-based; function; type; word order; scale; unit;
quantity). Adding a meter touches no Python. The decoder turns raw registers into values in the
quantity's canonical unit (see :mod:`model.quantities`).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymodbus.client import ModbusBaseClient

from model.quantities import QUANTITIES, unit_factor
from model.yamlfile import ConfigError, load_model

PROFILE_DIR = Path(__file__).resolve().parent.parent / "collectors" / "profiles"  #: the profiles are the collectors' data
MAX_READ_REGISTERS = 125  # Modbus limit for one read of holding/input registers

DataType = Literal["uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]
Function = Literal["holding", "input"]
WordOrder = Literal["big", "little"]

REGISTER_COUNT: dict[str, int] = {
    "uint16": 1, "int16": 1, "uint32": 2, "int32": 2,
    "uint64": 4, "int64": 4, "float32": 2, "float64": 4,
}
_DATATYPE = {t: getattr(ModbusBaseClient.DATATYPE, t.upper()) for t in REGISTER_COUNT}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: which transformer ratios multiply a secondary-side value, by canonical unit
_RATIO_KIND = {"V": "pt", "A": "ct", "W": "ct*pt", "Wh": "ct*pt"}


def ratio_factor(spec: "RegisterSpec", ct_ratio: Decimal, pt_ratio: Decimal) -> Decimal:
    """The CT/PT multiplier for ``spec``: 1 unless the profile marks it ``ct_pt``."""
    if not spec.ct_pt:
        return Decimal(1)
    kind = _RATIO_KIND[QUANTITIES[spec.quantity].unit]
    return {"pt": pt_ratio, "ct": ct_ratio, "ct*pt": ct_ratio * pt_ratio}[kind]


class RegisterSpec(_Strict):
    quantity: str = Field(description="canonical quantity, see model/quantities.py")
    address: int = Field(ge=0, le=65535, description="wire address, 0-based")
    function: Function = "holding"
    type: DataType
    word_order: WordOrder = "big"
    scale: Decimal = Decimal(1)
    unit: str
    vendor_name: str | None = Field(default=None, description="the register's name in the maker's manual")
    min: float | None = Field(default=None, description="plausible minimum, canonical unit")
    max: float | None = Field(default=None, description="plausible maximum, canonical unit")
    sign: Literal[1, -1] = Field(
        default=1, description="-1 for a power register positive in the direction energy_export counts "
        "(e.g. an inverter's generation): the collector's native power is positive when energy_import counts up")
    ct_pt: bool = Field(
        default=False,
        description="the meter reports this value on the secondary side of its CT/PT: the collector "
        "multiplies it by the device's pt_ratio (voltages), ct_ratio (currents) or both (power, energy)",
    )

    @model_validator(mode="after")
    def _check(self) -> RegisterSpec:
        if self.quantity not in QUANTITIES:
            raise ValueError(
                f"unknown quantity {self.quantity!r} (known: {', '.join(sorted(QUANTITIES))})"
            )
        unit_factor(self.unit, self.quantity)  # raises with a clear message
        if self.ct_pt and QUANTITIES[self.quantity].unit not in _RATIO_KIND:
            raise ValueError(f"ct_pt does not apply to {self.quantity!r} (only to V, A, W and Wh quantities)")
        if self.sign != 1 and not self.quantity.startswith("active_power"):
            raise ValueError(f"sign goes with active power registers, not with {self.quantity!r}")
        if self.address + self.count - 1 > 65535:
            raise ValueError(f"register at {self.address} of type {self.type} runs past address 65535")
        return self

    @property
    def count(self) -> int:
        return REGISTER_COUNT[self.type]

    @property
    def factor(self) -> Decimal:
        """raw value × factor = value in the canonical unit."""
        return self.scale * unit_factor(self.unit, self.quantity)


class ClockSpec(_Strict):
    """A device clock register: seconds since 1970-01-01 UTC."""

    address: int = Field(ge=0, le=65535)
    function: Function = "holding"
    type: Literal["uint32", "uint64"] = "uint32"
    word_order: WordOrder = "big"

    @property
    def count(self) -> int:
        return REGISTER_COUNT[self.type]


class Profile(_Strict):
    name: str
    title: str
    manufacturer: str
    source: str = Field(description="manual or document the map comes from, and where it was unsure")
    counter_rollover_bits: int | None = Field(
        default=None, description="width of the energy counters in raw units (16, 32 or 64)"
    )
    clock: ClockSpec | None = None
    registers: list[RegisterSpec] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data):
        """``defaults: {function: input, word_order: little}`` applies to every register."""
        if isinstance(data, dict) and "defaults" in data:
            data = dict(data)
            defaults = dict(data.pop("defaults") or {})
            data["registers"] = [
                {**defaults, **reg} if isinstance(reg, dict) else reg for reg in data.get("registers", [])
            ]
        return data

    @model_validator(mode="after")
    def _unique_quantities(self) -> Profile:
        seen: set[str] = set()
        for reg in self.registers:
            if reg.quantity in seen:
                raise ValueError(f"quantity {reg.quantity!r} is mapped twice")
            seen.add(reg.quantity)
        return self

    @property
    def uses_ct_pt(self) -> bool:
        return any(r.ct_pt for r in self.registers)

    def register(self, quantity: str) -> RegisterSpec:
        for reg in self.registers:
            if reg.quantity == quantity:
                return reg
        raise KeyError(quantity)


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def load_profile(name: str) -> Profile:
    path = PROFILE_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"profile {name!r} does not exist (known: {', '.join(known_profiles())})")
    profile = load_model(path, Profile)
    if profile.name != name:
        raise ConfigError(f"{path.name}: name {profile.name!r} differs from the file name {name!r}")
    return profile


# --- read planning and decoding -------------------------------------------------------------


@dataclass(frozen=True)
class ReadBlock:
    function: Function
    address: int
    count: int


def plan_reads(specs: list[RegisterSpec | ClockSpec], max_gap: int = 0) -> list[ReadBlock]:
    """Merge registers into as few reads as the 125-register limit allows.

    Registers further apart than ``max_gap`` unmapped registers are read separately, because many
    meters answer a read that touches an unmapped address with an illegal-address exception.
    """
    blocks: list[ReadBlock] = []
    for function in ("holding", "input"):
        spans = sorted((s.address, s.address + s.count) for s in specs if s.function == function)
        start = end = None
        for lo, hi in spans:
            if start is not None and lo - end <= max_gap and max(hi, end) - start <= MAX_READ_REGISTERS:
                end = max(end, hi)
                continue
            if start is not None:
                blocks.append(ReadBlock(function, start, end - start))
            start, end = lo, hi
        if start is not None:
            blocks.append(ReadBlock(function, start, end - start))
    return blocks


def registers_for(
    spec: RegisterSpec | ClockSpec, blocks: dict[ReadBlock, list[int]]
) -> list[int] | None:
    """The raw registers of ``spec`` out of the blocks read, or None if its block failed."""
    for block, regs in blocks.items():
        if block.function == spec.function and block.address <= spec.address < block.address + block.count:
            offset = spec.address - block.address
            return regs[offset : offset + spec.count] if regs is not None else None
    return None


_STRUCT = {t: struct.Struct(">" + c) for t, c in
           {"uint16": "H", "int16": "h", "uint32": "I", "int32": "i", "uint64": "Q", "int64": "q",
            "float32": "f", "float64": "d"}.items()}
_WORDS = {n: struct.Struct(f">{n}H") for n in (1, 2, 4)}


def decode_raw(spec: RegisterSpec | ClockSpec, registers: list[int]) -> int | float:
    """The value of ``spec``'s registers, by its type and word order (what pymodbus'
    ``convert_from_registers`` gives, precompiled with :mod:`struct` for the poll loop)."""
    words = registers if spec.word_order == "big" else registers[::-1]
    return _STRUCT[spec.type].unpack(_WORDS[len(words)].pack(*words))[0]


@lru_cache(maxsize=4096)
def _rational(factor: Decimal, ratio: Decimal) -> tuple[int, int]:
    return (factor * ratio).as_integer_ratio()


def to_canonical(spec: RegisterSpec, raw: int | float, ratio: Decimal = Decimal(1)) -> float | None:
    """Raw register value to the canonical unit; None for NaN or infinity (not a number to store).

    ``ratio`` is the CT/PT multiplier of a secondary-side value (see :func:`ratio_factor`).
    """
    if isinstance(raw, float):
        if math.isnan(raw) or math.isinf(raw):
            return None
        return float(Decimal(repr(raw)) * spec.factor * ratio)
    # integers: the exact rational raw × n / d, rounded once to the nearest float (as the Decimal
    # product would be), without Decimal arithmetic in the poll loop
    n, d = _rational(spec.factor, ratio)
    return raw * n / d


def counter_width_wh(profile: str | None, quantity: str, own_wh: float | None,
                     ct_ratio: Decimal | None = None, pt_ratio: Decimal | None = None) -> float | None:
    """A stored counter's wrap width [Wh]: the point's own ``counter_rollover_wh`` (site file), else
    its device profile's ``counter_rollover_bits`` × the register's scale × the device's CT/PT ratios
    when the register is secondary-side (the stored counter is primary-side: :func:`ratio_factor`),
    else None (unknown: no profile, no such quantity, or no width in the profile).

    The one rule for the rollup (which decides the energy with it) and the evidence alike.
    """
    if own_wh is not None:
        return own_wh
    from metrics.counters import rollover_wh

    if profile is None:
        return None
    try:
        prof = load_profile(profile)
        spec = prof.register(quantity)
    except (ConfigError, KeyError, ValueError):  # unknown profile or quantity: width unknown
        return None
    one = Decimal(1)
    ratio = ratio_factor(spec, Decimal(str(ct_ratio)) if ct_ratio is not None else one,
                         Decimal(str(pt_ratio)) if pt_ratio is not None else one)
    return rollover_wh(prof.counter_rollover_bits, float(spec.factor * ratio))

