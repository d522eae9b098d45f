"""What the policy engine is fed: plain dataclasses, so any store can fill them.

Energy is whole Wh, money Decimal yuan, dates local calendar days (the enterprise's time zone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from metrics.intensity import ReferenceValues
from metrics.policy.pv_storage import Check

#: fact kinds the packaged documents use (a document may name others)
FACT_KINDS = (
    "miit_norm",  # listed in an MIIT 行业规范条件 announcement; scope = which norm (再生资源综合利用 …)
    "green_factory",  # level national / provincial
    "green_supply_chain",
    "green_park",  # level national / provincial / jinjiang
    "green_design_demo",
    "efficiency_leader",  # 重点用能行业能效领跑者标杆企业
    "energy_saving_retrofit",  # 福建省重点节能改造项目 completed to plan
    "carbon_footprint_cert",
    "energy_management_cert",  # first_time says whether it is the first certification
    "energy_saving_fund",  # provincial/municipal 节能循环经济专项资金 received; amount = the grant
)


@dataclass(frozen=True)
class Fact:
    """A recorded fact: a listing, certification or grant, as a person entered it."""

    kind: str
    date: date  #: listing / announcement / certification / grant date
    level: str | None = None  #: "national", "provincial", "jinjiang"
    scope: str | None = None  #: e.g. the MIIT norm's industry, "再生资源综合利用"
    until: date | None = None  #: last day the status holds (withdrawn, expired); None = still held
    first_time: bool | None = None  #: for certifications: the first one (None = not recorded)
    amount: Decimal | None = None  #: for grants: the amount received [yuan]
    reference: str = ""  #: announcement number, certificate number


@dataclass(frozen=True)
class Storage:
    """Electrochemical storage built with a PV project (nameplate)."""

    power_w: int | None  #: rated power [W]; None = not known (the storage part is not decided)
    energy_wh: int | None  #: rated energy [Wh]; None = not known
    commissioned: date
    electrochemical: bool = True


@dataclass(frozen=True)
class PvProject:
    """A PV project (nameplate and commissioning date) and the telemetry checks run on it.

    ``checks`` are the outcomes of :func:`metrics.policy.pv_storage.check_pv_produced_after`,
    :func:`~metrics.policy.pv_storage.check_storage_duration` and
    :func:`~metrics.policy.pv_storage.check_storage_power_ratio`; none run means unverified.
    """

    id: str
    pv_w: int | None  #: installed capacity [W]; None = not known (the candidate is unknown)
    commissioned: date
    storage: Storage | None = None
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class ProductYear:
    """One product's production and energy in the year, with its standard's reference values."""

    product: str
    energy_kgce: Decimal | None  #: comprehensive energy of its production [kgce]; None = not allocated
    quantity: Decimal  #: output [unit of product]
    reference: ReferenceValues | None = None


@dataclass(frozen=True)
class EnterpriseYear:
    """Everything the engine needs about one enterprise for one calendar year (local time).

    An energy left as None is unknown (no metered point, or not yet computed): the rules that need
    it come out ``unknown``, not ``does_not_qualify``.
    """

    enterprise: str
    year: int
    region: str = "福建省/泉州市/晋江市"  #: documents apply where their jurisdiction is a prefix
    recycling_wh: int | None = None  #: the recycling sub-project's electricity [Wh]
    green_wh: int | None = None  #: green electricity consumed (metrics.green_share) [Wh]
    consumption_wh: int | None = None  #: electricity consumed [Wh]
    facts: tuple[Fact, ...] = ()
    projects: tuple[PvProject, ...] = ()
    products: tuple[ProductYear, ...] = field(default_factory=tuple)
