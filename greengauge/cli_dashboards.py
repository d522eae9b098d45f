"""``greengauge dashboards``: build the dashboards' JSON, write Grafana provisioning from the
database's tenants, push both to a running Grafana."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from greengauge.terminal import connect, console, fail

app = typer.Typer(help="Grafana dashboards, provisioning and alert rules.", no_args_is_help=True)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"


@app.command("build")
def build(out: Optional[Path] = typer.Option(None, help="directory [default: deploy/grafana/dashboards]"),
          api_url: str = typer.Option("http://localhost:8000", help="the bureau API as browsers reach it "
                                                                   "(the Bureau dashboard's links)")) -> None:
    """Generate the Plant, Park and Bureau dashboards (Chinese and English) as Grafana JSON."""
    from dashboards.build import OUT_DIR, write_all

    if not api_url.startswith(("http://", "https://")):
        fail(f"--api-url {api_url!r}: give an http(s) URL, e.g. https://energy.example.cn")
    for path in write_all(out or OUT_DIR, api_url.rstrip("/")):
        console.print(f"wrote {path}")


@app.command("provision")
def provision(
    out: Path = typer.Option(DEFAULT_PROVISIONING, help="Grafana provisioning directory to write"),
    contact: str = typer.Option("email:$GREENGAUGE_ALERT_EMAIL", help="contact point: email:ADDRESS or webhook:URL"),
    gap_minutes: int = typer.Option(30, min=1, help="alert when a data gap stays open longer than this"),
    db_host: str = typer.Option("db:5432", help="host:port of PostgreSQL as Grafana reaches it"),
    db_name: str = typer.Option("greengauge", help="database name as Grafana reaches it"),
    create_readers: bool = typer.Option(False, help="create the missing park/bureau reader roles "
                                                    "(their passwords go to OUT/secrets/, mode 0600)"),
) -> None:
    """Write one Grafana organization per park and one for the bureau, each with a datasource on its reader role."""
    from dashboards.provision import ContactPoint, ProvisionError, missing_passwords, organizations, write

    try:
        cp = ContactPoint.parse(contact)
        with connect() as conn:
            orgs = organizations(conn, create_missing=create_readers)
        paths = write(out, orgs, db_host=db_host, db_name=db_name, contact=cp, gap_minutes=gap_minutes)
    except ProvisionError as exc:
        fail(str(exc))
    for o in orgs:
        console.print(f"organization {o.org_id} {o.name}: reader {o.reader}, password file {out / o.password_file}")
    for p in paths:
        console.print(f"wrote {p}")
    for p in missing_passwords(out, orgs):
        console.print(f"[yellow]put the reader's password into {p}[/yellow] (shown once by `tenants add-reader`)")


@app.command("push")
def push_cmd(
    url: str = typer.Option(..., help="Grafana base URL, e.g. http://localhost:3000"),
    token_file: Path = typer.Option(..., help="file holding user:password of a Grafana admin, or an API token"),
    user: Optional[str] = typer.Option(None, help="Grafana user whose password is the token file's content"),
    provisioning: Path = typer.Option(DEFAULT_PROVISIONING, help="what `dashboards provision` wrote"),
    dashboards_dir: Optional[Path] = typer.Option(None, help="[default: deploy/grafana/dashboards]"),
) -> None:
    """Create the organizations and send datasources, dashboards and alert rules to a running Grafana."""
    from grafana_client.client import GrafanaException

    from dashboards.build import OUT_DIR
    from dashboards.provision import ProvisionError
    from dashboards.push import push, read_credential

    try:
        res = push(url, read_credential(token_file, user), provisioning, dashboards_dir or OUT_DIR)
    except ProvisionError as exc:
        fail(str(exc))
    except GrafanaException as exc:
        fail(f"Grafana at {url} refused: {exc}")
    except Exception as exc:  # connection refused, DNS, TLS: one line, not a traceback
        if type(exc).__module__.split(".")[0] in ("niquests", "urllib3", "requests"):
            fail(f"cannot reach Grafana at {url}: {exc}")
        raise
    for line in res.created:
        console.print(f"created {line}")
    console.print(f"pushed {len(res.organizations)} organizations ({len(res.updated)} updates)")
