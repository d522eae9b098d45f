"""Commands for energy accounting: reading imports, the certificate ledger, meter replacements and
the green-share report (rule R1). Registered in :mod:`greengauge.cli` with ``add_typer``."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table


import_app = typer.Typer(help="Import history from other systems.", no_args_is_help=True)
ledger_app = typer.Typer(help="The green certificate (GEC) and green-power-trade ledger.", no_args_is_help=True)
ledger_add_app = typer.Typer(help="Add one trade or one certificate range.", no_args_is_help=True)
meter_app = typer.Typer(help="Meter events.", no_args_is_help=True)
green_share_app = typer.Typer(help="Green-electricity share against 30 % (rule R1).", invoke_without_command=True)
ledger_app.add_typer(ledger_add_app, name="add")

from greengauge.terminal import connect, console, fail
from metrics.green_share import COMPLETENESS_THRESHOLD


@import_app.command("readings")
def import_readings_cmd(
    file: Path = typer.Argument(..., help="CSV with header point,ts,value[,unit]"),
    unit: Optional[str] = typer.Option(None, help="the values' unit for rows without a unit column: Wh, kWh or MWh"),
    enterprise: Optional[str] = typer.Option(None, help="the enterprise the file's points belong to "
                                                         "(default: that of its first known point)"),
    resolution: Optional[str] = typer.Option(None, help="the interval the readings were taken at, e.g. 1h or 1d: "
                                                         "readings that far apart are measured time, not estimated"),
) -> None:
    """Import readings (long format: point name, ISO-8601 time with offset, value in --unit or the
    row's unit). All or nothing; importing the same file twice changes nothing."""
    from store.readings_import import ImportError_, import_readings, parse_resolution

    res = _parse("--resolution", parse_resolution, resolution) if resolution is not None else None
    with connect() as conn:
        try:
            rows, new, repeated = import_readings(conn, file, unit=unit, enterprise=enterprise, resolution_s=res)
        except ImportError_ as exc:
            fail(str(exc))
    again = f", {repeated} repeating an earlier line" if repeated else ""
    console.print(f"{file.name}: {rows} rows read, {new} new, {rows - new - repeated} already stored{again}",
                  highlight=False)


@ledger_app.command("import")
def ledger_import_cmd(file: Path = typer.Argument(..., help="CSV: kind,enterprise,reference,date,mwh,"
                                                   "serial_first,serial_last,production_month,trade")) -> None:
    """Import trades and certificates. All or nothing: an error names the line and field."""
    from store.ledger import LedgerError, import_csv

    with connect() as conn:
        try:
            n = import_csv(conn, file)
        except LedgerError as exc:
            fail(str(exc))
    console.print(f"{file.name}: {n} ledger entries added", highlight=False)


def _add(entry, label: str) -> None:
    from store.ledger import LedgerError, add_entries

    with connect() as conn:
        try:
            add_entries(conn, [entry], [label])
        except LedgerError as exc:
            fail(str(exc))


def _parse(what: str, fn, value):
    try:
        return fn(value)
    except ValueError as exc:
        fail(f"{what}: {exc}")


@ledger_add_app.command("trade")
def ledger_add_trade(
    enterprise: str = typer.Option(..., help="enterprise code"),
    reference: str = typer.Option(..., help="the trade's reference (contract or settlement number)"),
    settled_on: str = typer.Option(..., help="settlement date YYYY-MM-DD (local)"),
    mwh: str = typer.Option(..., help="settled volume [MWh], exact decimal"),
) -> None:
    """Add a settled green-power trade (绿电交易)."""
    from store.ledger import TradeEntry, mwh_to_wh, parse_date

    e = TradeEntry(enterprise, reference, _parse("--settled-on", parse_date, settled_on),
                   _parse("--mwh", mwh_to_wh, mwh))
    _add(e, f"trade {reference}")
    console.print(f"trade {reference}: {Decimal(mwh)} MWh settled {e.settled_on} for {enterprise}", highlight=False)


@ledger_add_app.command("gec")
def ledger_add_gec(
    enterprise: str = typer.Option(..., help="enterprise code"),
    serial: str = typer.Option(..., help="certificate serial, or the first of a range"),
    to: Optional[str] = typer.Option(None, "--to", help="last serial of a range (inclusive)"),
    production_month: str = typer.Option(..., help="production month YYYY-MM"),
    retired_on: str = typer.Option(..., help="date retired for the enterprise, or delivered with the trade"),
    trade: Optional[str] = typer.Option(None, help="reference of the trade it was delivered with (bundled)"),
    reference: Optional[str] = typer.Option(None, help="retirement reference"),
) -> None:
    """Add green certificates (绿证, 1 MWh each), retired for the enterprise or bundled with a trade."""
    from metrics.ledger import serial_range
    from store.ledger import CertificateEntry, check_certificate, parse_date, parse_month

    first, last = _parse("--serial/--to", lambda _: serial_range(serial, to), None)
    e = CertificateEntry(enterprise, first, last, _parse("--production-month", parse_month, production_month),
                         _parse("--retired-on", parse_date, retired_on), trade, reference)
    _parse("--retired-on", check_certificate, e)
    _add(e, f"certificate {e.label}")
    how = f"delivered with trade {trade}" if trade else "retired"
    console.print(f"GEC {e.label}: {e.count} MWh {how} on {e.used_on} for {enterprise}", highlight=False)


@meter_app.command("replace")
def meter_replace(
    point: str = typer.Option(..., help="point name, e.g. grid.energy_import"),
    at: str = typer.Option(..., help="time of the swap, ISO 8601 with offset; a reading at this instant is the "
                                      "old meter's final reading"),
    old_final_wh: float = typer.Option(..., help="the old meter's final reading [Wh]"),
    new_initial_wh: float = typer.Option(..., help="the new meter's initial reading [Wh]"),
    reason: str = typer.Option(..., help="why the meter was replaced (with --force: also why the figures stand)"),
    force: bool = typer.Option(False, "--force", help="record it although the readings around the swap "
                                                      "contradict the figures"),
) -> None:
    """Record a meter replacement so energy stays continuous across it.

    The figures are checked against the readings around the swap; an impossible one is refused
    unless --force. The point's stored intervals are recomputed by the next rollup, the daily
    balances, year-to-date figures and decisions it touches by the next metrics and eligibility
    passes; the backfill that does it at once is printed."""
    from store.events import point_enterprise, record_replacement

    ts = _parse("--at", datetime.fromisoformat, at)
    with connect() as conn:
        try:
            rid = record_replacement(conn, point, ts, old_final_wh, new_initial_wh, reason, force=force)
            enterprise, tz = point_enterprise(conn, point)
        except (LookupError, ValueError) as exc:
            fail(str(exc).strip("'\""))
    console.print(f"replacement {rid} recorded for {point} at {ts.isoformat()}", highlight=False)
    _backfill_hint(point, ts, enterprise, tz)


def _backfill_hint(point: str, ts: datetime, enterprise: str, tz: str) -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    day, today = ts.astimezone(zone).date(), datetime.now(zone).date()
    console.print(f"the next rollup recomputes {point}'s intervals from {ts.isoformat()}, and the scheduled metrics "
                  f"and eligibility flows then the daily balances, year-to-date figures and eligibility of "
                  f"{enterprise} they touch (late data: docs/accounting.md); to bring them current now, run:\n"
                  f"  greengauge flows backfill {enterprise} --from {day} --to {today}", highlight=False)


@meter_app.command("list")
def meter_list(
    enterprise: Optional[str] = typer.Option(None, help="only this enterprise's points"),
    point: Optional[str] = typer.Option(None, help="only this point"),
) -> None:
    """Recorded meter replacements, revoked ones included (they are never deleted)."""
    from store.events import list_replacements

    with connect() as conn:
        rows = list_replacements(conn, enterprise=enterprise, point=point)
    if not rows:
        console.print("no meter replacements recorded", highlight=False)
        return
    for r in rows:  # one line each, so it reads in a narrow terminal and greps
        state = (f"revoked {r.revoked_at.isoformat(timespec='seconds')}: {r.revoked_reason}" if r.revoked_at
                 else "forced" if r.forced else "live")
        console.print(f"{r.replacement_id}  {r.point}  {r.ts.isoformat()}  old final {r.old_final_wh:g} Wh  "
                      f"new initial {r.new_initial_wh:g} Wh  reason: {r.reason}  [{state}]",
                      highlight=False, markup=False)


@meter_app.command("revoke")
def meter_revoke(
    replacement_id: int = typer.Argument(..., help="the id `meter list` shows"),
    reason: str = typer.Option(..., help="why the replacement was wrong"),
) -> None:
    """Revoke a recorded replacement (kept with the time and reason, never deleted); the point's
    intervals from the swap on are recomputed by the next rollup."""
    from store.events import point_enterprise, revoke_replacement

    with connect() as conn:
        try:
            r = revoke_replacement(conn, replacement_id, reason)
            enterprise, tz = point_enterprise(conn, r.point)
        except (LookupError, ValueError) as exc:
            fail(str(exc).strip("'\""))
    console.print(f"replacement {r.replacement_id} of {r.point} at {r.ts.isoformat()} revoked", highlight=False)
    _backfill_hint(r.point, r.ts, enterprise, tz)


def bring_current(enterprise: str | None) -> dict:
    """Roll the enterprise's readings up to ``interval_energy`` (incrementally, as the rollup flow
    does; ``None``: every enterprise) so a report reads the same stored data the flows compute
    their figures from. Returns how current that data is (the JSON's ``data`` field): the source
    and the oldest rollup watermark (every reading up to it is in)."""
    from flows.rollup import rollup
    from model.settings import get_settings

    rollup(get_settings().database_url, enterprise=enterprise)
    with connect() as conn:
        upto = conn.execute(
            """SELECT min(w.last_reading_ts) FROM rollup_watermark w JOIN point p USING (point_id)
               JOIN device d USING (device_id) JOIN site s USING (site_id) JOIN enterprise e USING (enterprise_id)
               WHERE %(e)s::text IS NULL OR e.code = %(e)s""", {"e": enterprise}).fetchone()[0]
    return {"source": "interval_energy (the stored rollup, brought up to date before this report)",
            "rolled_up_to": upto.isoformat() if upto else None}


def _current(data, current: dict) -> dict:
    return {**current, "intervals_computed_at": data.computed_at}


def balance_json(se, data, current: dict, kind: str, ref) -> dict:
    """``report balance --format json``: the balance totals, the green share of on-site green, the
    measured-interval completeness and the per-point evidence (the fields of ``daily_balance``)."""
    from metrics.evidence import jsonable

    t = se.totals
    return jsonable({
        "enterprise": se.enterprise, "period": {"kind": kind, "ref": ref, "start": se.start, "end": se.end,
                                                "timezone": data.timezone},
        "energy_wh": {"import": t.import_wh, "export": t.export_wh, "pv": t.pv_wh, "charge": t.charge_wh,
                      "discharge": t.discharge_wh, "consumption": t.consumption_wh,
                      "pv_self_consumed": t.pv_self_consumed_wh, "green": t.green_wh},
        "intervals": t.intervals, "estimated_intervals": t.estimated_intervals,
        "measured_intervals": se.measured_intervals, "expected_intervals": se.expected_intervals,
        "completeness": se.completeness,
        "share": None if se.share is None else se.share.share,
        # R1's decision (completeness included), in this report's words
        "status": {"qualifies": "reaches", "does_not_qualify": "below"}.get(se.onsite_status, "unknown"),
        "evidence": {"points": [vars(s.evidence()) for s in se.per_point.values()],
                     "findings": [vars(f) for f in se.point_findings],
                     "other_findings": [f"{f.kind} {f.ts.isoformat()} {f.detail}" for f in se.findings
                                        if f.kind == "balance_inconsistent"],
                     "inputs_sha256": se.inputs_sha256},
        "data": _current(data, current),
    })


def _kwh(wh: int) -> str:
    return f"{wh / 1000:,.3f}"


def _pct(f: Fraction | None) -> str:
    """Cut, never rounded up: a share below 30 % never shows as 30.000 % (metrics.green_share.percent_text)."""
    from metrics.green_share import THRESHOLD, percent_text

    return percent_text(f, threshold=THRESHOLD)


@green_share_app.callback()
def report_green_share(
    enterprise: str = typer.Option(..., help="enterprise code"),
    year: int = typer.Option(..., help="local calendar year"),
    format: str = typer.Option("table", "--format", help="table or json"),
    as_of: Optional[str] = typer.Option(None, help="year to date at this time (ISO 8601 with offset); default now"),
    exclude_suspect: bool = typer.Option(False, help="cap spike steps at the point's rating instead of counting them"),
    completeness_threshold: int = typer.Option(int(COMPLETENESS_THRESHOLD * 100),
                                               help="below this completeness [%] the result is unknown"),
) -> None:
    """Green-electricity share of an enterprise's year (or year to date) against 30 % (rule R1)."""
    from accounting.site_energy import green_share_json, green_share_report

    if format not in ("table", "json"):
        fail(f"--format {format!r}: use table or json")
    now = _parse("--as-of", datetime.fromisoformat, as_of) if as_of else None
    if now is not None and now.tzinfo is None:
        fail(f"--as-of {as_of!r} has no UTC offset")
    with connect() as conn:
        try:
            from store.sites import enterprise_timezone

            enterprise_timezone(conn, enterprise)
        except LookupError as exc:
            fail(str(exc).strip("'\""))
    current = bring_current(enterprise)
    with connect() as conn:
        try:
            r = green_share_report(conn, enterprise, year, as_of=now, count_suspect=not exclude_suspect,
                                   completeness_threshold=Fraction(completeness_threshold, 100))
        except (LookupError, ValueError) as exc:
            fail(str(exc).strip("'\""))
    if format == "json":
        from metrics.evidence import jsonable

        print(json.dumps({**green_share_json(r), "data": jsonable(current)}, ensure_ascii=False, indent=2))
        return
    ev = r.evidence
    table = Table(title=f"{enterprise}: green electricity {year} ({ev.period_start.isoformat()} – "
                        f"{ev.period_end.isoformat()}, {ev.timezone})")
    table.add_column("quantity")
    table.add_column("kWh", justify="right")
    for label, wh in [("PV self-consumed incl. green battery discharge", r.onsite_green_wh),
                      ("green-power trades settled", r.trade_wh), ("green certificates retired", r.certificate_wh),
                      ("green electricity counted", r.green_wh), ("consumption", r.consumption_wh)]:
        table.add_row(label, _kwh(wh))
    console.print(table)
    console.print(f"share: {_pct(r.share)} (exact {r.share}) — [bold]{r.status}[/bold]; threshold 30 % inclusive "
                  "(2024-2 §三(一), 2025-5 §三(三); Civil Code Art. 1259)", highlight=False)
    console.print(f"completeness: {_pct(r.completeness)} (unknown below {_pct(r.completeness_threshold)}); "
                  f"spike energy {'counted' if r.count_suspect else 'capped at rating'}", highlight=False)
    from metrics.green_share import plural

    console.print(f"missing to reach 30 %: {_kwh(r.missing_wh)} kWh = {plural(r.certificates_to_buy, 'certificate')} "
                  "to buy", highlight=False)
    if r.projection is not None:
        p = r.projection
        console.print(f"year-end projection ({_pct(p.elapsed)} of the year elapsed): {_pct(p.share)}; "
                      f"{plural(p.certificates_to_buy, 'certificate')} to buy by year end", highlight=False)
    if r.hourly is not None:
        console.print(f"hourly-matched share: {_pct(r.hourly.share)}", highlight=False)
    counts = ev.intervals
    console.print(f"evidence: {len(ev.points)} points, intervals {counts}, {len(ev.findings)} findings, "
                  f"{len(ev.ledger_entries)} ledger entries, inputs sha256 {ev.inputs_sha256}, "
                  f"code {ev.code_version}", highlight=False)
    for f in ev.findings:
        console.print(f"  finding {f.kind} {f.point} {f.ts.isoformat()}: {f.detail}", highlight=False)
    for e in ev.ledger_entries:
        console.print(f"  ledger: {e}", highlight=False)
