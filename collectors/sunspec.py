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

from model.quantities import unit_factor
from model.sunspec_models import (  # noqa: F401  the model file's schema, re-exported
    BASE_ADDRESSES, END_ID, MAX_READ, MODELS_FILE, SUNS, _NOT_IMPLEMENTED, _SIGNED, _WIDTH, Model, ModelFile, Point,
    PointType, Role, models, sunspec_quantities,
)


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
