"""``greengauge status``: the health of every device and the collector's latest findings."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text


def _ago(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "never"
    s = int((now - ts).total_seconds())
    if s < 0:
        return ts.isoformat(timespec="seconds")
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit} ago"
    return f"{s} s ago"


def status(
    enterprise: Optional[str] = typer.Option(None, help="only this enterprise's devices and the findings tied "
                                                        "to them (findings tied to no device: without it)"),
    findings: int = typer.Option(20, help="how many of the latest findings to show (0: none)"),
    lang: str = typer.Option("en", help="language of the findings' text: en or zh"),
) -> None:
    """Health of each device (last success, failures in a row, latency, error) and recent findings."""
    from greengauge.findings_text import LANGUAGES, describe, subject
    from greengauge.terminal import connect, console, fail, require_schema
    from store.health import device_status
    from store.health import findings as latest_findings

    if lang not in LANGUAGES:
        fail(f"--lang {lang}: give one of {', '.join(LANGUAGES)}")
    now = datetime.now(timezone.utc)
    with connect() as conn:
        require_schema(conn)
        rows = device_status(conn, enterprise)
        found = latest_findings(conn, enterprise, findings) if findings else []
    table = Table(title="devices", title_justify="left")
    table.add_column("device", no_wrap=True)
    for col in ("via", "status", "last success", "failures", "latency", "last reading", "error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        state = {"ok": "[green]ok[/green]", "away": "[red]away[/red]", None: "[dim]not seen[/dim]"}[r.status]
        if r.status and r.since:
            state += f" since {_ago(r.since, now)}"
        if r.stopped_at is not None:  # its collector stopped: what it last saw is no longer current
            state = f"[yellow]not collected[/yellow] since {_ago(r.stopped_at, now)} (last: {r.status})"
        table.add_row(f"{r.enterprise}/{r.site}/{r.device}", r.kind or "?", state, _ago(r.last_success, now),
                      "" if r.consecutive_failures is None else str(r.consecutive_failures),
                      "" if r.latency_ms is None else f"{r.latency_ms:.0f} ms", _ago(r.last_reading, now),
                      r.last_error or "")
    console.print(table)
    away = sum(1 for r in rows if r.status == "away" and r.stopped_at is None)
    stopped = sum(1 for r in rows if r.stopped_at is not None)
    console.print(f"{len(rows)} devices, {away} away" + (f", {stopped} not collected (their collector stopped)"
                                                         if stopped else ""))
    if found:
        ft = Table(title="findings (latest first)", title_justify="left")
        for col in ("kind", "about", "count", "since", "last seen"):
            ft.add_column(col, overflow="fold")  # a file name or topic is folded, never cut
        ft.add_column("finding", overflow="fold", min_width=30)  # the text gets the room first
        for f in found:
            ended = f" (ended {_ago(f.closed_at, now)})" if f.closed_at else ""
            ft.add_row(Text(str(f.kind)), Text(subject(f)), str(f.count), _ago(f.opened_at, now) + ended,
                       _ago(f.last_seen, now), Text(describe(f, lang)))  # Text: data is never read as markup
        console.print(ft)
