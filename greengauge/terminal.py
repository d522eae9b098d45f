"""What the commands share: the consoles, one way to fail, one way to reach the database."""

from __future__ import annotations

import psycopg
import typer
from rich.console import Console

from model.settings import get_settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` as one clear error line (no traceback) and exit with ``code``."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def connect() -> psycopg.Connection:
    url = get_settings().database_url
    try:
        return psycopg.connect(url)
    except psycopg.OperationalError as exc:
        fail(f"cannot reach the database at {url}: {str(exc).strip()}\n"
             "Set GREENGAUGE_DATABASE_URL to a PostgreSQL you can reach.")
