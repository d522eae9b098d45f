"""SunSpec devices: find 'SunS', walk the model chain, decode points with their scale factors.

The model definitions are data (``collectors/sunspec_models/models.yaml``): offsets, types,
scale-factor names, units and the GreenGauge quantity each point feeds. This module only knows
the SunSpec rules that hold for every model:

- the base register holds 'SunS' (0x5375 0x6E53), at 0, 40000 or 50000;
- then models follow as (ID, L, L registers of data) until ID 0xFFFF;
- a point scaled by a ``sunssf`` point is raw x 10^sf;
- "not implemented" is a sentinel, not a number: 0x8000 (int16, sunssf), 0xFFFF (uint16, enum16,
  bitfield16), 0x80000000 (int32), 0xFFFFFFFF (uint32, enum32, bitfield32), the 64-bit
  equivalents, 0 for accumulators (acc16/32/64), NaN for float32, all-zero for strings. Such a
  point decodes to ``None``, never to a number; so does a point whose scale factor is not
  implemented.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymodbus.client import ModbusBaseClient

from collectors.quantities import unit_factor
from greengauge.yamlfile import load_model

MODELS_FILE = Path(__file__).parent / "sunspec_models" / "models.yaml"
SUNS = (0x5375, 0x6E53)  # 'SunS'
BASE_ADDRESSES = (40000, 0, 50000)
END_ID = 0xFFFF
MAX_READ = 125

PointType = Literal[
    "int16", "uint16", "int32", "uint32", "int64", "uint64", "acc16", "acc32", "acc64", "float32",
    "enum16", "enum32", "bitfield16", "bitfield32", "sunssf", "string", "pad",
]
Role = Literal["common", "inverter", "nameplate", "storage", "meter"]

_WIDTH = {"int16": 1, "uint16": 1, "acc16": 1, "enum16": 1, "bitfield16": 1, "sunssf": 1, "pad": 1,
          "int32": 2, "uint32": 2, "acc32": 2, "enum32": 2, "bitfield32": 2, "float32": 2,
          "int64": 4, "uint64": 4, "acc64": 4}
_NOT_IMPLEMENTED = {
    "int16": 0x8000, "sunssf": 0x8000, "uint16": 0xFFFF, "enum16": 0xFFFF, "bitfield16": 0xFFFF,
    "int32": 0x8000_0000, "uint32": 0xFFFF_FFFF, "enum32": 0xFFFF_FFFF, "bitfield32": 0xFFFF_FFFF,
    "int64": 0x8000_0000_0000_0000, "uint64": 0xFFFF_FFFF_FFFF_FFFF,
    "acc16": 0, "acc32": 0, "acc64": 0,
}
_SIGNED = {"int16", "sunssf", "int32", "int64"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Point(_Strict):
    name: str
    offset: int = Field(ge=0)
    type: PointType
    size: int | None = Field(default=None, ge=1, description="registers of a string")
    sf: str | None = None
    unit: str | None = None
    quantity: str | None = None
    sign: Literal[1, -1] = 1

    @model_validator(mode="after")
    def _check(self) -> Point:
        if (self.type == "string") != (self.size is not None):
            raise ValueError(f"point {self.name}: size goes with type string, and only with it")
        if self.quantity is not None:
            if self.unit is None:
                raise ValueError(f"point {self.name}: a point that feeds {self.quantity!r} needs a unit")
            unit_factor(self.unit, self.quantity)
        return self

    @property
    def width(self) -> int:
        return self.size if self.type == "string" else _WIDTH[self.type]


class Model(_Strict):
    id: int = Field(ge=1, lt=END_ID)
    name: str
    label: str
    role: Role
    length: int = Field(ge=1)
    like: int | None = None
    points: list[Point] = []


class ModelFile(_Strict):
    models: list[Model]

    @model_validator(mode="after")
    def _resolve(self) -> ModelFile:
        by_id = {m.id: m for m in self.models}
        for m in self.models:
            if m.like is not None:
                base = by_id.get(m.like)
                if base is None or base.like is not None or base.length != m.length:
                    raise ValueError(f"model {m.id}: like {m.like} must name a model of the same length with points")
                continue
            names = {p.name: p for p in m.points}
            end = 0
            for p in sorted(m.points, key=lambda p: p.offset):
                if p.offset < end:
                    raise ValueError(f"model {m.id}: point {p.name} at {p.offset} overlaps the point before")
                end = p.offset + p.width
                if p.sf is not None and (p.sf not in names or names[p.sf].type != "sunssf"):
                    raise ValueError(f"model {m.id}: point {p.name} has scale factor {p.sf!r}, not a sunssf point")
            if end > m.length:
                raise ValueError(f"model {m.id}: points run to {end}, past the model length {m.length}")
        return self


@lru_cache(maxsize=1)
def models() -> dict[int, Model]:
    """Every model we decode, by id; a ``like`` model gets the points of the model it names."""
    data = load_model(MODELS_FILE, ModelFile)
    by_id = {m.id: m for m in data.models}
    return {
        m.id: (m.model_copy(update={"points": by_id[m.like].points}) if m.like is not None else m)
        for m in data.models
    }


@lru_cache(maxsize=1)
def sunspec_quantities() -> frozenset[str]:
    """The quantities a SunSpec device can feed."""
    return frozenset(p.quantity for m in models().values() for p in m.points if p.quantity)


# --- decoding ----------------------------------------------------------------------------------


def decode_raw(point: Point, regs: list[int]) -> int | float | str | None:
    """A point's raw value, or None when it holds its not-implemented sentinel."""
    if point.type == "pad":
        return None
    if point.type == "string":
        if not any(regs):
            return None
        raw = b"".join(r.to_bytes(2, "big") for r in regs)
        return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace").strip() or None
    if point.type == "float32":
        value = ModbusBaseClient.convert_from_registers(regs, ModbusBaseClient.DATATYPE.FLOAT32)
        return None if math.isnan(value) or math.isinf(value) else value
    raw = 0
    for r in regs:
        raw = (raw << 16) | r
    if raw == _NOT_IMPLEMENTED[point.type]:
        return None
    if point.type in _SIGNED:
        bits = 16 * len(regs)
        if raw >= 1 << (bits - 1):
            raw -= 1 << bits
    return raw


def decode_model(model: Model, data: list[int]) -> dict[str, int | float | str | None]:
    """Every point of one model block (the registers after ID and L), scaled; None = no value.

    Points beyond the block's length (a device implementing an older, shorter model) are absent.
    """
    raw: dict[str, int | float | str | None] = {}
    for p in model.points:
        if p.type == "pad" or p.offset + p.width > len(data):
            continue
        raw[p.name] = decode_raw(p, data[p.offset : p.offset + p.width])
    out: dict[str, int | float | str | None] = {}
    for p in model.points:
        if p.name not in raw:
            continue
        value = raw[p.name]
        if p.sf is not None and value is not None:
            sf = raw.get(p.sf)
            if sf is None or not -10 <= sf <= 10:  # scale factor not implemented or absurd
                value = None
            elif isinstance(value, float):
                value = value * 10.0**sf
            else:
                value = Decimal(value).scaleb(sf)
        out[p.name] = value
    return out


def model_quantities(model: Model, data: list[int]) -> dict[str, float | None]:
    """The quantities this model block feeds, in their canonical unit; None = not implemented."""
    values = decode_model(model, data)
    out: dict[str, float | None] = {}
    for p in model.points:
        if p.quantity is None or p.name not in values:
            continue
        v = values[p.name]
        if v is None:
            out[p.quantity] = None
            continue
        dec = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
        out[p.quantity] = float(dec * unit_factor(p.unit, p.quantity) * p.sign)
    return out


# --- discovery ---------------------------------------------------------------------------------

#: an async reader of holding registers: (address, count) -> registers; raises on refusal
Reader = Callable[[int, int], Awaitable[list[int]]]


@dataclass
class ModelBlock:
    id: int
    address: int  # register of the model's ID
    length: int
    data: list[int] | None = None  # the L registers after ID and L, once read

    @property
    def model(self) -> Model | None:
        return models().get(self.id)

    @property
    def data_address(self) -> int:
        return self.address + 2


@dataclass
class SunSpecDevice:
    base: int
    blocks: list[ModelBlock] = field(default_factory=list)
    end: int | None = None  # register after the end marker, when the walk reached it

    @property
    def span(self) -> int | None:
        """Registers from 'SunS' through the end marker: one bulk read covers the whole device."""
        return None if self.end is None else self.end - self.base

    @property
    def model_ids(self) -> list[int]:
        return [b.id for b in self.blocks]

    def decoded(self, model_id: int) -> dict[str, int | float | str | None] | None:
        for b in self.blocks:
            if b.id == model_id and b.data is not None and b.model is not None:
                return decode_model(b.model, b.data)
        return None

    def quantities(self, model_ids: set[int] | None = None) -> dict[str, float | None]:
        """Quantities over the chain; where two models feed one quantity, the first in the chain
        with a value wins (e.g. 103 and 701 both carry the inverter's power)."""
        out: dict[str, float | None] = {}
        for b in self.blocks:
            if b.data is None or b.model is None or (model_ids is not None and b.id not in model_ids):
                continue
            for q, v in model_quantities(b.model, b.data).items():
                if out.get(q) is None:
                    out[q] = v
        return out


async def _read(read: Reader, address: int, count: int) -> list[int]:
    regs: list[int] = []
    while count > 0:
        n = min(count, MAX_READ)
        regs += await read(address, n)
        address += n
        count -= n
    return regs


async def find_base(read: Reader, candidates: tuple[int, ...] = BASE_ADDRESSES) -> int | None:
    """The register holding 'SunS', or None. A refused or failed read means "not here"."""
    from collectors.transport import DeviceRefused

    for base in candidates:
        try:
            regs = await read(base, 2)
        except DeviceRefused:
            continue
        if tuple(regs[:2]) == SUNS:
            return base
    return None


async def walk(read: Reader, base: int, *, read_data: bool = True, max_models: int = 64) -> SunSpecDevice:
    """Walk the model chain from ``base`` to the end marker, reading each model's data."""
    dev = SunSpecDevice(base=base)
    address = base + 2
    for _ in range(max_models):
        if address + 2 > 0xFFFF:
            break
        mid, length = await read(address, 2)
        if mid == END_ID or mid == 0:
            dev.end = address + 2
            break
        block = ModelBlock(id=mid, address=address, length=length)
        if read_data and length and address + 2 + length <= 0x10000:
            block.data = await _read(read, address + 2, length)
        dev.blocks.append(block)
        address += 2 + length
    return dev


async def scan(read: Reader, base: int | None = None) -> SunSpecDevice | None:
    """Find and walk a SunSpec device; None when no 'SunS' marker answers."""
    if base is None:
        base = await find_base(read)
        if base is None:
            return None
    elif tuple(await read(base, 2)) != SUNS:
        return None
    return await walk(read, base)


async def read_span(read: Reader, base: int, span: int) -> SunSpecDevice | None:
    """Re-read a device whose layout is known in as few reads as the 125-register limit allows.

    Returns None when the image no longer parses as the chain (firmware changed, wrong device):
    the caller walks the chain again.
    """
    image = await _read(read, base, span)

    async def from_image(address: int, count: int) -> list[int]:
        lo = address - base
        if lo < 0 or lo + count > len(image):
            raise IndexError(address)
        return image[lo : lo + count]

    if tuple(image[:2]) != SUNS:
        return None
    try:
        dev = await walk(from_image, base)
    except IndexError:
        return None
    return dev if dev.end == base + span else None


def role_of(model_id: int) -> str | None:
    m = models().get(model_id)
    return m.role if m else None


__all__ = [
    "BASE_ADDRESSES", "Model", "ModelBlock", "Point", "SunSpecDevice", "decode_model", "decode_raw",
    "find_base", "model_quantities", "models", "role_of", "scan", "sunspec_quantities", "walk",
]
