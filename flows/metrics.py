"""Per enterprise: daily balance, year-to-date green share, year-end projection and gap to 30 %,
year-to-date carbon and standard coal.

Reads rolled-up interval energy (flows/rollup.py keeps it current), calls metrics/ (balance,
green share, with the certificate ledger, and its year-end projection), and writes every result of an enterprise in one
transaction. Daily balances are recomputed only for the local days whose intervals changed since
they were last computed; the year to date is recomputed every run.

Carbon and standard coal (table ``carbon_ytd``) are :func:`accounting.policy_inputs.carbon_year` for
the year to date, read up to the period end (``data_through`` of the green share), inside the
same transaction as the other results. The factor year is ``year + factor_year_offset`` (default
0); with ``factor_fallback`` (default on) a year without a published factor takes the latest
earlier one and the row says so (status ``factor_fallback``, the factors used in ``note``).
Without a factor the row has status ``no_factor``, the reason in ``note`` and no CO2 figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from fractions import Fraction
from decimal import Decimal
from typing import Any

import psycopg
from prefect import flow, get_run_logger

from accounting.policy_inputs import carbon_year, coal_of, energy_year
from accounting.site_energy import BALANCE_ROLES
from flows.tasks import io_task, metric_task, resolve_url
from metrics.balance import BalanceTotals, site_balance, totals
from metrics.energy import INTERVAL_S, IntervalEnergy, sum_by_interval
from metrics.green_share import GreenShareResult, Projection, assess_green_share, project_year_end
from metrics.ledger import CertificateBlock, Trade, ledger_green
from metrics.periods import local_bounds
from store.results import (Enterprise, dirty_days, enterprises, lock, write_carbon_ytd, write_daily_balance,
                           write_green_share_ytd, write_projection)
from store.ledger import ledger_for
from store.rollups import interval_rows
from store.sites import site_points

RoleEnergy = dict[str, dict[datetime, IntervalEnergy]]
_STEP = timedelta(seconds=INTERVAL_S)
#: how long after New Year the metrics flow still rebalances the year before
LATE_YEAR_GRACE = timedelta(days=3)


@dataclass(frozen=True)
class CarbonOptions:
    """How the metrics flow picks the CO2 factors and converts electricity to standard coal."""

    region: str = "national"  #: region of the location-based factor (falls back to national)
    factor_year_offset: int = 0  #: factor year = accounting year + offset (-2: two years back)
    factor_fallback: bool = True  #: no factor for that year: the latest earlier one, said in the note
    equal_value_kgce_per_kwh: Decimal | None = None  #: also electricity at this equal value (等价值)


@dataclass
class YearData:
    """An enterprise's rolled-up interval energy for a local year, up to ``as_of``."""

    enterprise: Enterprise
    year: int
    start: datetime
    end: datetime  # end of the local year
    as_of: datetime
    by_role: RoleEnergy
    point_ids: list[int]
    dirty: list[date] = field(default_factory=list)
    day_sources: dict[date, datetime | None] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)  #: the certificate ledger (rule R1)
    certificates: list[CertificateBlock] = field(default_factory=list)


@dataclass
class EnterpriseMetrics:
    enterprise: Enterprise
    year: int
    data_through: datetime | None
    daily: dict[date, tuple[BalanceTotals, datetime | None]]
    ytd: BalanceTotals
    share: GreenShareResult | None  #: rule R1 for the year to date, with the ledger
    projection: Projection | None
    carbon: dict[str, Any] | None = None  #: the carbon_ytd row written (columns of store.results.CARBON_COLUMNS)


def load_role_energy(conn: psycopg.Connection, enterprise: str, start: datetime, end: datetime
                     ) -> tuple[RoleEnergy, list[int]]:
    """Stored interval energy per balance role for intervals starting in [start, end), summed over
    the points of each role as accounting/site_energy.py does."""
    points = [p for p in site_points(conn, enterprise) if p.role in BALANCE_ROLES]
    ids = [p.point_id for p in points]
    per_point: dict[int, list[IntervalEnergy]] = {pid: [] for pid in ids}
    for pid, start_, wh, est in interval_rows(conn, ids, start, end):
        per_point[pid].append(IntervalEnergy(start_, wh, est))
    by_role = {role: sum_by_interval([per_point[p.point_id] for p in points if p.role == role])
               for role in BALANCE_ROLES}
    return by_role, ids


def year_of(e: Enterprise, as_of: datetime) -> int:
    return as_of.astimezone(_zone(e.timezone)).year


def _zone(tz: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


@io_task(task_run_name="list-enterprises")
def list_enterprises(url: str, code: str | None) -> list[Enterprise]:
    with psycopg.connect(url) as conn:
        return enterprises(conn, code)


def read_year(url: str, e: Enterprise, year: int, as_of: datetime, days: list[date] | None = None) -> YearData:
    start, end = local_bounds("year", date(year, 1, 1), e.timezone)
    upto = min(as_of, end)
    with psycopg.connect(url) as conn:
        by_role, ids = load_role_energy(conn, e.code, start, upto)
        dirty = days if days is not None else dirty_days(conn, e, ids, start)
        dirty = [d for d in dirty if d.year == year]
        sources = {}
        for d in dirty:
            ds, de = local_bounds("day", d, e.timezone)
            sources[d] = conn.execute(
                "SELECT max(computed_at) FROM interval_energy WHERE point_id = ANY(%s) AND bucket_start >= %s AND bucket_start < %s",
                (ids, ds, de)).fetchone()[0]
        trades, certificates = ledger_for(conn, e.code)
    return YearData(e, year, start, end, upto, by_role, ids, dirty, sources, trades, certificates)


load_year = io_task(read_year, task_run_name="load-year")


def _slice(by_role: RoleEnergy, start: datetime, end: datetime) -> RoleEnergy:
    return {role: {t: iv for t, iv in s.items() if start <= t < end} for role, s in by_role.items()}


def compute_metrics(data: YearData) -> EnterpriseMetrics:
    """Balance per dirty day (an empty battery pool each day, as a report for that day gives),
    the year to date (one pool carried through the year), its green share, projection and gap."""
    e = data.enterprise
    daily = {}
    for d in data.dirty:
        ds, de = local_bounds("day", d, e.timezone)
        bal, _ = site_balance(_slice(data.by_role, ds, de))
        daily[d] = (totals(bal), data.day_sources.get(d))
    ytd_balance, _ = site_balance(data.by_role)
    ytd = totals(ytd_balance)
    through = ytd_balance[-1].start + _STEP if ytd_balance else None
    share = projection = None
    if through is not None:
        # rule R1 as `greengauge report green-share` decides it: on-site green + the ledger's trades
        # and certificates of the period's local days, unknown below the completeness threshold
        zone = _zone(e.timezone)
        local_end = through.astimezone(zone)
        last_day = local_end.date() if local_end.time() == time.min else local_end.date() + timedelta(days=1)
        led = ledger_green(data.trades, data.certificates, data.start.astimezone(zone).date(), last_day)
        elapsed = int((through - data.start).total_seconds()) // INTERVAL_S
        year_intervals = int((data.end - data.start).total_seconds()) // INTERVAL_S
        completeness = Fraction(ytd.intervals - ytd.estimated_intervals, elapsed)
        projection = project_year_end(ytd.green_wh, ytd.consumption_wh, led.green_wh, elapsed, year_intervals)
        share = assess_green_share(ytd.green_wh, ytd.consumption_wh, trade_wh=led.trade_wh,
                                   certificate_wh=led.certificate_wh, completeness=completeness,
                                   projection=projection)
    return EnterpriseMetrics(e, data.year, through, daily, ytd, share, projection)


compute = metric_task(compute_metrics, task_run_name="compute-metrics")


def _is_factor_missing(exc: ValueError) -> bool:
    return " factor for region " in str(exc)  # metrics.carbon.FactorTable.factor's message


def carbon_row(conn: psycopg.Connection, e: Enterprise, year: int, through: datetime,
               opts: CarbonOptions = CarbonOptions()) -> dict[str, Any]:
    """The ``carbon_ytd`` row of an enterprise's year to date ``through`` (the period end).

    CO2 and standard coal as :func:`accounting.policy_inputs.carbon_year` gives them with
    ``until=through``. No factor for the year: status ``no_factor``, the lookup's message in
    ``note``, no CO2 figure (standard coal still given). No metered grid import: status
    ``no_grid_import`` and no figure at all.
    """
    base: dict[str, Any] = {"data_through": through, "region": opts.region,
                            "factor_year_offset": opts.factor_year_offset,
                            "equal_value_kgce_per_kwh": opts.equal_value_kgce_per_kwh}
    try:
        c = carbon_year(conn, e.code, year, region=opts.region, year_offset=opts.factor_year_offset,
                        latest_available=opts.factor_fallback,
                        equal_value_kgce_per_kwh=opts.equal_value_kgce_per_kwh, until=through)
    except ValueError as exc:
        energy = energy_year(conn, e.code, year, until=through)
        if energy.grid_import_wh is None:
            return {**base, "status": "no_grid_import", "note": str(exc)}
        if not _is_factor_missing(exc):
            raise
        coal = coal_of(energy, opts.equal_value_kgce_per_kwh)
        note = str(exc) + ("" if opts.factor_fallback else "; factor_fallback is off")
        return {**base, "status": "no_factor", "note": note, "grid_import_wh": energy.grid_import_wh,
                "coal_equivalent_kgce": coal["equivalent"].total_kgce,
                "coal_equal_value_kgce": coal["equal_value"].total_kgce if "equal_value" in coal else None}
    want = year + opts.factor_year_offset
    lb, mb = c["location_based"], c["market_based"]
    notes = []
    for kind, f, region in (("location", lb["factor"], opts.region), ("market", mb["factor"], "national")):
        if f["year"] != want:
            notes.append(f"{kind} factor of {f['year']}: none published for {want}, the latest earlier one taken")
        if f["region"] != region:
            notes.append(f"{kind} factor of region {f['region']}: none for {region}")
    coal = c["standard_coal"]
    return {
        **base,
        "status": "factor_fallback" if notes else "ok",
        "note": "; ".join(notes) or None,
        "grid_import_wh": c["grid_import_wh"],
        "location_co2_kg": lb["co2_kg"], "location_factor": lb["factor"]["value"],
        "location_factor_region": lb["factor"]["region"], "location_factor_year": lb["factor"]["year"],
        "location_factor_source": lb["factor"]["source"],
        "market_co2_kg": mb["co2_kg"], "market_factor": mb["factor"]["value"],
        "market_factor_region": mb["factor"]["region"], "market_factor_year": mb["factor"]["year"],
        "market_factor_source": mb["factor"]["source"],
        "market_covered_wh": mb["covered_wh"], "green_trade_wh": mb["instruments"]["green_trade_wh"],
        "certificates": mb["instruments"]["certificates"],
        "coal_equivalent_kgce": coal["equivalent"]["total_kgce"],
        "coal_equal_value_kgce": coal["equal_value"]["total_kgce"] if "equal_value" in coal else None,
    }


def store_metrics(url: str, m: EnterpriseMetrics, carbon: CarbonOptions = CarbonOptions()) -> dict[str, Any] | None:
    """All of an enterprise's results in one transaction: all visible, or none. Carbon is read
    and computed inside that transaction, up to the period end of the green share; returns the
    ``carbon_ytd`` row written (None when there is no data yet)."""
    row = None
    with psycopg.connect(url) as conn, conn.transaction():
        lock(conn, f"greengauge.flows.metrics.{m.enterprise.enterprise_id}")
        for d, (t, source) in m.daily.items():
            write_daily_balance(conn, m.enterprise.enterprise_id, d, t, source)
        if m.data_through is not None:
            write_green_share_ytd(conn, m.enterprise.enterprise_id, m.year, m.data_through, m.ytd, m.share)
            if m.projection is not None:
                ystart, _ = local_bounds("year", date(m.year, 1, 1), m.enterprise.timezone)
                write_projection(conn, m.enterprise.enterprise_id, m.year, m.data_through, m.projection,
                                 m.share.missing_wh, (m.data_through - ystart).days)
            row = carbon_row(conn, m.enterprise, m.year, m.data_through, carbon)
            write_carbon_ytd(conn, m.enterprise.enterprise_id, m.year, row)
    return row


write_metrics = io_task(store_metrics, task_run_name="write-metrics")


def enterprise_metrics(url: str, e: Enterprise, as_of: datetime, *, year: int | None = None,
                       days: list[date] | None = None,
                       carbon: CarbonOptions = CarbonOptions()) -> EnterpriseMetrics:
    """Plain-function form of one enterprise's metrics run (backfill and tests use it)."""
    m = compute_metrics(read_year(url, e, year or year_of(e, as_of), as_of, days))
    m.carbon = store_metrics(url, m, carbon)
    return m


@flow(name="metrics")
def metrics_flow(database_url: str | None = None, enterprise: str | None = None, as_of: datetime | None = None,
                 region: str = CarbonOptions.region,
                 factor_year_offset: int = CarbonOptions.factor_year_offset,
                 factor_fallback: bool = CarbonOptions.factor_fallback,
                 equal_value_kgce_per_kwh: Decimal | None = None) -> list[EnterpriseMetrics]:
    """Daily balance, year-to-date green share, projection and gap to 30 %, carbon and standard coal
    for every enterprise. ``region``, ``factor_year_offset``, ``factor_fallback`` and
    ``equal_value_kgce_per_kwh`` choose the CO2 factors and the equal value (see CarbonOptions)."""
    url = resolve_url(database_url)
    carbon = CarbonOptions(region, factor_year_offset, factor_fallback, equal_value_kgce_per_kwh)
    now = as_of or datetime.now(timezone.utc)
    log = get_run_logger()
    out = []
    for e in list_enterprises(url, enterprise):
        # early in January, late readings can still change the last days of the year before
        for year in sorted({year_of(e, now - LATE_YEAR_GRACE), year_of(e, now)}):
            data = load_year(url, e, year, now)
            m = compute(data)
            m.carbon = write_metrics(url, m, carbon)
            pct = f"{m.share.percent:.2f} % ({m.share.status})" if m.share and m.share.percent is not None else "n/a"
            log.info("%s %d: %d days rebalanced, year-to-date green share %s, carbon %s", e.code, m.year,
                     len(m.daily), pct, m.carbon["status"] if m.carbon else "n/a")
            if m.carbon and m.carbon.get("note"):
                log.warning("%s %d carbon: %s", e.code, m.year, m.carbon["note"])
            out.append(m)
    return out
