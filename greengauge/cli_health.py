"""``greengauge health …``: one-line liveness checks for container healthchecks (docker-compose.yml).

Each exits 0 when healthy and 1 with one line saying what is wrong, so a supervisor can restart
the service and an operator can read why.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import typer

from greengauge.terminal import console, fail
from model.settings import get_settings

app = typer.Typer(help="Liveness checks for container healthchecks.", no_args_is_help=True)


def _connect() -> psycopg.Connection:
    try:
        return psycopg.connect(get_settings().database_url, connect_timeout=5)
    except psycopg.OperationalError as exc:
        fail(f"database unreachable: {str(exc).strip().splitlines()[0]}", code=1)


@app.command("db")
def health_db() -> None:
    """The database answers and its schema is migrated (every migration file applied)."""
    from store.migrate import migrations

    with _connect() as conn:
        try:
            applied = {r[0] for r in conn.execute("SELECT version FROM schema_migration")}
        except psycopg.errors.UndefinedTable:
            fail("the database is not migrated: run `greengauge db upgrade`", code=1)
    pending = [m.path.name for m in migrations() if m.version not in applied]
    if pending:
        fail(f"{len(pending)} migration(s) pending ({pending[0]} first): run `greengauge db upgrade`", code=1)
    console.print("ok: database reachable, schema up to date", markup=False)


@app.command("collector")
def health_collector(
    site_file: Path = typer.Argument(..., help="the site file the collector runs"),
    max_age_s: int = typer.Option(300, "--max-age", help="a device not attempted for this long is not being collected"),
) -> None:
    """Every device of the site was attempted (polled, or heard from over MQTT) within --max-age seconds,
    by a collector that has not stopped since."""
    from model.site import load_site
    from model.yamlfile import ConfigError

    try:
        site = load_site(site_file)
    except ConfigError as exc:
        fail(str(exc), code=1)
    names = [d.name for d in site.devices] + ([d.name for d in site.mqtt.devices] if site.mqtt else [])
    with _connect() as conn:
        rows = {name: (attempt, stopped) for name, attempt, stopped in conn.execute(
            """SELECT d.name, h.last_attempt, h.stopped_at FROM device d JOIN site s USING (site_id)
               JOIN enterprise e USING (enterprise_id) LEFT JOIN device_health h USING (device_id)
               WHERE e.code = %s AND s.code = %s""", (site.enterprise.code, site.site.code))}
    now = datetime.now(timezone.utc)
    def collected(name: str) -> bool:
        attempt, stopped = rows.get(name, (None, None))
        # a collector that stopped (SIGTERM) marks its devices: not collected, however recent
        return attempt is not None and stopped is None and now - attempt <= timedelta(seconds=max_age_s)

    late = [n for n in names if not collected(n)]
    if late:
        fail(f"{len(late)} of {len(names)} device(s) not collected in the last {max_age_s} s: {', '.join(late[:5])}",
             code=1)
    console.print(f"ok: {len(names)} device(s) collected in the last {max_age_s} s", markup=False)
