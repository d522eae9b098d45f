"""Commands of the policy engine: ``facts import``, ``production import``, ``policies list``,
``report awards``, ``report intensity``, ``report carbon``.

Registered on the main app explicitly, in greengauge/cli.py.
The engine itself is pure (metrics/policy); the inputs are read from the store by
:mod:`accounting.policy_inputs` (``enterprise_year`` lives there now and is re-exported here).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from accounting.policy_inputs import DEFAULT_REGION, enterprise_year  # noqa: F401  (re-exported)
from greengauge.terminal import connect, console, fail
from metrics.policy import Evaluation, evaluate
from model import CODE_VERSION
from model.tables import load_documents

facts_app = typer.Typer(help="Facts people record: listings, certifications, grants, PV projects.", no_args_is_help=True)
policies_app = typer.Typer(help="The policy documents the engine applies.", no_args_is_help=True)
production_app = typer.Typer(help="Production volumes, output value and the limit standards' reference values.",
                              no_args_is_help=True)


@facts_app.command("import")
def facts_import(file: Path) -> None:
    """Record the facts of a CSV file, all or nothing (columns: see store/facts.py)."""
    from store.facts import FactsError, import_facts_file

    with connect() as conn:
        try:
            res = import_facts_file(conn, file)
        except FactsError as exc:
            fail(f"nothing imported:\n{exc}" if "\n" in str(exc) else f"{exc} (nothing imported)")
    from metrics.green_share import plural

    console.print(f"{file}: {plural(res.facts, 'fact')} and {plural(res.projects, 'PV project')} recorded",
                  highlight=False)


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


def _print_table(result: Evaluation) -> None:
    table = Table(title=f"{result.enterprise} {result.year}: award candidates", show_header=True)
    for col in ("", "document", "clause", "subject", "status", "yuan"):
        table.add_column(col, justify="right" if col == "yuan" else "left")
    order = {"qualifies": 0, "qualifies_unverified": 1, "unknown": 2, "does_not_qualify": 3, "not_applicable": 4}
    shown = sorted(result.candidates, key=lambda c: (not c.chosen, order[c.status], c.group))
    for c in shown:
        table.add_row("✓" if c.chosen else "", c.document, c.clause, c.subject, c.status,
                      "" if c.amount is None else f"{c.amount:,}")
    console.print(table)
    for c in shown:
        if c.status in ("qualifies", "qualifies_unverified", "unknown"):
            console.print(f"{'✓' if c.chosen else '·'} {c.document} {c.clause} {c.rule} ({c.subject}): {c.status}",
                          highlight=False)
            for r in c.reasons:
                console.print(f"    {r}", highlight=False)
            if c.choice:
                console.print(f"    → {c.choice}", highlight=False)
    console.print(f"total of the chosen awards: {result.total:,} yuan"
                  + (f", of which {result.unverified_total:,} yuan rest on unverified telemetry (qualifies_unverified)"
                     if result.unverified_total else ""), highlight=False)


def report_awards(
    enterprise: str = typer.Option(..., help="enterprise code"),
    year: int = typer.Option(..., help="local calendar year"),
    format: str = typer.Option("table", "--format", help="table or json"),
    subproject: Optional[str] = typer.Option(None, help="the recycling sub-project (default: the only one)"),
    region: str = typer.Option(DEFAULT_REGION, help="where the enterprise is, as 省/市/区县"),
    storage_tolerance: str = typer.Option("0.05", help="shortfall accepted in the 2 h discharge check, as a fraction"),
) -> None:
    """Every award candidate for an enterprise and year: document, clause, status, amount, evidence."""
    if format not in ("table", "json"):
        fail(f"--format must be table or json, got {format!r}")
    tolerance = _decimal("--storage-tolerance", storage_tolerance)
    from greengauge.cli_accounting import bring_current

    current = bring_current(enterprise) if _known(enterprise) else {}
    with connect() as conn:
        try:
            ey, inputs = enterprise_year(conn, enterprise, year, subproject=subproject, region=region,
                                         tolerance=tolerance)
        except (LookupError, ValueError) as exc:
            fail(str(exc))
    try:
        result = evaluate(ey, load_documents(), code_version=CODE_VERSION)
    except ValueError as exc:
        fail(str(exc))
    if format == "json":
        out = result.to_dict()
        out["metering"] = inputs  # how the energy inputs were obtained (points, intervals, findings)
        out["data"] = current
        console.print_json(json.dumps(out, ensure_ascii=False, default=str))
    else:
        _print_table(result)


# ---- production, intensity, carbon ----------------------------------------------------------------

def _known(enterprise: str) -> bool:
    with connect() as conn:
        return conn.execute("SELECT 1 FROM enterprise WHERE code = %s", (enterprise,)).fetchone() is not None


def _decimal(option: str, text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        fail(f"{option} must be a number, got {text!r}")
    if not d.is_finite() or d < 0:
        fail(f"{option} must be a non-negative number, got {text}")
    return d


def _plain(v: Any) -> Any:
    """JSON-ready: Decimal as its exact string, a Fraction as a decimal to 6 places, dates ISO."""
    from fractions import Fraction

    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Fraction):
        return str((Decimal(v.numerator) / Decimal(v.denominator)).quantize(Decimal("0.000001")))
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, date):
        return v.isoformat()
    return v


def _num(v: Any, places: int = 2) -> str:
    if v is None:
        return "—"
    from fractions import Fraction

    if isinstance(v, Fraction):
        v = Decimal(v.numerator) / Decimal(v.denominator)
    return f"{Decimal(v):,.{places}f}"


@production_app.command("import")
def production_import(file: Path) -> None:
    """Record production volumes, output value and reference values from a CSV, all or nothing
    (columns: see store/production.py)."""
    from store.production import ProductionError, import_production_file

    with connect() as conn:
        try:
            res = import_production_file(conn, file)
        except ProductionError as exc:
            fail(f"nothing imported:\n{exc}" if "\n" in str(exc) else f"{exc} (nothing imported)")
    console.print(f"{file}: {res.production} production rows and {res.references} products' reference values recorded")


def report_intensity(
    industry: str = typer.Option(..., help="industry, as the site files' enterprise.industry"),
    year: int = typer.Option(..., help="local calendar year"),
    format: str = typer.Option("table", "--format", help="table or json"),
    bottom_fraction: Optional[str] = typer.Option(
        None, help="share of the industry flagged as its bottom (2024-2 §四(五) gives no number); default none"),
    equal_value: Optional[str] = typer.Option(
        None, help="kgce/kWh: convert electricity at this equal value (等价值) instead of 0.1229 (当量值)"),
) -> None:
    """Unit-product energy vs the limit standard (福建 002 第七条 3), energy per 10,000 yuan of output,
    and ranking within the industry (晋政规〔2024〕2号 §四(五))."""
    from accounting.policy_inputs import intensity_year

    if format not in ("table", "json"):
        fail(f"--format must be table or json, got {format!r}")
    frac = _decimal("--bottom-fraction", bottom_fraction) or Decimal(0)
    ev = _decimal("--equal-value", equal_value)
    from greengauge.cli_accounting import bring_current

    current = bring_current(None)  # every enterprise: the industry's ranking reads them all
    with connect() as conn:
        try:
            out = intensity_year(conn, industry, year, bottom_fraction=frac, equal_value_kgce_per_kwh=ev)
        except (LookupError, ValueError) as exc:
            fail(str(exc))
    if format == "json":
        console.print_json(json.dumps(_plain({**out, "data": current}), ensure_ascii=False))
        return
    table = Table(title=f"{industry} {year}: energy intensity ({out['electricity_method']} value)")
    for col in ("rank", "enterprise", "kgce", "output yuan", "kgce/10⁴ yuan", "bottom"):
        table.add_column(col, justify="left" if col == "enterprise" else "right")
    for e in out["enterprises"]:
        rank = "—" if e["rank"] is None else f"{e['rank']}/{e['of']}"
        table.add_row(rank, e["enterprise"], _num(e["energy_kgce"]), _num(e["output_value_yuan"]),
                      _num(e["kgce_per_10k_yuan"], 3), {True: "yes", False: "", None: e.get("not_ranked", "")}[e["bottom"]])
    console.print(table)
    for e in out["enterprises"]:
        for product, p in e["products"].items():
            reaches = p["reaches"] or {}
            levels = ", ".join(f"{k} {'✓' if v else '✗'}" for k, v in reaches.items() if v is not None) or "no reference"
            console.print(f"{e['enterprise']} {product}: {_num(p['quantity'])} units, "
                          f"{_num(p['kgce_per_unit'], 4)} kgce/unit ({levels})"
                          + ("" if p["kgce_per_unit"] is not None else f" — {e['production'][product]['energy']}"),
                          highlight=False)
    if not frac:
        console.print("bottom of the industry not flagged: give --bottom-fraction (the text states no share)",
                      highlight=False)


def report_carbon(
    enterprise: str = typer.Option(..., help="enterprise code"),
    year: int = typer.Option(..., help="local calendar year"),
    format: str = typer.Option("table", "--format", help="table or json"),
    factor_year_offset: int = typer.Option(0, help="factor year = year + offset (e.g. -2: the factor two years back)"),
    latest_available: bool = typer.Option(
        True, help="when the factor year is not published, take the latest earlier one (the factor's year is shown), "
                   "as the metrics flow stores carbon_ytd (status factor_fallback); --no-latest-available refuses"),
    region: str = typer.Option("national", help="grid region or province of the location-based factor"),
    equal_value: Optional[str] = typer.Option(
        None, help="kgce/kWh: also convert electricity at this equal value (等价值)"),
) -> None:
    """CO2 of purchased electricity (location- and market-based) and standard coal for a year."""
    from accounting.policy_inputs import carbon_year

    if format not in ("table", "json"):
        fail(f"--format must be table or json, got {format!r}")
    ev = _decimal("--equal-value", equal_value)
    from greengauge.cli_accounting import bring_current

    current = bring_current(enterprise) if _known(enterprise) else {}
    with connect() as conn:
        try:
            out = carbon_year(conn, enterprise, year, region=region, year_offset=factor_year_offset,
                              latest_available=latest_available, equal_value_kgce_per_kwh=ev)
        except (LookupError, ValueError) as exc:
            fail(str(exc))
    if format == "json":
        console.print_json(json.dumps(_plain({**out, "data": current}), ensure_ascii=False))
        return
    lb, mb = out["location_based"], out["market_based"]
    table = Table(title=f"{enterprise} {year}: carbon and standard coal"
                        + (f" — {out['note']}" if out["note"] else ""))
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("basis")
    kwh = Decimal(out["grid_import_wh"]) / 1000
    table.add_row("grid import", f"{_num(kwh)} kWh", "metered, local calendar year")
    for name, m in (("location-based", lb), ("market-based", mb)):
        f = m["factor"]
        table.add_row(f"CO2 {name}", f"{_num(m['co2_kg'] / 1000, 3)} t",
                      f"{f['value']} kgCO2/kWh, {f['region']} {f['year']} ({f['source']})")
    gi = mb["instruments"]
    table.add_row("covered by green instruments", f"{_num(Decimal(mb['covered_wh']) / 1000)} kWh",
                  f"trades {gi['green_trade_wh']} Wh, certificates {gi['certificates']}"
                  + (f" — rejected: {'; '.join(gi['rejected'])}" if gi["rejected"] else ""))
    for method, c in out["standard_coal"].items():
        table.add_row(f"standard coal ({method})", f"{_num(c['total_kgce'] / 1000, 3)} tce",
                      ", ".join(f"{k} {_num(v)} kgce" for k, v in c["by_carrier"].items()))
    if "equal_value" not in out["standard_coal"]:
        table.add_row("standard coal (equal_value)", "—", "give --equal-value (kgce/kWh) for the year")
    console.print(table)
