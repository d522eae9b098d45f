"""Per enterprise: daily balance, year-to-date green share, year-end projection and gap to 30 %.

Reads rolled-up interval energy (flows/rollup.py keeps it current), calls metrics/ (balance,
green share) and flows/projection.py, and writes every result of an enterprise in one
transaction. Daily balances are recomputed only for the local days whose intervals changed since
they were last computed; the year to date is recomputed every run.

Carbon and standard coal are not written yet: metrics/carbon.py does not exist on this branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import psycopg
from prefect import flow, get_run_logger

from flows.projection import Projection, project_year_end
from flows.site_energy import BALANCE_ROLES
from flows.tasks import io_task, metric_task, resolve_url
from metrics.balance import BalanceTotals, site_balance, totals
from metrics.energy import INTERVAL_S, IntervalEnergy, sum_by_interval
from metrics.green_share import GreenShare, green_share
from metrics.periods import local_bounds
from store.results import (Enterprise, dirty_days, enterprises, lock, write_daily_balance,
                           write_green_share_ytd, write_projection)
from store.rollups import interval_rows
from store.sites import site_points

RoleEnergy = dict[str, dict[datetime, IntervalEnergy]]
_STEP = timedelta(seconds=INTERVAL_S)
BASIS_DAYS = 30
#: how long after New Year the metrics flow still rebalances the year before
LATE_YEAR_GRACE = timedelta(days=3)


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


@dataclass
class EnterpriseMetrics:
    enterprise: Enterprise
    year: int
    data_through: datetime | None
    daily: dict[date, tuple[BalanceTotals, datetime | None]]
    ytd: BalanceTotals
    share: GreenShare | None
    projection: Projection | None


def load_role_energy(conn: psycopg.Connection, enterprise: str, start: datetime, end: datetime
                     ) -> tuple[RoleEnergy, list[int]]:
    """Stored interval energy per balance role for intervals starting in [start, end), summed over
    the points of each role as flows/site_energy.py does."""
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
    return YearData(e, year, start, end, upto, by_role, ids, dirty, sources)


load_year = io_task(read_year, task_run_name="load-year")


def _slice(by_role: RoleEnergy, start: datetime, end: datetime) -> RoleEnergy:
    return {role: {t: iv for t, iv in s.items() if start <= t < end} for role, s in by_role.items()}


def compute_metrics(data: YearData, basis_days: int = BASIS_DAYS) -> EnterpriseMetrics:
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
    share = green_share(ytd.green_wh, ytd.consumption_wh) if ytd.consumption_wh > 0 else None
    through = ytd_balance[-1].start + _STEP if ytd_balance else None
    projection = None
    if through is not None:
        basis_start = max(data.start, through - timedelta(days=basis_days))
        recent = totals([b for b in ytd_balance if b.start >= basis_start])
        projection = project_year_end(ytd.green_wh, ytd.consumption_wh, recent.green_wh, recent.consumption_wh,
                                      int((through - basis_start).total_seconds()),
                                      int(max((data.end - through).total_seconds(), 0)))
    return EnterpriseMetrics(e, data.year, through, daily, ytd, share, projection)


compute = metric_task(compute_metrics, task_run_name="compute-metrics")


def store_metrics(url: str, m: EnterpriseMetrics) -> None:
    """All of an enterprise's results in one transaction: all visible, or none."""
    with psycopg.connect(url) as conn, conn.transaction():
        lock(conn, f"greengauge.flows.metrics.{m.enterprise.enterprise_id}")
        for d, (t, source) in m.daily.items():
            write_daily_balance(conn, m.enterprise.enterprise_id, d, t, source)
        if m.data_through is not None:
            write_green_share_ytd(conn, m.enterprise.enterprise_id, m.year, m.data_through, m.ytd,
                                  m.share.share if m.share else None, m.share.qualifies if m.share else None)
            if m.projection is not None:
                write_projection(conn, m.enterprise.enterprise_id, m.year, m.data_through, m.projection)


write_metrics = io_task(store_metrics, task_run_name="write-metrics")


def enterprise_metrics(url: str, e: Enterprise, as_of: datetime, *, year: int | None = None,
                       days: list[date] | None = None, basis_days: int = BASIS_DAYS) -> EnterpriseMetrics:
    """Plain-function form of one enterprise's metrics run (backfill and tests use it)."""
    m = compute_metrics(read_year(url, e, year or year_of(e, as_of), as_of, days), basis_days)
    store_metrics(url, m)
    return m


@flow(name="metrics")
def metrics_flow(database_url: str | None = None, enterprise: str | None = None, as_of: datetime | None = None,
                 basis_days: int = BASIS_DAYS) -> list[EnterpriseMetrics]:
    """Daily balance, year-to-date green share, projection and gap to 30 % for every enterprise."""
    url = resolve_url(database_url)
    now = as_of or datetime.now(timezone.utc)
    log = get_run_logger()
    out = []
    for e in list_enterprises(url, enterprise):
        # early in January, late readings can still change the last days of the year before
        for year in sorted({year_of(e, now - LATE_YEAR_GRACE), year_of(e, now)}):
            data = load_year(url, e, year, now)
            m = compute(data, basis_days)
            write_metrics(url, m)
            pct = f"{m.share.percent:.2f} %" if m.share else "n/a"
            log.info("%s %d: %d days rebalanced, year-to-date green share %s", e.code, m.year, len(m.daily), pct)
            out.append(m)
    return out
