"""One transaction per request, run as the token's tenant role.

The API connects as its service role (a member of every tenant role, NOINHERIT: it sees nothing
itself but can ``SET ROLE`` to them). Each request: look the token's hash up, refuse an unknown,
expired or revoked one (401), then ``SET LOCAL ROLE <tenant role>`` inside the request's one
transaction. Every query then goes through the ``reader`` views as that role, so the database
decides what is visible; another tenant's resource simply is not there (404).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import sql
from psycopg_pool import ConnectionPool

from api.problems import ApiProblem, unauthorized
from store.tokens import PREFIX, hash_token


@dataclass
class Tenant:
    conn: psycopg.Connection
    token_id: int
    name: str
    kind: str  #: enterprise, park or bureau
    scope_code: str | None
    db_role: str
    can_write: bool

    def as_service(self) -> None:
        """Drop back to the service role for the rest of the transaction (to record an answer or a
        statement after the tenant role has read what it may)."""
        self.conn.execute("RESET ROLE")

    def as_tenant(self) -> None:
        # search_path = reader: the store's writers (store/ledger.py, facts.py, ...) name tables
        # unqualified, so as a tenant they reach the scoped views of schema reader, never public
        self.conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self.db_role)))
        self.conn.execute("SET LOCAL search_path = reader")


def pool(request: Request) -> ConnectionPool:
    return request.app.state.pool


#: declares the scheme in the OpenAPI document; the checks and their 401s are ours (RFC 9457)
bearer_scheme = HTTPBearer(auto_error=False, description="a token from `greengauge tokens create`")


def _bearer(request: Request, cred: HTTPAuthorizationCredentials | None) -> str:
    if cred is None:
        if request.headers.get("authorization"):
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        raise unauthorized("an Authorization: Bearer <token> header is required")
    token = cred.credentials.strip()
    if not token.startswith(PREFIX):
        raise unauthorized("not a GreenGauge token")
    return token


def tenant(request: Request,
           cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None) -> Iterator[Tenant]:
    """The request's transaction, as the token's tenant role (FastAPI runs the code after
    ``yield`` once the response is sent, so a streamed export reads inside the same transaction)."""
    token = _bearer(request, cred)
    with pool(request).connection() as conn:
        row = conn.execute(
            """SELECT token_id, name, kind, scope_code, db_role, can_write,
                      revoked_at IS NOT NULL, expires_at <= now()
               FROM public.api_token WHERE token_hash = %s""", (hash_token(token),)).fetchone()
        if row is None:
            raise unauthorized("unknown token")
        if row[6]:
            raise unauthorized(f"token {row[1]!r} was revoked")
        if row[7]:
            raise unauthorized(f"token {row[1]!r} has expired")
        t = Tenant(conn, *row[:6])
        try:
            t.as_tenant()
        except psycopg.Error:
            raise unauthorized(f"token {row[1]!r} has no database role any more") from None
        try:
            yield t
        finally:
            conn.rollback()  # writers commit explicitly; a read leaves nothing behind


def writer(t: Annotated[Tenant, Depends(tenant)]) -> Tenant:
    if not t.can_write:
        raise ApiProblem(403, f"token {t.name!r} may read but not write (create one with --write)")
    return t


TenantDep = Annotated[Tenant, Depends(tenant)]
WriterDep = Annotated[Tenant, Depends(writer)]
