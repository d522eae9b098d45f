"""``greengauge tenants``: the login roles readers (Grafana, the API, a person with psql) connect as.

Each sees one enterprise, one park's enterprises, or every enterprise read-only (the bureau); the
database decides (store/tenancy.py, docs/tenancy.md). Registered in :mod:`greengauge.cli`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Optional

import psycopg
import typer
from rich.table import Table

from greengauge.terminal import connect, console, fail

app = typer.Typer(help="Reader roles scoped to an enterprise, a park or the bureau.", no_args_is_help=True)


def _open_secret_file(path: Path) -> int:
    """Create ``path`` for the secret, readable by its owner only; an existing file is never overwritten."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{path}: the file exists; give a new file for the secret (it is never overwritten)")
    except OSError as exc:
        fail(f"{path}: cannot create the secret file: {exc.strerror}")
    raise AssertionError  # unreachable: fail() exits


@app.command("add-reader")
def add_reader(
    enterprise: Optional[str] = typer.Option(None, "--enterprise", help="sees this enterprise (code)"),
    park: Optional[str] = typer.Option(None, "--park", help="sees every enterprise of this park (code)"),
    bureau: bool = typer.Option(False, "--bureau", help="sees every enterprise, read-only"),
    writer: bool = typer.Option(False, "--writer", help="may also enter certificates, trades, facts, production "
                                                        "and meter replacements in its scope"),
    name: Optional[str] = typer.Option(None, "--name", help="role name (the database prefix is added) "
                                                            "[default: from the scope's id]"),
    secret_file: Optional[Path] = typer.Option(None, "--secret-file",
                                               help="write the password to this new file (mode 0600) "
                                                    "instead of printing it"),
) -> None:
    """Create a login role for a reader; its password is shown (or written) once, never stored in clear."""
    from model.settings import get_settings
    from store.tenancy import TenancyError, reader_url
    from store.tenancy import add_reader as add

    if sum([enterprise is not None, park is not None, bureau]) != 1:
        fail("give exactly one of --enterprise E, --park P or --bureau")
    fd = _open_secret_file(secret_file) if secret_file is not None else None
    try:
        with connect() as conn:
            conn.autocommit = True
            r = add(conn, enterprise=enterprise, park=park, bureau=bureau, writer=writer, name=name)
    except (TenancyError, psycopg.Error) as exc:
        if fd is not None:
            os.close(fd)
            secret_file.unlink()
        msg = exc.diag.message_primary if isinstance(exc, psycopg.Error) and exc.diag.message_primary else str(exc)
        fail(f"reader not created: {msg}")
    scope = "the bureau (every enterprise)" if r.kind == "bureau" else f"{r.kind} {r.scope_code}"
    console.print(f"reader {r.name} created: sees {scope}, {'reads and enters data' if r.can_write else 'read-only'}")
    console.print(f"connect: {reader_url(get_settings().database_url, replace(r, password=None))}")
    if fd is not None:
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(r.password + "\n")
        except OSError as exc:
            fail(f"reader {r.name} was created but its secret could not be written to {secret_file} "
                 f"({exc.strerror}): run `greengauge tenants revoke {r.name}` and add it again")
        console.print(f"password written to {secret_file} (mode 0600); it is not shown again")
    else:
        console.print(f"password (shown once, not stored): {r.password}", highlight=False)


@app.command("add-job")
def add_job(
    collector: bool = typer.Option(False, "--collector", help="a collector's login: inserts readings, findings, health"),
    flows: bool = typer.Option(False, "--flows", help="the flows' login: reads everything, writes the results"),
    name: str = typer.Option(..., "--name", help="role name (the database prefix is added)"),
    secret_file: Optional[Path] = typer.Option(None, "--secret-file",
                                               help="write the password to this new file (mode 0600)"),
) -> None:
    """Create a login for a collector or for the flows (members of the job roles of docs/tenancy.md)."""
    from store.tenancy import TenancyError, add_job_login

    if collector == flows:
        fail("give exactly one of --collector or --flows")
    fd = _open_secret_file(secret_file) if secret_file is not None else None
    try:
        with connect() as conn:
            conn.autocommit = True
            role, password = add_job_login(conn, "collector" if collector else "flows", name)
    except (TenancyError, psycopg.Error) as exc:
        if fd is not None:
            os.close(fd)
            secret_file.unlink()
        fail(f"login not created: {exc}")
    console.print(f"{'collector' if collector else 'flows'} login {role} created")
    if fd is not None:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(password + "\n")
        console.print(f"password written to {secret_file} (mode 0600); it is not shown again")
    else:
        console.print(f"password (shown once, not stored): {password}", highlight=False)


@app.command("list")
def list_readers() -> None:
    """Every reader role of this database and what it sees."""
    from store.tenancy import TenancyError
    from store.tenancy import list_readers as readers

    with connect() as conn:
        try:
            rows = readers(conn)
        except TenancyError as exc:
            fail(str(exc))
    table = Table(title="readers", title_justify="left")
    table.add_column("role", no_wrap=True)
    for col in ("sees", "scope", "writes", "created"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.name, r.kind, r.scope_code or "every enterprise", "yes" if r.can_write else "no",
                      f"{r.created_at:%Y-%m-%d %H:%M}" if r.created_at else "")
    console.print(table)
    console.print(f"{len(rows)} readers")


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="the reader's role name (with or without the prefix)")) -> None:
    """Drop a reader's role: its open sessions lose every view at once, it cannot log in again."""
    from store.tenancy import TenancyError, revoke_reader

    with connect() as conn:
        conn.autocommit = True
        try:
            revoke_reader(conn, name)
        except (TenancyError, psycopg.Error) as exc:
            fail(f"not revoked: {exc}")
    console.print(f"revoked {name}")
