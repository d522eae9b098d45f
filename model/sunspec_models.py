"""SunSpec model definitions as data (``collectors/sunspec_models/models.yaml``): the schema of
that file and its loading. Decoding lives in :mod:`collectors.sunspec`; the site model reads the
quantities a SunSpec device can feed from here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.quantities import unit_factor
from model.yamlfile import load_model

MODELS_FILE = Path(__file__).resolve().parent.parent / "collectors" / "sunspec_models" / "models.yaml"
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
    rename: dict[str, str] = Field(default={}, description="with like: point names this model spells differently")
    points: list[Point] = []

    def renamed(self, points: list[Point]) -> list[Point]:
        """``points`` (the like model's) under this model's names; scale-factor references follow."""
        r = self.rename
        return [p.model_copy(update={"name": r.get(p.name, p.name), "sf": r.get(p.sf, p.sf) if p.sf else None})
                for p in points]


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
                unknown = set(m.rename) - {p.name for p in base.points}
                if unknown:
                    raise ValueError(f"model {m.id}: rename names point(s) {sorted(unknown)} that model {m.like} lacks")
                continue
            if m.rename:
                raise ValueError(f"model {m.id}: rename goes with like")
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
        m.id: (m.model_copy(update={"points": m.renamed(by_id[m.like].points)}) if m.like is not None else m)
        for m in data.models
    }


@lru_cache(maxsize=1)
def sunspec_quantities() -> frozenset[str]:
    """The quantities a SunSpec device can feed."""
    return frozenset(p.quantity for m in models().values() for p in m.points if p.quantity)
