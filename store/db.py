"""Connections to PostgreSQL."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def connect(url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(url, **kwargs)


async def aconnect(url: str, **kwargs) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(url, **kwargs)


def with_database(url: str, dbname: str) -> str:
    """The same server and user as ``url``, another database."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


def database_name(url: str) -> str:
    return conninfo_to_dict(url).get("dbname") or ""


def storage_mode(conn: psycopg.Connection) -> str:
    """'timescaledb' when the extension is installed in this database, else 'postgresql'."""
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return "timescaledb" if row else "postgresql"


def create_database(admin_url: str, dbname: str, *, drop_first: bool = False) -> None:
    """Create ``dbname`` on the server of ``admin_url`` (which must name an existing database)."""
    ident = psycopg.sql.Identifier(dbname)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if drop_first:
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(ident))


def drop_database(admin_url: str, dbname: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(dbname))
        )
