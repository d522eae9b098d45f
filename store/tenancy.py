"""Tenant reader roles: who sees which enterprise's rows, decided by PostgreSQL (docs/tenancy.md).

Migration 0500 creates the job roles (``P||reader``, ``P||writer``, ``P||collector``, ``P||flows``)
and schema ``reader``: one security-barrier view per table, same name and columns, rows limited to
the caller's scope. This module makes the login roles of readers: each is a member of ``P||reader``
(and of ``P||writer`` when it may enter data), has ``search_path = reader``, and one row of
``tenant_scope`` saying whether it sees one enterprise, one park's enterprises or all (bureau).

Roles are cluster-wide, so every name starts with the database's prefix ``P`` (:func:`role_prefix`).
The API logs in as ``P||api`` (NOINHERIT, a member of every reader login) and runs each request in
:func:`tenant_transaction`: ``SET LOCAL ROLE <reader login>``, so the database decides what it sees.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

Kind = Literal["enterprise", "park", "bureau"]
JOBS = ("reader", "writer", "collector", "flows", "api")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class TenancyError(ValueError):
    """A tenancy request that cannot be done; the message says why and what to do."""


@dataclass
class Reader:
    name: str  # the login role, prefix included
    kind: Kind
    scope_code: str | None  # enterprise or park code; None for the bureau
    can_write: bool
    password: str | None = None  # only from add_reader, shown once
    created_at: datetime | None = None


def prefix_for(dbname: str) -> str:
    """The role-name prefix of a database: ``gg_`` + 8 hex of md5(name) + ``_`` (as migration 0500)."""
    return "gg_" + hashlib.md5(dbname.encode()).hexdigest()[:8] + "_"


def role_prefix(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT 'gg_' || left(md5(current_database()), 8) || '_'").fetchone()[0]


def job_role(conn: psycopg.Connection, job: str) -> str:
    """The name of a job role of this database: reader, writer, collector, flows or api."""
    if job not in JOBS:
        raise TenancyError(f"unknown job role {job!r} (known: {', '.join(JOBS)})")
    return role_prefix(conn) + job


def _role_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def _check_migrated(conn: psycopg.Connection) -> None:
    if conn.execute("SELECT to_regclass('public.tenant_scope')").fetchone()[0] is None:
        raise TenancyError("this database has no tenancy tables yet: run `greengauge db upgrade` first")


def _password_clause(conn: psycopg.Connection, role: str, password: str) -> sql.Composable:
    # a SCRAM verifier made by libpq: the clear password never reaches the server (nor its logs)
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    return sql.SQL("PASSWORD {}").format(sql.Literal(verifier))


def _full_name(conn: psycopg.Connection, name: str) -> str:
    p = role_prefix(conn)
    short = name[len(p):] if name.startswith(p) else name
    if not _NAME.match(short):
        raise TenancyError(f"reader name {name!r}: use 1 to 40 lower-case letters, digits and _, starting with a letter")
    if short in JOBS:
        raise TenancyError(f"reader name {name!r} is the name of a job role; choose another")
    return p + short


def service_role(conn: psycopg.Connection, *, password: str | None = None) -> str:
    """Create (once) and return the API's login role ``P||api``: NOINHERIT, a member of every reader
    login, so it sees nothing until ``SET LOCAL ROLE <reader>`` (:func:`tenant_transaction`).
    With ``password``, sets its password."""
    _check_migrated(conn)
    name = job_role(conn, "api")
    with conn.transaction():
        if not _role_exists(conn, name):
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOINHERIT").format(sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(conn.info.dbname), sql.Identifier(name)))
        if password is not None:
            conn.execute(sql.SQL("ALTER ROLE {} ").format(sql.Identifier(name)) + _password_clause(conn, name, password))
        for (reader,) in conn.execute(
                """SELECT t.role_name FROM tenant_scope t JOIN pg_roles r ON r.rolname = t.role_name
                   WHERE NOT pg_has_role(%s, r.oid, 'MEMBER')""", (name,)).fetchall():
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(reader), sql.Identifier(name)))
    return name


def grant_to_service(conn: psycopg.Connection, reader_name: str) -> None:
    """Let the API's service role run requests as ``reader_name`` (``SET LOCAL ROLE``); it sees
    nothing through the grant itself (NOINHERIT)."""
    service_role(conn)  # creates it if needed and grants it every reader of tenant_scope


def add_reader(conn: psycopg.Connection, *, enterprise: str | None = None, park: str | None = None,
               bureau: bool = False, writer: bool = False, name: str | None = None) -> Reader:
    """Create a login role seeing one enterprise, one park's enterprises, or all of them (bureau,
    read-only); ``writer``: it may also enter certificates, trades, facts, production and meter
    replacements within that scope. Returns the reader with its random password (shown once)."""
    _check_migrated(conn)
    if sum([enterprise is not None, park is not None, bureau]) != 1:
        raise TenancyError("give exactly one scope: an enterprise, a park, or the bureau")
    if writer and bureau:
        raise TenancyError("the bureau reads every enterprise and enters nothing: a bureau reader cannot be a writer")
    p = role_prefix(conn)
    enterprise_id = park_id = None
    if enterprise is not None:
        kind, code = "enterprise", enterprise
        row = conn.execute("SELECT enterprise_id FROM enterprise WHERE code = %s", (enterprise,)).fetchone()
        if row is None:
            known = [r[0] for r in conn.execute("SELECT code FROM enterprise ORDER BY code").fetchall()]
            raise TenancyError(f"enterprise {enterprise!r} does not exist (known: {', '.join(known) or 'none'})")
        enterprise_id = row[0]
        default = f"e{enterprise_id}"
    elif park is not None:
        kind, code = "park", park
        row = conn.execute("SELECT park_id FROM park WHERE code = %s", (park,)).fetchone()
        if row is None:
            known = [r[0] for r in conn.execute("SELECT code FROM park ORDER BY code").fetchall()]
            raise TenancyError(f"park {park!r} does not exist (known: {', '.join(known) or 'none'})")
        park_id = row[0]
        default = f"p{park_id}"
    else:
        kind, code = "bureau", None
        default = "bureau"
    # role names are visible to every role of the cluster (pg_roles): the default carries ids, not codes
    full = _full_name(conn, name) if name else f"{p}{default}_{secrets.token_hex(3)}"
    if _role_exists(conn, full):
        raise TenancyError(f"a role named {full} already exists; choose another --name or revoke it first")
    password = secrets.token_urlsafe(24)
    groups = [p + "reader"] + ([p + "writer"] if writer else [])
    with conn.transaction():
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN INHERIT ").format(sql.Identifier(full))
                     + _password_clause(conn, full, password)
                     + sql.SQL(" IN ROLE {}").format(sql.SQL(", ").join(map(sql.Identifier, groups))))
        conn.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = reader").format(
            sql.Identifier(full), sql.Identifier(conn.info.dbname)))
        conn.execute(
            """INSERT INTO tenant_scope (role_name, kind, enterprise_id, park_id, can_write)
               VALUES (%s, %s, %s, %s, %s)""",
            (full, kind, enterprise_id, park_id, writer),
        )
        grant_to_service(conn, full)
    return Reader(full, kind, code, writer, password)


def list_readers(conn: psycopg.Connection) -> list[Reader]:
    _check_migrated(conn)
    rows = conn.execute(
        """SELECT t.role_name, t.kind, coalesce(e.code, p.code), t.can_write, t.created_at
           FROM tenant_scope t LEFT JOIN enterprise e ON e.enterprise_id = t.enterprise_id
                LEFT JOIN park p ON p.park_id = t.park_id
           ORDER BY t.kind, 3 NULLS FIRST, t.role_name"""
    ).fetchall()
    return [Reader(n, k, c, w, None, at) for n, k, c, w, at in rows]


def revoke_reader(conn: psycopg.Connection, name: str) -> None:
    """Drop a reader's login role. Its sessions still open see nothing from the next statement on
    (its tenant_scope row is gone); the role itself is dropped."""
    _check_migrated(conn)
    full = name if name.startswith(role_prefix(conn)) else role_prefix(conn) + name
    row = conn.execute("SELECT 1 FROM tenant_scope WHERE role_name = %s", (full,)).fetchone()
    if row is None:
        known = [r.name for r in list_readers(conn)]
        raise TenancyError(f"no reader named {name!r} in this database (readers: {', '.join(known) or 'none'})")
    with conn.transaction():
        conn.execute("DELETE FROM tenant_scope WHERE role_name = %s", (full,))
        if _role_exists(conn, full):  # it owns nothing and holds no grant of its own: memberships only
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(full)))


def add_job_login(conn: psycopg.Connection, job: Literal["collector", "flows"], name: str) -> tuple[str, str]:
    """A login role for a collector or the flows (a member of that job role); returns (name, password)."""
    if job not in ("collector", "flows"):
        raise TenancyError(f"job logins are for the collector or the flows, not {job!r}")
    _check_migrated(conn)
    full = _full_name(conn, name)
    if _role_exists(conn, full):
        raise TenancyError(f"a role named {full} already exists; choose another --name")
    password = secrets.token_urlsafe(24)
    with conn.transaction():
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN INHERIT ").format(sql.Identifier(full))
                     + _password_clause(conn, full, password)
                     + sql.SQL(" IN ROLE {}").format(sql.Identifier(job_role(conn, job))))
    return full, password


@contextmanager
def tenant_transaction(conn: psycopg.Connection, reader_name: str) -> Iterator[psycopg.Connection]:
    """One transaction run as ``reader_name`` (``SET LOCAL ROLE``, ``search_path = reader``): the
    API's way to serve a request. The role and path end with the transaction."""
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(reader_name)))
        conn.execute("SET LOCAL search_path = reader")
        yield conn


def reader_url(base_url: str, reader: Reader) -> str:
    """A libpq URL for ``reader`` on the server and database of ``base_url`` (with its password when known)."""
    params = conninfo_to_dict(base_url)
    host = params.pop("host", "localhost")
    port = params.pop("port", None)
    dbname = params.pop("dbname", "")
    for key in ("user", "password", "passfile"):
        params.pop(key, None)
    auth = quote(reader.name, safe="")
    if reader.password:
        auth += ":" + quote(reader.password, safe="")
    if host.startswith("/"):  # a Unix socket directory
        host = quote(host, safe="")
    elif ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = auth + "@" + host + (f":{port}" if port else "")
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in sorted(params.items()))  # sslmode, …
    return f"postgresql://{netloc}/{quote(dbname, safe='')}" + (f"?{query}" if query else "")


def drop_roles(admin_url: str, dbname: str) -> list[str]:
    """Drop every role of database ``dbname`` (its prefix) once the database itself is dropped
    (its grants went with it). For tests and for retiring a database."""
    p = prefix_for(dbname)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            raise TenancyError(f"database {dbname} still exists: drop it before its roles")
        names = [r[0] for r in conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) ORDER BY rolcanlogin DESC, rolname",
            (p,)).fetchall()]
        for n in names:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(n)))
    return names
