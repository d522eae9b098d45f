"""Response and request bodies of the bureau API (the OpenAPI schema is generated from these).

Energy in integer Wh, money and factors as exact decimal strings, times in ISO 8601 with offset.
Stored result rows allow extra members, so a result table that gains a column shows it without
breaking the schema.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Park(BaseModel):
    park_id: int
    code: str
    name: str


class Enterprise(BaseModel):
    enterprise_id: int
    code: str
    name: str
    timezone: str
    industry: str | None = None
    park: str | None = None


class Site(BaseModel):
    site_id: int
    code: str
    name: str


class Point(BaseModel):
    point_id: int
    name: str
    quantity: str
    kind: Literal["counter", "gauge"]
    unit: str
    role: str | None = None
    subproject: str | None = None
    rated_power_w: int | None = None
    device: str
    site: str
    enterprise: str


class GreenShare(_Open):
    """Rule R1 for the year to date as the metrics flow stored it (table green_share_ytd)."""

    data_through: datetime
    green_wh: int
    consumption_wh: int
    share: Decimal | None = None
    qualifies: bool | None = None
    status: str | None = None
    onsite_green_wh: int | None = None
    trade_wh: int | None = None
    certificate_wh: int | None = None
    completeness: Decimal | None = None
    missing_wh: int | None = None
    certificates_to_buy: int | None = None
    intervals: int
    estimated_intervals: int
    computed_at: datetime


class Projection(_Open):
    data_through: datetime
    basis_days: int
    projected_green_wh: int
    projected_consumption_wh: int
    projected_share: Decimal | None = None
    projected_qualifies: bool | None = None
    gap_now_wh: int
    gap_year_end_wh: int
    computed_at: datetime


class Carbon(_Open):
    """CO2 (location- and market-based) and standard coal of the year to date (table carbon_ytd)."""

    data_through: datetime
    status: str
    note: str | None = None
    region: str
    grid_import_wh: int | None = None
    location_co2_kg: Decimal | None = None
    market_co2_kg: Decimal | None = None
    coal_equivalent_kgce: Decimal | None = None
    computed_at: datetime


class Trade(BaseModel):
    reference: str
    settled_on: date
    settled_wh: int


class Certificate(BaseModel):
    serial_prefix: str
    serial_first: int
    serial_last: int
    serial_digits: int
    count: int
    production_month: date
    used_on: date
    trade: str | None = None
    reference: str | None = None


class Ledger(BaseModel):
    trades: list[Trade]
    certificates: list[Certificate]


class DecisionVersion(BaseModel):
    decision_id: int
    version: int
    status: str
    amount: Decimal | None = None
    reason: str
    supersedes: int | None = None
    evidence_hash: str
    decided_at: datetime


class Decision(BaseModel):
    decision_id: int
    document: str
    clause: str
    rule: str
    subject: str
    version: int
    status: str
    amount: Decimal | None = None
    evidence: dict[str, Any]
    evidence_hash: str
    reason: str
    supersedes: int | None = None
    decided_at: datetime
    check: str = Field(description="R1, R2, R3, intensity, listings or other")
    history: list[DecisionVersion] = Field(default=[], description="every version, newest first")


class FullVersion(BaseModel):
    decision_id: int
    document: str
    clause: str
    rule: str
    subject: str
    version: int
    status: str
    amount: Decimal | None = None
    evidence: dict[str, Any]
    evidence_hash: str
    reason: str
    supersedes: int | None = None
    decided_at: datetime


class Change(BaseModel):
    decision_id: int
    enterprise: str
    year: int
    document: str
    clause: str
    rule: str
    subject: str
    version: int
    reason: str
    old_status: str | None = None
    new_status: str
    old_amount: Decimal | None = None
    new_amount: Decimal | None = None
    decided_at: datetime


class StatementRef(BaseModel):
    statement_id: str
    year: int
    kid: str
    issued_at: datetime
    data_through: datetime | None = None


class Checks(BaseModel):
    R1: list[Decision] = []
    R2: list[Decision] = []
    R3: list[Decision] = []
    intensity: list[Decision] = []
    listings: list[Decision] = []
    other: list[Decision] = []


class ProductionRow(BaseModel):
    product: str
    period_start: date
    period_end: date
    quantity: Decimal
    unit: str
    output_value_yuan: Decimal | None = None


class YearFigures(BaseModel):
    enterprise: Enterprise
    year: int
    data_through: datetime | None
    green_share: GreenShare | None
    ledger: Ledger
    projection: Projection | None
    carbon: Carbon | None
    checks: Checks
    production: list[ProductionRow]


class DailyBalance(_Open):
    day: date
    import_wh: int
    export_wh: int
    pv_wh: int
    charge_wh: int
    discharge_wh: int
    consumption_wh: int
    pv_self_consumed_wh: int
    green_wh: int
    intervals: int
    estimated_intervals: int
    computed_at: datetime


class Finding(BaseModel):
    finding_id: int
    kind: str
    device: str
    point: str | None = None
    site: str
    opened_at: datetime
    closed_at: datetime | None = None
    state: Literal["open", "closed"]
    detail: str
    detected_at: datetime


class TokenInfo(BaseModel):
    name: str
    kind: str
    scope_code: str | None
    can_write: bool
    expires_at: datetime


# -- statements -----------------------------------------------------------------------------------

class StatementRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enterprise: str = Field(min_length=1, max_length=100, description="enterprise code")
    year: int = Field(ge=2000, le=2100, description="local calendar year")


class Statement(BaseModel):
    statement_id: str
    enterprise: str
    year: int
    kid: str
    issued_at: datetime
    data_through: datetime | None
    jws: str = Field(description="JWS compact serialisation (RFC 7515 §7.1), alg EdDSA (RFC 8037)")
    payload: dict[str, Any] = Field(description="the decoded payload (what the signature covers)")


class Jwk(_Open):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"] = "EdDSA"
    use: Literal["sig"] = "sig"


class Jwks(BaseModel):
    keys: list[Jwk]


# -- writing --------------------------------------------------------------------------------------

class TradeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["trade"]
    reference: str = Field(min_length=1, max_length=200, description="contract or settlement number")
    settled_on: date = Field(description="settlement date (local)")
    mwh: str = Field(pattern=r"^[0-9]{1,9}(\.[0-9]{1,6})?$", description="settled MWh as a decimal string (exact Wh)")


class CertificateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["gec"]
    serial_first: str = Field(min_length=1, max_length=60)
    serial_last: str | None = Field(default=None, max_length=60, description="last serial of a range; omit for one")
    production_month: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM")
    used_on: date = Field(description="the day it was retired for the enterprise (local)")
    trade: str | None = Field(default=None, max_length=200, description="reference of the trade it came with")
    reference: str | None = Field(default=None, max_length=200)


class LedgerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[Annotated[TradeIn | CertificateIn, Field(discriminator="kind")]] = Field(min_length=1,
                                                                                          max_length=10_000)


_Cell = Field(default=None, max_length=200)


class FactIn(BaseModel):
    """One row as in `greengauge facts import` (store/facts.py), the enterprise taken from the path."""

    model_config = ConfigDict(extra="forbid")
    record: Literal["fact", "pv_project"]
    kind: str | None = _Cell
    date: str | None = _Cell
    level: str | None = _Cell
    scope: str | None = _Cell
    until: str | None = _Cell
    first_time: str | None = _Cell
    amount: str | None = _Cell
    reference: str | None = _Cell
    project: str | None = _Cell
    pv_w: str | None = _Cell
    storage_power_w: str | None = _Cell
    storage_energy_wh: str | None = _Cell
    storage_commissioned: str | None = _Cell
    storage_electrochemical: str | None = _Cell


class FactsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[FactIn] = Field(min_length=1, max_length=10_000)


class ProductionIn(BaseModel):
    """One production row as in `greengauge production import` (store/production.py). Reference
    values of products are shared by every enterprise and entered with the command line only."""

    model_config = ConfigDict(extra="forbid")
    product: str = Field(min_length=1, max_length=200)
    period_start: str = Field(max_length=20, description="local day YYYY-MM-DD, inclusive")
    period_end: str = Field(max_length=20, description="local day YYYY-MM-DD, inclusive")
    quantity: str = Field(max_length=40)
    unit: str = Field(max_length=40)
    output_value_yuan: str | None = Field(default=None, max_length=40)


class ProductionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[ProductionIn] = Field(min_length=1, max_length=10_000)


class ReplacementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ts: datetime = Field(description="the swap, ISO 8601 with UTC offset")
    old_final_wh: float = Field(ge=0, le=1e18)
    new_initial_wh: float = Field(ge=0, le=1e18)
    reason: str = Field(min_length=1, max_length=500)


class Written(BaseModel):
    written: dict[str, int]
    idempotency_key: str | None = None
