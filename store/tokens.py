"""Bearer tokens of the bureau API: random secrets stored only as sha256 hashes.

Each token is scoped to an enterprise, a park or the bureau (optionally with write access) and
expires. Creating one creates its tenant login role with :func:`store.tenancy.add_reader`; the API
runs every request of the token as that role (``SET LOCAL ROLE``), so the database's reader views
decide what it sees. Revoking marks the token revoked and drops the role's access.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import sql

from store import tenancy

#: every token starts with this, so a leaked one is recognisable (e.g. by secret scanners)
PREFIX = "ggt_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,35}$")


class TokenError(ValueError):
    """A token that cannot be created or found; the message names the field."""


@dataclass(frozen=True)
class Token:
    token_id: int
    name: str
    kind: str  #: enterprise, park or bureau
    scope_code: str | None
    db_role: str
    can_write: bool
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= datetime.now(timezone.utc) else "active"


_COLS = "token_id, name, kind, scope_code, db_role, can_write, created_at, expires_at, revoked_at"


def hash_token(secret: str) -> str:
    """sha256 hex of the whole token string (the only form stored)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def grant_service(conn: psycopg.Connection) -> str:
    """Let the API's service role look tokens up and record idempotent answers and statements."""
    role = sql.Identifier(tenancy.service_role(conn))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
    conn.execute(sql.SQL("GRANT SELECT ON api_token TO {}").format(role))
    conn.execute(sql.SQL("GRANT SELECT, INSERT ON api_idempotency, statement TO {}").format(role))
    # row-level security is on for every base table (0501: only the job roles have a policy)
    for table, cmd in (("api_token", "SELECT"), ("api_idempotency", "ALL"), ("statement", "ALL")):
        if not conn.execute("SELECT 1 FROM pg_policy WHERE polrelid = %s::regclass AND polname = 'api_service'",
                            (table,)).fetchone():
            conn.execute(sql.SQL("CREATE POLICY api_service ON {} FOR {} TO {} USING (true)").format(
                sql.Identifier(table), sql.SQL(cmd), role)
                + (sql.SQL(" WITH CHECK (true)") if cmd == "ALL" else sql.SQL("")))
    return tenancy.service_role(conn)


def create_token(conn: psycopg.Connection, name: str, *, enterprise: str | None = None, park: str | None = None,
                 bureau: bool = False, write: bool = False, expires_in: timedelta = timedelta(days=90),
                 now: datetime | None = None) -> tuple[Token, str]:
    """Create a token and its tenant role; return it with the secret (shown once, never stored).

    Exactly one of ``enterprise``, ``park``, ``bureau`` gives the scope. Raises TokenError naming
    the field for a bad name, scope or lifetime.
    """
    if not _NAME.match(name or ""):
        raise TokenError(f"name {name!r}: use 1-36 lowercase letters, digits, '-' or '_', starting with a letter or digit")
    scopes = [s for s in (enterprise and "enterprise", park and "park", bureau and "bureau") if s]
    if len(scopes) != 1:
        raise TokenError("scope: give exactly one of --enterprise CODE, --park CODE or --bureau")
    if expires_in <= timedelta(0):
        raise TokenError(f"expires: {expires_in} is not a positive lifetime")
    kind = scopes[0]
    code = enterprise or park
    table = {"enterprise": "enterprise", "park": "park"}.get(kind)
    if table and conn.execute(sql.SQL("SELECT 1 FROM {} WHERE code = %s").format(sql.Identifier(table)),
                              (code,)).fetchone() is None:
        raise TokenError(f"{kind}: no {kind} {code!r}")
    if conn.execute("SELECT 1 FROM api_token WHERE name = %s", (name,)).fetchone():
        raise TokenError(f"name {name!r}: a token of that name exists (revoke it or choose another name)")
    secret = PREFIX + secrets.token_urlsafe(32)  # 32 random bytes
    created = now or datetime.now(timezone.utc)
    with conn.transaction():
        reader = tenancy.add_reader(conn, enterprise=enterprise, park=park, bureau=bureau, writer=write,
                                    name=f"api_{name.replace('-', '_')}")
        grant_service(conn)
        row = conn.execute(
            f"""INSERT INTO api_token (name, token_hash, kind, scope_code, db_role, can_write, created_at, expires_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLS}""",
            (name, hash_token(secret), kind, code, reader.name, write, created, created + expires_in)).fetchone()
    conn.commit()
    return Token(*row), secret


def list_tokens(conn: psycopg.Connection) -> list[Token]:
    return [Token(*r) for r in conn.execute(f"SELECT {_COLS} FROM api_token ORDER BY token_id")]


def revoke_token(conn: psycopg.Connection, name: str) -> Token:
    """Mark the token revoked (its requests get 401 from now on) and remove its database role."""
    with conn.transaction():
        row = conn.execute(
            f"UPDATE api_token SET revoked_at = coalesce(revoked_at, now()) WHERE name = %s RETURNING {_COLS}",
            (name,)).fetchone()
        if row is None:
            known = [r[0] for r in conn.execute("SELECT name FROM api_token ORDER BY name")]
            raise TokenError(f"name {name!r}: no such token (known: {', '.join(known) or 'none'})")
        token = Token(*row)
        if conn.execute("SELECT 1 FROM tenant_scope WHERE role_name = %s", (token.db_role,)).fetchone():
            tenancy.revoke_reader(conn, token.db_role)
    conn.commit()
    return token
