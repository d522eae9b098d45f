"""Policy documents as data: the model of ``metrics/policies/*.yaml``, loading, and reach.

A document *reaches* a day when it is in force that day, or when the day lies in the window of
cases it may be applied to retroactively ("参照执行"), and it has not been repealed by then. The
engine asks two questions: does a document reach an event date (a listing, a commissioning), and
does it reach a year (an annual rule reaches a year when the document reaches any day of it).

References
----------
晋政规〔2024〕2号 §五(三); 晉政規〔2025〕5號 closing clause (windows, retroactive cases, repeal).
Rule R4 of shared/policies/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from metrics.exact import no_float

RULE_KINDS = ("green_share", "recycling_energy", "pv_storage", "listing", "topup", "unit_energy")


#: money and rates are written as strings or integers in the data, never as floats
_money = no_float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    start: date | None = None
    end: date | None = None
    years_from_start: int | None = None

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Retroactive(_Strict):
    """Cases from ``start`` up to the day before the document takes effect may apply it."""

    start: date


class Repeal(_Strict):
    by: str
    on: date  #: the day the repealing document took effect; the last day reached is the day before


class Overlap(_Strict):
    principle: str
    clause: str


class GreenShareCondition(_Strict):
    threshold: Decimal

    @field_validator("threshold", mode="before")
    @classmethod
    def _m(cls, v: Any) -> Any:
        return _money(v)


class FactCondition(_Strict):
    fact: str
    level: str | None = None
    scope: str | None = None
    first_time: bool | None = None


class PvStorageCondition(_Strict):
    pv_min_w: int = Field(gt=0)
    storage_min_power_ratio: Decimal
    storage_min_hours: Decimal

    @field_validator("storage_min_power_ratio", "storage_min_hours", mode="before")
    @classmethod
    def _m(cls, v: Any) -> Any:
        return _money(v)


class UnitEnergyCondition(_Strict):
    reach: Literal["advanced", "access", "limit"]


_CONDITIONS: dict[str, type[BaseModel]] = {
    "green_share": GreenShareCondition,
    "recycling_energy": FactCondition,
    "listing": FactCondition,
    "topup": FactCondition,
    "pv_storage": PvStorageCondition,
    "unit_energy": UnitEnergyCondition,
}


class Rule(_Strict):
    id: str
    kind: Literal["green_share", "recycling_energy", "pv_storage", "listing", "topup", "unit_energy"]
    clause: str
    group: str  #: rules of any document with the same group are overlapping support: one is paid
    condition: Any
    amount: Decimal | dict[str, Decimal] | None = None
    cap: Decimal | None = None
    unit: str | None = None
    benefit: str | None = None  #: a benefit that is not money
    notes: str | None = None

    @field_validator("amount", "cap", mode="before")
    @classmethod
    def _no_float(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: _money(x) for k, x in v.items()}
        return _money(v)

    @field_validator("condition", mode="before")
    @classmethod
    def _plain(cls, v: Any) -> Any:
        return dict(v) if v is not None else {}

    @model_validator(mode="after")
    def _kind_fields(self) -> Rule:
        model = _CONDITIONS[self.kind]
        try:
            cond = model.model_validate(self.condition)
        except ValidationError as exc:
            msgs = "; ".join(
                f"condition.{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise ValueError(f"{self.kind} rule {self.id!r}: {msgs}") from None
        object.__setattr__(self, "condition", cond)  # frozen model: set once, while validating
        needs_amount = self.kind in ("recycling_energy", "listing", "topup")
        if needs_amount and not isinstance(self.amount, Decimal):
            raise ValueError(f"a {self.kind} rule needs a single amount, got {self.amount!r}")
        if self.kind == "pv_storage":
            if not isinstance(self.amount, dict) or set(self.amount) != {"pv", "storage"}:
                raise ValueError(f"a pv_storage rule needs amount: {{pv: ..., storage: ...}}, got {self.amount!r}")
        if self.kind in ("green_share", "unit_energy") and self.amount is not None:
            raise ValueError(f"a {self.kind} rule grants no money; remove amount {self.amount!r}")
        return self


class PolicyDocument(_Strict):
    number: str
    title: str
    issuer: str
    jurisdiction: str  #: "福建省/泉州市/晋江市": applies to enterprises whose region starts with it
    issued: date | None
    source: str
    in_force: Window
    retroactive: Retroactive | None = None
    repealed: Repeal | None = None
    repeals: list[str] = []
    overlap: Overlap | None = None
    notes: list[str] = []
    rules: list[Rule]
    digest: str | None = None  #: sha256 of the data file, set by :func:`load_document`

    @model_validator(mode="after")
    def _consistent(self) -> PolicyDocument:
        ids = [r.id for r in self.rules]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"rule ids repeat: {', '.join(dup)}")
        if self.retroactive and self.in_force.start and self.retroactive.start > self.in_force.start:
            raise ValueError(
                f"retroactive.start {self.retroactive.start} is after in_force.start {self.in_force.start}"
            )
        return self

    # ---- reach -------------------------------------------------------------------------------
    @property
    def first_day(self) -> date | None:
        """First day a case may fall on: the retroactive start, else the day it takes effect."""
        if self.retroactive:
            return self.retroactive.start
        return self.in_force.start

    @property
    def last_day(self) -> date | None:
        """Last day reached: the in-force end, or the day before the repeal took effect if earlier."""
        end = self.in_force.end
        if end is None and self.in_force.start and self.in_force.years_from_start:
            s = self.in_force.start
            end = s.replace(year=s.year + self.in_force.years_from_start) - timedelta(days=1)
        if self.repealed:
            before = self.repealed.on - timedelta(days=1)
            end = before if end is None or before < end else end
        return end

    def applies_to_region(self, region: str) -> bool:
        return region == self.jurisdiction or region.startswith(self.jurisdiction + "/")

    def reach_date(self, day: date) -> Reach:
        """Whether the document reaches ``day``, and how (in force, retroactive, not)."""
        first, last = self.first_day, self.last_day
        if first is None or self.in_force.start is None:
            return Reach(None, f"{self.number}: the dates it is in force are not recorded")
        if day < first:
            return Reach(False, f"{day} is before {self.number} reaches cases ({first})")
        if last is not None and day > last:
            if self.repealed and day >= self.repealed.on:
                return Reach(False, f"{self.number} was repealed by {self.repealed.by} on {self.repealed.on}")
            return Reach(False, f"{self.number} expired after {last}")
        if day < self.in_force.start:
            return Reach(True, f"{day} falls in the retroactive window {first}..{self.in_force.start - timedelta(days=1)}",
                         "retroactive")
        return Reach(True, f"{self.number} is in force on {day}", "in_force")

    def reach_year(self, year: int) -> Reach:
        """Whether the document reaches any day of ``year`` (an annual rule then takes the whole year)."""
        first, last = self.first_day, self.last_day
        if first is None or self.in_force.start is None:
            return Reach(None, f"{self.number}: the dates it is in force are not recorded")
        y0, y1 = date(year, 1, 1), date(year, 12, 31)
        lo = max(first, y0)
        hi = y1 if last is None else min(last, y1)
        if lo > hi:
            if last is not None and last < y0 and self.repealed:
                return Reach(False, f"{self.number} was repealed by {self.repealed.by} on {self.repealed.on}")
            return Reach(False, f"{self.number} reaches {first}..{last}, no day of {year}")
        return Reach(True, f"{self.number} reaches {lo}..{hi} of {year}", "days", lo, hi)


@dataclass(frozen=True)
class Reach:
    """Answer of :meth:`PolicyDocument.reach_date` / :meth:`PolicyDocument.reach_year`."""

    reached: bool | None  #: None when the document's dates are not known
    reason: str
    how: str | None = None  #: "in_force", "retroactive" or "days"
    first: date | None = None  #: for a year: first day of it reached
    last: date | None = None  #: for a year: last day of it reached
