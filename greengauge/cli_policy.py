"""Commands of the policy engine: ``facts import``, ``policies list``, ``report awards``.

Registered on the main app by importing this module (one line at the end of greengauge/cli.py).
The engine itself is pure (metrics/policy); this module reads facts and metered energy from the
store, builds an :class:`~metrics.policy.EnterpriseYear`, evaluates and prints.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

import psycopg
import typer
from rich.table import Table

from greengauge.cli import app, connect, console, fail, report_app
from metrics.policy import EnterpriseYear, Evaluation, evaluate, load_documents, telemetry_checks

facts_app = typer.Typer(help="Facts people record: listings, certifications, grants, PV projects.", no_args_is_help=True)
policies_app = typer.Typer(help="The policy documents the engine applies.", no_args_is_help=True)
app.add_typer(facts_app, name="facts")
app.add_typer(policies_app, name="policies")

DEFAULT_REGION = "福建省/泉州市/晋江市"


@facts_app.command("import")
def facts_import(file: Path) -> None:
    """Record the facts of a CSV file, all or nothing (columns: see store/facts.py)."""
    from store.facts import FactsError, import_facts_file

    with connect() as conn:
        try:
            res = import_facts_file(conn, file)
        except FactsError as exc:
            fail(f"nothing imported:\n{exc}")
    console.print(f"{file}: {res.facts} facts and {res.projects} PV projects recorded")


@policies_app.command("list")
def policies_list() -> None:
    """The documents, their windows, what repealed them, and their rules."""
    for d in sorted(load_documents(), key=lambda d: (d.issued or date.min, d.number)):
        console.print(f"[bold]{d.number}[/bold]  {d.title}", highlight=False)
        window = f"{d.in_force.start or '?'}..{d.in_force.end or '?'}"
        console.print(f"  {d.jurisdiction} · issued {d.issued or '?'} · in force {window} · "
                      f"cases reached {d.first_day or '?'}..{d.last_day or '?'}", highlight=False)
        extra = []
        if d.repealed:
            extra.append(f"repealed by {d.repealed.by} on {d.repealed.on}")
        if d.overlap:
            extra.append(f"overlap: {d.overlap.principle} ({d.overlap.clause})")
        if extra:
            console.print("  " + " · ".join(extra), highlight=False)
        console.print("  rules: " + ", ".join(f"{r.clause} {r.id}" for r in d.rules), highlight=False)


def _local_day_start(d: date, tz: str) -> datetime:
    return datetime.combine(d, time(), ZoneInfo(tz))


def enterprise_year(conn: psycopg.Connection, enterprise: str, year: int, *, subproject: str | None = None,
                    region: str = DEFAULT_REGION) -> tuple[EnterpriseYear, dict[str, Any]]:
    """Build the engine's input for one enterprise and local calendar year from the store.

    The recycling project's electricity is the sum of the points with role ``subproject`` and the
    given sub-project name (or the only sub-project the enterprise has). Green share comes from the
    site balance of the year. PV telemetry checks run for projects commissioned in the year when
    the enterprise has exactly one PV project (points are not linked to projects).

    Raises
    ------
    LookupError
        for an unknown enterprise; ValueError for an ambiguous or unknown sub-project.
    """
    from flows.site_energy import point_intervals, site_energy
    from metrics.energy import sum_by_interval
    from metrics.periods import local_bounds
    from store.facts import enterprise_facts, enterprise_projects
    from store.sites import enterprise_timezone, site_points

    tz = enterprise_timezone(conn, enterprise)
    start, end = local_bounds("year", date(year, 1, 1), tz)
    points = site_points(conn, enterprise)
    subs = sorted({p.subproject for p in points if p.role == "subproject"})
    if subproject is None and len(subs) > 1:
        raise ValueError(f"{enterprise} has several sub-projects ({', '.join(subs)}): choose one with --subproject")
    if subproject is not None and subproject not in subs:
        raise ValueError(f"{enterprise} has no sub-project {subproject!r} (known: {', '.join(subs) or 'none'})")
    sub = subproject or (subs[0] if subs else None)
    evidence: dict[str, Any] = {"timezone": tz, "period_utc": [start.isoformat(), end.isoformat()], "subproject": sub}
    recycling_wh = None
    if sub is not None:
        sub_points = [p for p in points if p.role == "subproject" and p.subproject == sub]
        per_point, findings = point_intervals(conn, sub_points, start, end)
        ivs = [iv for s in per_point.values() for iv in s]
        if ivs:
            recycling_wh = sum(iv.energy_wh for iv in ivs)
        evidence["recycling"] = {
            "points": [p.name for p in sub_points], "intervals": len(ivs),
            "estimated_intervals": sum(iv.estimated for iv in ivs), "energy_wh": recycling_wh,
            "findings": [f"{f.kind} {f.ts.isoformat()} {f.detail}" for f in findings],
        }
    se = site_energy(conn, enterprise, start, end)
    green_wh = consumption_wh = None
    if se.totals.consumption_wh > 0:
        green_wh, consumption_wh = se.totals.green_wh, se.totals.consumption_wh
    evidence["green_share"] = {"green_wh": green_wh, "consumption_wh": consumption_wh,
                               "intervals": se.totals.intervals, "estimated_intervals": se.totals.estimated_intervals}
    projects = enterprise_projects(conn, enterprise)
    if len(projects) == 1 and projects[0].commissioned.year == year:
        p = projects[0]
        lo = _local_day_start(p.commissioned, tz) - timedelta(days=7)
        pv_pts = [x for x in points if x.role == "pv_generation"]
        dis_pts = [x for x in points if x.role == "storage_discharge"]
        pv_iv, _ = point_intervals(conn, pv_pts, lo, end) if pv_pts else ({}, [])
        dis_iv, _ = point_intervals(conn, dis_pts, lo, end) if dis_pts else ({}, [])
        pv_series = list(sum_by_interval(list(pv_iv.values())).values()) if pv_pts else None
        dis_series = list(sum_by_interval(list(dis_iv.values())).values()) if dis_pts else None
        checks = telemetry_checks(p.pv_w, p.commissioned, pv_intervals=pv_series, discharge_intervals=dis_series,
                                  storage_power_w=p.storage.power_w if p.storage else None, tz=tz)
        projects = (type(p)(p.id, p.pv_w, p.commissioned, p.storage, checks),)
    ey = EnterpriseYear(enterprise, year, region=region, recycling_wh=recycling_wh, green_wh=green_wh,
                        consumption_wh=consumption_wh, facts=enterprise_facts(conn, enterprise), projects=projects)
    return ey, evidence


def _print_table(result: Evaluation) -> None:
    table = Table(title=f"{result.enterprise} {result.year}: award candidates", show_header=True)
    for col in ("", "document", "clause", "subject", "status", "yuan"):
        table.add_column(col, justify="right" if col == "yuan" else "left")
    order = {"qualifies": 0, "unknown": 1, "does_not_qualify": 2, "not_applicable": 3}
    shown = sorted(result.candidates, key=lambda c: (not c.chosen, order[c.status], c.group))
    for c in shown:
        table.add_row("✓" if c.chosen else "", c.document, c.clause, c.subject, c.status,
                      "" if c.amount is None else f"{c.amount:,}")
    console.print(table)
    for c in shown:
        if c.status in ("qualifies", "unknown"):
            console.print(f"{'✓' if c.chosen else '·'} {c.document} {c.clause} {c.rule} ({c.subject}): {c.status}",
                          highlight=False)
            for r in c.reasons:
                console.print(f"    {r}", highlight=False)
            if c.choice:
                console.print(f"    → {c.choice}", highlight=False)
    console.print(f"total of the chosen awards: {result.total:,} yuan", highlight=False)


@report_app.command("awards")
def report_awards(
    enterprise: str = typer.Option(..., help="enterprise code"),
    year: int = typer.Option(..., help="local calendar year"),
    format: str = typer.Option("table", "--format", help="table or json"),
    subproject: Optional[str] = typer.Option(None, help="the recycling sub-project (default: the only one)"),
    region: str = typer.Option(DEFAULT_REGION, help="where the enterprise is, as 省/市/区县"),
) -> None:
    """Every award candidate for an enterprise and year: document, clause, status, amount, evidence."""
    if format not in ("table", "json"):
        fail(f"--format must be table or json, got {format!r}")
    with connect() as conn:
        try:
            ey, inputs = enterprise_year(conn, enterprise, year, subproject=subproject, region=region)
        except (LookupError, ValueError) as exc:
            fail(str(exc))
    try:
        result = evaluate(ey)
    except ValueError as exc:
        fail(str(exc))
    if format == "json":
        out = result.to_dict()
        out["metering"] = inputs  # how the energy inputs were obtained (points, intervals, findings)
        console.print_json(json.dumps(out, ensure_ascii=False, default=str))
    else:
        _print_table(result)
