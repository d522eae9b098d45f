"""The ``greengauge`` command line.

Each concern adds its commands as a typer sub-app, registered below with one line.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Optional

import psycopg
import typer

from greengauge import cli_collectors
from model.settings import get_settings
from model.yamlfile import ConfigError

app = typer.Typer(help="GreenGauge: energy data to green-manufacturing figures.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
site_app = typer.Typer(help="Site configuration files.", no_args_is_help=True)
report_app = typer.Typer(help="Figures from stored readings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(site_app, name="site")
app.add_typer(report_app, name="report")
app.command("status")(cli_collectors.status)

from greengauge.terminal import connect, console, err, fail


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="log at DEBUG")) -> None:
    level = logging.DEBUG if verbose else getattr(logging, get_settings().log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations (running it twice changes nothing)."""
    from store.db import storage_mode
    from store.migrate import MigrationError, timescale_status, upgrade

    with connect() as conn:
        try:
            done = upgrade(conn)
        except MigrationError as exc:
            fail(str(exc))
        for m in done:
            console.print(f"applied {m.path.name}")
        console.print(f"schema up to date ({len(done)} applied now); storage mode: {storage_mode(conn)} "
                      f"({timescale_status(conn)})", markup=False)


def _load_site(path: Path):
    from model.site import load_site

    try:
        return load_site(path)
    except ConfigError as exc:
        fail(str(exc))


def _summary(site, points: int) -> str:
    mqtt = len(site.mqtt.devices) if site.mqtt else 0
    parts = [f"{len(site.devices)} devices"] + ([f"{mqtt} MQTT sources"] if mqtt else [])
    parts += [f"{points} points"] + ([f"{len(site.projects)} projects"] if site.projects else [])
    return ", ".join(parts)


@site_app.command("check")
def site_check(file: Path) -> None:
    """Validate a site file without touching the database."""
    site = _load_site(file)
    console.print(f"{file}: valid — {_summary(site, len(site.points()) + len(site.mqtt_points()))}")


@site_app.command("apply")
def site_apply(file: Path) -> None:
    """Create or update the enterprise, site, devices and points a site file describes."""
    from store.sites import apply_site

    site = _load_site(file)
    with connect() as conn:
        ids = apply_site(conn, site)
    console.print(f"{file}: applied {site.enterprise.code}/{site.site.code} — {_summary(site, len(ids))}")


@app.command()
def simulate(
    file: Path,
    speed: float = typer.Option(1.0, help="simulated seconds per real second"),
    start: Optional[datetime] = typer.Option(None, help="simulated start (ISO 8601 with offset); default now"),
) -> None:
    """Serve the site's devices from the plant simulator on their hosts and ports until Ctrl-C."""
    from datetime import timezone

    from collectors.clock import AcceleratedClock
    from collectors.simulator import SimulatedSite

    site = _load_site(file)
    begin = start or datetime.now(timezone.utc)
    if begin.tzinfo is None:
        fail("--start needs a UTC offset, e.g. 2025-06-21T00:00:00+08:00")

    async def serve() -> None:
        sim = SimulatedSite(site, AcceleratedClock(begin, speed), begin)
        await sim.start()
        for dev in sim.devices:
            d = dev.device
            console.print(f"serving {d.name} ({d.profile}) on {d.host}:{d.port} unit {d.unit_id}")
        for name in sim.skipped:
            console.print(f"not serving {name}: SunSpec devices are simulated by `python -m collectors.sunspec_sim`")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await sim.stop()

    asyncio.run(serve())


@app.command("collect")
def collect_cmd(
    file: Path,
    spool_dir: Optional[Path] = typer.Option(
        None, help="where batches wait while the database is away [default: WORKDIR/spool/ENTERPRISE-SITE]"),
    flush_interval: float = typer.Option(1.0, help="seconds between writes to the database"),
    member: Optional[str] = typer.Option(
        None, help="this collector's name in the site's MQTT share_group (appended to its client_id)"),
) -> None:
    """Poll the site's devices and subscribe to its MQTT topics; store readings until SIGINT/SIGTERM.

    Exits 1 with the reason when a part it cannot run without stops (a supervisor restarts it).
    """
    from collectors.clock import WallClock
    from collectors.run import CollectorFailed, collect
    from collectors.spool import IdsFileError, Spool, SpoolBusy, read_ids, write_ids
    from greengauge.terminal import require_schema, warn
    from store.health import device_ids
    from store.sites import apply_site

    import hashlib
    import re

    site = _load_site(file)
    settings = get_settings()
    spool_path = spool_dir or Path(settings.workdir) / "spool" / f"{site.enterprise.code}-{site.site.code}"
    # one collector per spool directory: taken first, before anything is written there
    try:
        spool = Spool(spool_path)
    except SpoolBusy as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"spool directory {spool_path}: {exc.strerror or exc}; give a directory this user can write "
             "(--spool-dir)")
    # the ids of the last start, so that a restart while the database is away still collects (to the spool)
    known = spool_path / "ids.json"
    digest = hashlib.sha256(site.model_dump_json().encode()).hexdigest()
    if member is not None:
        if site.mqtt is None or not re.fullmatch(r"[A-Za-z0-9_.-]+", member):
            fail(f"--member {member!r}: needs an mqtt section, and letters, digits, '_', '.', '-' only")
        site = site.model_copy(update={"mqtt": site.mqtt.model_copy(update={"member": member})})
    try:
        try:
            with psycopg.connect(settings.database_url, connect_timeout=10) as conn:
                require_schema(conn)
                ids = apply_site(conn, site)
                dev_ids = device_ids(conn, site.enterprise.code, site.site.code)
            write_ids(known, {"site": digest, "points": ids, "devices": dev_ids})
        except psycopg.OperationalError as exc:
            saved = read_ids(known) or {}
            if saved.get("site") != digest:
                fail(f"cannot reach the database at {settings.database_url}: {str(exc).strip()}\n"
                     "Set GREENGAUGE_DATABASE_URL to a PostgreSQL you can reach. (A collector that has run with "
                     "this site file once starts without the database, spooling, but this one has not.)")
            ids, dev_ids = saved["points"], saved["devices"]
            warn(f"the database is away ({str(exc).strip()}); collecting to the spool {spool_path} "
                 "with the ids of the last start")
    except IdsFileError as exc:
        spool.close()
        fail(str(exc))
    except typer.Exit:
        spool.close()
        raise

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        writer = await collect(site, ids, settings.database_url, WallClock(), stop, spool_dir=spool,
                               flush_interval_s=flush_interval, device_ids=dev_ids)
        console.print(f"stopped; {writer.written} readings stored, {writer.spooled_now} spool segments waiting")

    try:
        asyncio.run(run())
    except CollectorFailed as exc:
        fail(f"collector stopped: {exc}", code=1)


@report_app.command("balance")
def report_balance(
    enterprise: str = typer.Option(..., help="enterprise code"),
    day: Optional[str] = typer.Option(None, help="local day YYYY-MM-DD"),
    month: Optional[str] = typer.Option(None, help="local month YYYY-MM"),
    year: Optional[int] = typer.Option(None, help="local calendar year"),
    format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """The energy balance and green share of an enterprise for a local day, month or year, from the
    stored interval energy (rolled up first, as the flows store it)."""
    from greengauge.cli_accounting import balance_json, bring_current
    from greengauge.demo import print_report
    from metrics import figures
    from metrics.periods import local_bounds
    from store.bundle import load_enterprise_period
    from store.sites import enterprise_timezone

    if format not in ("table", "json"):
        fail(f"--format {format!r}: use table or json")
    chosen = [x for x in (day, month, year) if x is not None]
    if len(chosen) != 1:
        fail("give exactly one of --day, --month, --year")
    try:
        if day:
            kind, ref, label = "day", date.fromisoformat(day), day
        elif month:
            kind, ref, label = "month", date.fromisoformat(month + "-01"), month
        else:
            kind, ref, label = "year", date(year, 1, 1), str(year)
    except ValueError as exc:
        fail(f"period: {exc}")
    with connect() as conn:
        try:
            tz = enterprise_timezone(conn, enterprise)
        except LookupError as exc:
            fail(str(exc))
    current = bring_current(enterprise)
    with connect() as conn:
        start, end = local_bounds(kind, ref, tz)
        data = load_enterprise_period(conn, enterprise, start, end, with_policy=False)
    result = figures.site_energy(data, start, end)
    if format == "json":
        import json as _json

        print(_json.dumps(balance_json(result, data, current, kind, ref), ensure_ascii=False, indent=2))
        return
    print_report(console, result, f"{enterprise}: {label} ({tz})")


@app.command()
def demo(
    site: Optional[Path] = typer.Option(None, help="site file (default: the bundled example)"),
    day: str = typer.Option("2025-06-21", help="local day to simulate"),
    seconds: float = typer.Option(30.0, help="real seconds the simulated day takes"),
) -> None:
    """Simulate a plant, collect a day over Modbus into PostgreSQL, report its balance and green share."""
    from greengauge.demo import NoDatabase, run_demo

    try:
        local_day = date.fromisoformat(day)
    except ValueError as exc:
        fail(f"--day {day}: {exc}; give a local day as YYYY-MM-DD, e.g. 2025-06-21")
    try:
        run_demo(site, local_day, seconds, console)
    except NoDatabase as exc:
        fail(str(exc))
    except ConfigError as exc:
        fail(str(exc))


# The other concerns' commands, one registration each.
from greengauge import cli_api, cli_policy  # noqa: E402
from greengauge.cli_accounting import green_share_app, import_app, ledger_app, meter_app  # noqa: E402
from greengauge.cli_devices import app as devices_app  # noqa: E402
from greengauge.cli_flows import app as flows_app  # noqa: E402
from greengauge.cli_health import app as health_app  # noqa: E402
from greengauge.cli_dashboards import app as dashboards_app  # noqa: E402

app.add_typer(import_app, name="import")
app.add_typer(ledger_app, name="ledger")
app.add_typer(meter_app, name="meter")
app.add_typer(cli_policy.facts_app, name="facts")
app.add_typer(cli_policy.policies_app, name="policies")
app.add_typer(cli_policy.production_app, name="production")
report_app.add_typer(green_share_app, name="green-share")
report_app.command("awards")(cli_policy.report_awards)
report_app.command("intensity")(cli_policy.report_intensity)
report_app.command("carbon")(cli_policy.report_carbon)
app.add_typer(devices_app, name="devices")
app.add_typer(flows_app, name="flows")
app.add_typer(health_app, name="health")
app.add_typer(dashboards_app, name="dashboards")
from greengauge.cli_tenants import app as tenants_app  # noqa: E402
app.add_typer(tenants_app, name="tenants")
cli_api.register(app)  # api (serve, keygen), tokens, statement verify

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
