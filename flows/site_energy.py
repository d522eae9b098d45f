"""A site's energy for a period: readings -> interval energy -> balance -> green share.

Thin by design: reads from :mod:`store`, calls the pure functions in :mod:`metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from metrics.balance import BalanceTotals, IntervalBalance, site_balance, totals
from metrics.energy import CounterFinding, IntervalEnergy, continuous_counter, interval_energy, sum_by_interval
from metrics.green_share import GreenShare, green_share
from store.queries import counter_series
from store.sites import PointRow, site_points

BALANCE_ROLES = ("grid_import", "grid_export", "pv_generation", "storage_charge", "storage_discharge")


@dataclass
class SiteEnergy:
    enterprise: str
    start: datetime
    end: datetime
    points: list[PointRow]
    balance: list[IntervalBalance]
    totals: BalanceTotals
    share: GreenShare | None
    findings: list[CounterFinding]


def point_intervals(
    conn: psycopg.Connection, points: list[PointRow], start: datetime, end: datetime
) -> tuple[dict[int, list[IntervalEnergy]], list[CounterFinding]]:
    """Interval energy of each counter point, for the intervals starting in [start, end)."""
    series = counter_series(conn, [p.point_id for p in points], start, end)
    out: dict[int, list[IntervalEnergy]] = {}
    findings: list[CounterFinding] = []
    for pid, (ts, values) in series.items():
        cont, f = continuous_counter(values, ts)
        findings.extend(f)
        out[pid] = [iv for iv in interval_energy(ts, cont) if start <= iv.start < end]
    return out, findings


def site_energy(conn: psycopg.Connection, enterprise: str, start: datetime, end: datetime) -> SiteEnergy:
    points = [p for p in site_points(conn, enterprise) if p.role in BALANCE_ROLES]
    per_point, findings = point_intervals(conn, points, start, end)
    by_role = {
        role: sum_by_interval([per_point[p.point_id] for p in points if p.role == role])
        for role in BALANCE_ROLES
    }
    balance, _ = site_balance(by_role)
    t = totals(balance)
    share = green_share(t.green_wh, t.consumption_wh) if t.consumption_wh > 0 else None
    return SiteEnergy(enterprise, start, end, points, balance, t, share, findings)
