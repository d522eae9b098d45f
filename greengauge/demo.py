"""`make demo`: a simulated plant polled over Modbus into PostgreSQL, to its balance and green share.

1. find PostgreSQL: the database named in GREENGAUGE_DATABASE_URL, else ``greengauge_demo`` on
   127.0.0.1:5432; where no server answers but PostgreSQL's programs are installed, start a
   private throwaway cluster under .greengauge/ (on a free port when its default is taken);
2. create that database if it does not exist (marked as the demo's with a comment); a database
   the demo created is dropped and created again for a fresh day, one it did not create is used
   as it is and never dropped; apply the migrations and the bundled site file;
3. serve the site's grid, PV, battery and recycling meters from the simulator on loopback (on free
   ports where the site file's are taken), and poll them with the collector, on an accelerated
   clock (a day in about 30 seconds);
4. compute the day's balance and green share from the stored readings, print them, and draw the
   day's chart.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from collectors.clock import AcceleratedClock
from collectors.run import collect
from collectors.simulator import SimulatedSite
from accounting.site_energy import SiteEnergy, site_energy
from metrics.green_share import COMPLETENESS_THRESHOLD, percent_text
from model.settings import DEFAULT_DATABASE_URL, get_settings
from model.site import SiteConfig, load_site
from metrics.periods import local_bounds
from store.cluster import ClusterError, PrivateCluster
from store.db import database_name, with_database
from store.migrate import upgrade
from store.queries import gauge_series
from store.sites import apply_site

DEMO_DATABASE = "greengauge_demo"
#: the comment on a database the demo created (only such a database is ever dropped by it)
DEMO_MARK = "created by greengauge demo; dropped and created again by the next demo run"
PRIVATE_PORT = 54329
DEMO_SITE = files("greengauge") / "examples" / "demo-site.yaml"


class NoDatabase(RuntimeError):
    pass


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def a_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def with_free_ports(site: SiteConfig, console: Console | None = None) -> SiteConfig:
    """The site with each Modbus endpoint whose port is taken moved to a free port (devices sharing
    an endpoint stay together)."""
    moved: dict[tuple[str, int], int] = {}
    for d in site.devices:
        key = (d.host, d.port)
        if key not in moved:
            moved[key] = d.port if port_free(d.host, d.port) else a_free_port(d.host)
            if moved[key] != d.port and console is not None:
                console.print(f"port {d.port} on {d.host} is taken: simulating its devices on {moved[key]}")
    if all(new == port for (_, port), new in moved.items()):
        return site
    devices = [d.model_copy(update={"port": moved[(d.host, d.port)]}) for d in site.devices]
    return site.model_copy(update={"devices": devices})


def _cluster_port(directory: Path) -> int:
    """The port of the private cluster: the one it runs on, else the default when free, else a free one."""
    pid = directory / "data" / "postmaster.pid"
    try:
        return int(pid.read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return PRIVATE_PORT if port_free("127.0.0.1", PRIVATE_PORT) else a_free_port()


def demo_database(workdir: Path, console: Console) -> str:
    """URL of the demo's database: the one GREENGAUGE_DATABASE_URL names, else ``greengauge_demo``
    on 127.0.0.1:5432 or on a private cluster. Never drops a database the demo did not create."""
    settings = get_settings()
    explicit = "GREENGAUGE_DATABASE_URL" in os.environ
    url = settings.database_url if explicit else with_database(DEFAULT_DATABASE_URL, DEMO_DATABASE)
    admin = with_database(url, "postgres")
    if not _answers(admin) and not _answers(url):
        if explicit:
            raise NoDatabase(f"no PostgreSQL answers at GREENGAUGE_DATABASE_URL={settings.database_url}")
        try:
            cluster = PrivateCluster(workdir / "pg", _cluster_port(workdir / "pg"))
        except ClusterError:
            raise NoDatabase(
                "no PostgreSQL answers at 127.0.0.1:5432 and PostgreSQL is not installed: "
                "install PostgreSQL 15 (e.g. apt-get install postgresql) or set GREENGAUGE_DATABASE_URL"
            ) from None
        console.print(f"No PostgreSQL at 127.0.0.1:5432; starting a private cluster in {cluster.directory}")
        admin = cluster.url if cluster.running() and _answers(cluster.url) else cluster.start()
        url = with_database(admin, DEMO_DATABASE)
    _prepare_database(admin, url, console)
    return url


def _prepare_database(admin: str, url: str, console: Console) -> None:
    """Create the database if it is missing (marked as the demo's); make one the demo created fresh;
    use any other as it is."""
    from psycopg import sql

    name = database_name(url) or DEMO_DATABASE
    if _answers(admin):
        ident = sql.Identifier(name)
        with psycopg.connect(admin, autocommit=True) as conn:
            row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                               (name,)).fetchone()
            if row is not None and row[0] == DEMO_MARK:  # the demo's own, from an earlier run: a fresh day
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))
                row = None
            if row is None:
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
                    conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(DEMO_MARK)))
                except psycopg.Error as exc:
                    raise NoDatabase(f"database {name!r} does not exist and cannot be created "
                                     f"({str(exc).strip()}); create it, or set GREENGAUGE_DATABASE_URL to one "
                                     "that exists") from None
                return
    elif not _answers(url):
        raise NoDatabase(f"database {name!r} does not answer at {url}")
    console.print(f"using the existing database {name!r} as it is: the demo did not create it, so it drops "
                  "nothing and adds its enterprise beside what is there")


@dataclass
class SimulatedRun:
    site: SiteConfig
    sim: SimulatedSite
    point_ids: dict[str, int]
    start: datetime
    end: datetime
    readings_written: int


async def run_simulated(site: SiteConfig, database_url: str, start: datetime, end: datetime, *,
                        speed: float, on_progress=None) -> SimulatedRun:
    """Serve the site from the simulator and collect it over Modbus from ``start`` until ``end``."""
    with psycopg.connect(database_url) as conn:
        upgrade(conn)
        point_ids = apply_site(conn, site)
    clock = AcceleratedClock(start, speed)
    sim = SimulatedSite(site, clock, start)
    await sim.start()
    stop = asyncio.Event()
    # poll until every device has shown the end of the period: one step and two polls past it
    finish = end + timedelta(seconds=site.simulation.step_s + 2 * max(d.poll_interval_s for d in site.devices))
    try:
        task = asyncio.create_task(collect(site, point_ids, database_url, clock, stop, flush_interval_s=0.5))
        while clock.now() < finish:
            if task.done():
                break
            if on_progress:
                on_progress(min(clock.now(), end))
            await asyncio.sleep(0.1)
        stop.set()
        writer = await task
    finally:
        await sim.stop()
    return SimulatedRun(site, sim, point_ids, start, end, writer.written)


def _kwh(wh: int) -> str:
    return f"{wh / 1000:,.1f}"


def print_report(console: Console, result: SiteEnergy, title: str) -> None:
    t = result.totals
    table = Table(title=title, show_header=True)
    table.add_column("quantity")
    table.add_column("kWh", justify="right")
    for label, wh in [
        ("grid import", t.import_wh), ("grid export", t.export_wh), ("PV generation", t.pv_wh),
        ("PV self-consumed", t.pv_self_consumed_wh), ("battery charge", t.charge_wh),
        ("battery discharge", t.discharge_wh), ("consumption", t.consumption_wh),
        ("green electricity consumed", t.green_wh),
    ]:
        table.add_row(label, _kwh(wh))
    console.print(table)
    console.print(f"intervals: {t.intervals} × 15 min, estimated: {t.estimated_intervals}")
    if result.share is None:
        console.print("green share: no consumption in the period")
        return
    s = result.share
    shown = f"green share: {s.green_wh} Wh / {s.consumption_wh} Wh = {percent_text(s.share, threshold=s.threshold)}"
    status = result.onsite_status  # R1's decision, completeness included (metrics.green_share.assess_green_share)
    if status == "unknown":
        console.print(f"{shown} — [yellow]unknown[/yellow]: the balance meters measured {result.measured_intervals} "
                      f"of {result.expected_intervals} intervals (completeness {percent_text(result.completeness)}, "
                      f"below {percent_text(COMPLETENESS_THRESHOLD)}); the share is not decided")
        return
    flag = "[green]reaches[/green]" if status == "qualifies" else "[red]does not reach[/red]"
    console.print(
        f"{shown} — {flag} the 30 % "
        "threshold (2024-2 §三(一), 2025-5 §三(三); 30 % inclusive, Civil Code Art. 1259)"
    )


def draw_day_chart(conn: psycopg.Connection, run: SimulatedRun, path: Path) -> Path:
    """PNG of the day: grid, PV, battery and load power, and the battery's state of charge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    site = run.site
    def point_of(role: str, quantity: str) -> int | None:
        for d, _ in site.devices_with_role(role):
            for p in d.point_configs():
                if p.quantity == quantity:
                    return run.point_ids[site.point_name(d, p)]
        return None

    ids = {
        "grid": point_of("grid_import", "active_power"),
        "pv": point_of("pv_generation", "active_power"),
        "battery": point_of("storage_charge", "active_power"),
        "soc": point_of("storage_charge", "state_of_charge"),
    }
    series = gauge_series(conn, [i for i in ids.values() if i], run.start, run.end + timedelta(seconds=1))
    tz = ZoneInfo(site.enterprise.timezone)
    def get(key):
        ts, vs = series.get(ids[key], ([], [])) if ids[key] else ([], [])
        return [t.astimezone(tz) for t in ts], vs

    fig, ax = plt.subplots(figsize=(11, 5))
    g_t, g_v = get("grid")
    p_t, p_v = get("pv")
    b_t, b_v = get("battery")
    ax.plot(g_t, [v / 1000 for v in g_v], label="grid (import +)", color="tab:gray")
    ax.plot(p_t, [v / 1000 for v in p_v], label="PV", color="tab:orange")
    ax.plot(b_t, [v / 1000 for v in b_v], label="battery (discharge +)", color="tab:blue")
    if g_t and len(g_t) == len(p_t) == len(b_t):
        load = [(g + p + b) / 1000 for g, p, b in zip(g_v, p_v, b_v)]  # stored signs: docs/devices.md
        ax.plot(g_t, load, label="load", color="black", linewidth=1.5)
    ax.set_ylabel("power [kW]")
    ax.axhline(0, color="lightgray", linewidth=0.8)
    ax2 = ax.twinx()
    s_t, s_v = get("soc")
    ax2.plot(s_t, s_v, label="battery state of charge", color="tab:green", linestyle="--")
    ax2.set_ylabel("state of charge [%]")
    ax2.set_ylim(0, 100)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)
    local_day = run.start.astimezone(tz).date()
    ax.set_title(f"{site.enterprise.code} {site.site.code} — {local_day} ({site.enterprise.timezone})")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_demo(site_path: Path | None = None, day: date | None = None, day_seconds: float = 30.0,
             console: Console | None = None) -> SiteEnergy:
    console = console or Console()
    settings = get_settings()
    workdir = Path(settings.workdir)
    site = with_free_ports(load_site(site_path or Path(str(DEMO_SITE))), console)
    day = day or date(2025, 6, 21)
    start, end = local_bounds("day", day, site.enterprise.timezone)
    url = demo_database(workdir, console)
    console.print(f"database: {url}")
    console.print(f"site: {site.enterprise.name} / {site.site.name}, {len(site.devices)} devices simulated on loopback")
    speed = (end - start).total_seconds() / day_seconds
    tz = ZoneInfo(site.enterprise.timezone)
    with Progress(TextColumn("simulated {task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task(str(day), total=(end - start).total_seconds())
        def on_progress(now: datetime) -> None:
            local = now.astimezone(tz)
            progress.update(task, completed=(now - start).total_seconds(), description=local.strftime("%Y-%m-%d %H:%M"))
        run = asyncio.run(run_simulated(site, url, start, end, speed=speed, on_progress=on_progress))
        progress.update(task, completed=(end - start).total_seconds())
    console.print(f"readings stored: {run.readings_written}")
    from flows.rollup import rollup

    rollup(url, enterprise=site.enterprise.code)  # figures come from the stored rollup, as the flows'
    with psycopg.connect(url) as conn:
        result = site_energy(conn, site.enterprise.code, start, end)
        print_report(console, result, f"{site.enterprise.code}: {day} ({site.enterprise.timezone})")
        chart = draw_day_chart(conn, run, workdir / f"demo-{day}.png")
    console.print(f"chart of the day: {chart.resolve()}")
    return result
