"""``greengauge flows``: serve the Prefect flows on their schedules, deploy them to a work pool,
run one now, or backfill a range. Prefect is imported only when a command needs it."""

from __future__ import annotations

import json
from datetime import date
from typing import Optional

import typer
from rich.table import Table

app = typer.Typer(help="Prefect flows that keep every figure current (rollup, metrics, eligibility, data quality).",
                  no_args_is_help=True)
from greengauge.terminal import console, fail  # noqa: E402


def _quiet_http() -> None:
    """Prefect's client logs every HTTP request at INFO; keep the flows' own logs readable."""
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)


def parse_every(items: list[str]) -> dict[str, int | None]:
    """``NAME=SECONDS`` pairs (``0`` unschedules a flow)."""
    out: dict[str, int | None] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValueError(f"--every {item!r}: expected NAME=SECONDS, e.g. rollup=300")
        out[name.strip()] = int(value)
    return out


def parse_params(items: list[str]) -> dict:
    """``k=v`` pairs; a value starting with ``[`` or ``{`` is JSON, anything else a string that
    Prefect converts to the parameter's type (dates, datetimes, numbers)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {item!r}: expected KEY=VALUE")
        value = value.strip()
        if value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"--param {key}: {exc}") from None
        out[key.strip().replace("-", "_")] = value
    return out


@app.command("list")
def list_flows(every: list[str] = typer.Option([], "--every", help="NAME=SECONDS override, as for serve")) -> None:
    """The flows and their schedules."""
    from flows.serve import FLOWS, schedules

    try:
        sched = schedules(parse_every(every))
    except ValueError as exc:
        fail(str(exc))
    table = Table("flow", "schedule", "what it does")
    for name, f in FLOWS.items():
        s = sched[name]
        table.add_row(name, f"every {s} s" if s else "on demand", (f.description or "").splitlines()[0])
    console.print(table)


@app.command("serve")
def serve(every: list[str] = typer.Option([], "--every", help="NAME=SECONDS: change a schedule (0: on demand only); repeatable"),
          limit: Optional[int] = typer.Option(None, help="most flow runs at once")) -> None:
    """Register every flow as a deployment with its schedule and run them here until Ctrl-C.

    Needs the Prefect server at PREFECT_API_URL: the temporary server Prefect starts when it is
    unset runs no scheduler, so nothing would ever run."""
    from prefect.settings import PREFECT_API_URL

    from flows.serve import schedules
    from flows.serve import serve as run_serve

    _quiet_http()
    if not PREFECT_API_URL.value():
        fail("PREFECT_API_URL is not set: start a Prefect server (`prefect server start`) and "
              "export PREFECT_API_URL=http://127.0.0.1:4200/api (docs/flows.md). Prefect's temporary "
              "server runs no scheduler, so served flows would never run.")
    try:
        overrides = parse_every(every)
        for name, s in schedules(overrides).items():
            console.print(f"{name}: {'every ' + str(s) + ' s' if s else 'on demand'}")
    except ValueError as exc:
        fail(str(exc))
    run_serve(overrides, limit=limit)


@app.command("deploy")
def deploy(work_pool: str = typer.Option(..., help="Prefect work pool (type process) whose workers have greengauge installed"),
           every: list[str] = typer.Option([], "--every", help="NAME=SECONDS: change a schedule; repeatable")) -> None:
    """Register the deployments with a work pool instead of serving them here (docs/flows.md)."""
    from flows.serve import deploy as run_deploy

    _quiet_http()
    try:
        ids = run_deploy(work_pool, parse_every(every))
    except ValueError as exc:
        fail(str(exc))
    console.print(f"{len(ids)} deployments registered with work pool {work_pool!r}; start workers with "
                  f"`prefect worker start --pool {work_pool}`")


@app.command("run")
def run(name: str = typer.Argument(..., help="rollup, metrics, eligibility, data-quality or backfill"),
        param: list[str] = typer.Option([], "--param", "-p", help="KEY=VALUE flow parameter; repeatable")) -> None:
    """Run one flow now (tracked by Prefect, like a scheduled run)."""
    from flows.serve import FLOWS

    _quiet_http()
    if name not in FLOWS:
        fail(f"no flow {name!r} (known: {', '.join(FLOWS)})")
    try:
        params = parse_params(param)
    except ValueError as exc:
        fail(str(exc))
    result = FLOWS[name](**params)
    console.print(result)


@app.command("backfill")
def backfill(enterprise: str = typer.Argument(..., help="enterprise code"),
             first: str = typer.Option(..., "--from", help="first local day, YYYY-MM-DD"),
             last: str = typer.Option(..., "--to", help="last local day (inclusive), YYYY-MM-DD"),
             chunk_days: int = typer.Option(7, help="days per chunk (one transaction each)")) -> None:
    """Recompute a range of days for one enterprise here, with a progress bar (no Prefect server needed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from flows.backfill import backfill as run_backfill
    from flows.backfill import chunks
    from model.settings import get_settings

    try:
        d0, d1 = date.fromisoformat(first), date.fromisoformat(last)
        total = len(chunks(d0, d1, chunk_days))
    except ValueError as exc:
        fail(str(exc))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console) as progress:
        task = progress.add_task(f"backfill {enterprise}", total=total)

        def on_chunk(c, n, res):
            progress.update(task, completed=c.index + 1,
                            description=f"{enterprise} {c.first}..{c.last}: {res.intervals_written} intervals changed")

        try:
            res = run_backfill(get_settings().database_url, enterprise, d0, d1, chunk_days=chunk_days, on_chunk=on_chunk)
        except LookupError as exc:
            fail(str(exc))
    console.print(f"{res.chunks} chunks, {res.readings} readings read, {res.intervals_written} intervals changed, "
                  f"{res.days_rebalanced} days rebalanced, {len(res.decisions)} eligibility versions written")
