"""What the commands share: the consoles, one way to fail, one way to reach the database."""

from __future__ import annotations

import psycopg
import typer
from rich.console import Console
from rich.text import Text

from model.settings import get_settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` as one clear error line (no traceback) and exit with ``code``.

    The message is printed as it is: never read as rich markup (a pattern like ``[a-z0-9]`` or a
    file name in brackets stays), never highlighted.
    """
    err.print(Text.assemble(("error: ", "red"), str(message)), highlight=False)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """One warning line on stderr, printed as it is (no markup)."""
    err.print(Text.assemble(("warning: ", "yellow"), str(message)), highlight=False)


def connect() -> psycopg.Connection:
    url = get_settings().database_url
    try:
        return psycopg.connect(url)
    except psycopg.OperationalError as exc:
        fail(f"cannot reach the database at {url}: {str(exc).strip()}\n"
             "Set GREENGAUGE_DATABASE_URL to a PostgreSQL you can reach.")


def require_schema(conn: psycopg.Connection) -> None:
    """Fail with what to do when the database lacks migrations this code needs (``db upgrade``)."""
    from store.migrate import migrations

    try:
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migration")}
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        applied = set()
    missing = [m for m in migrations() if m.version not in applied]
    if missing:
        where = conn.info.dbname
        what = ("has no GreenGauge schema" if not applied else
                f"lacks {len(missing)} migration{'s' if len(missing) > 1 else ''} (from {missing[0].path.name})")
        fail(f"the database {where!r} {what}: run `greengauge db upgrade` first")
