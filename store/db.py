"""Connections to PostgreSQL."""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus


def connect(url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(url, **kwargs)


_kept = threading.local()


@contextmanager
def session(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """``with psycopg.connect(url) as conn`` — commit at the end, roll back on an error — on a
    connection kept for this thread's next call with the same ``url`` instead of a new one each
    time (a connection costs a server process: 5–20 ms; a flow's pass over thousands of
    enterprises opens several per enterprise). The kept connection is checked before use and
    replaced when it is gone (a restarted server, a dropped database): see :func:`_usable`. One is kept
    per thread, for the last ``url``; nothing session-wide is set on it by the flows (their locks
    are transaction locks). With ``autocommit`` each statement is its own transaction (no BEGIN and
    COMMIT round trips: for reads, and for writes of one statement; ``conn.transaction()`` still
    makes a block atomic)."""
    kept: dict[str, psycopg.Connection] = getattr(_kept, "conns", None) or {}
    _kept.conns = kept
    conn = kept.pop(url, None)
    if conn is not None and not _usable(conn):
        conn.close()
        conn = None
    for other in kept.values():
        other.close()
    kept.clear()
    if conn is None:
        conn = psycopg.connect(url)
    conn.autocommit = autocommit  # the connection is idle: no round trip
    try:
        yield conn
    except BaseException:
        if not conn.closed:
            try:
                conn.rollback()
            except psycopg.Error:
                conn.close()
        if not conn.closed:
            _keep(kept, url, conn)
        raise
    else:
        conn.commit()
        _keep(kept, url, conn)


def _usable(conn: psycopg.Connection) -> bool:
    """Whether a kept, idle connection can serve the next session. An idle connection hears nothing
    from its server unless the server is ending it (the flows never LISTEN): when its socket has
    nothing to read, it is used as it is, without a round trip (several a pass per enterprise);
    otherwise a ``SELECT 1`` decides."""
    if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
        return False
    try:
        if not select.select([conn.fileno()], [], [], 0)[0]:
            return True
        conn.execute("SELECT 1")
        conn.rollback()
        return True
    except (psycopg.Error, OSError, ValueError):
        return False


def _keep(kept: dict, url: str, conn: psycopg.Connection) -> None:
    old = kept.pop(url, None)
    if old is not None and old is not conn:
        old.close()  # a nested session's: one is enough
    kept[url] = conn


async def aconnect(url: str, **kwargs) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(url, **kwargs)


def with_database(url: str, dbname: str) -> str:
    """The same server and user as ``url``, another database."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


def database_name(url: str) -> str:
    return conninfo_to_dict(url).get("dbname") or ""


def no_jit(conn: psycopg.Connection) -> None:
    """No JIT compilation for the rest of the transaction (``SET LOCAL jit = off``): for statements
    that touch few rows but whose estimates are large — the flows' batch statements (a watermark
    joined per enterprise, a batch's period bounds: unknown when the plan is made), the rollup's
    edge searches (a wide search costed though it runs only where the near one finds nothing) —
    past ``jit_above_cost`` PostgreSQL would compile them: 30 ms a batch, 0.4 s a rollup of 1,000
    points, for nothing."""
    conn.execute("SET LOCAL jit = off")


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
