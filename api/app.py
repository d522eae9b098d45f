"""The bureau HTTP API under /v1 (OpenAPI at /v1/openapi.json, docs at /v1/docs).

Every request with a token runs in one transaction as the token's tenant role (api/db.py);
resources the role cannot see are 404, bad tokens 401, errors RFC 9457 problem details.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from api import exports, figures, models, problems, statements
from api.db import TenantDep
from api.problems import PROBLEM, ApiProblem, FieldError, Problem, not_found
from api.settings import ApiSettings
from api.signing import jwks, load_key

log = logging.getLogger(__name__)

_ERRORS = {401: {"model": Problem, "description": "missing, unknown, expired or revoked token"},
           404: {"model": Problem, "description": "not there, or not visible to this token"},
           422: {"model": Problem, "description": "a parameter is wrong; errors name it"}}


def _problem_docs(*codes: int) -> dict:
    return {c: {**_ERRORS.get(c, {"model": Problem}), "content": {PROBLEM: {}}} for c in codes}


YearPath = Annotated[int, Path(ge=2000, le=2100, description="local calendar year")]
router = APIRouter(prefix="/v1", responses=_problem_docs(401, 404, 422))


# -- the site model -------------------------------------------------------------------------------

@router.get("/parks", response_model=list[models.Park], tags=["site model"])
def list_parks(t: TenantDep):
    return figures.parks(t.conn)


@router.get("/parks/{code}", response_model=models.Park, tags=["site model"])
def get_park(code: str, t: TenantDep):
    return figures.park(t.conn, code) or _404(f"park {code!r}")


@router.get("/parks/{code}/enterprises", response_model=list[models.Enterprise], tags=["site model"])
def park_enterprises(code: str, t: TenantDep):
    if figures.park(t.conn, code) is None:
        _404(f"park {code!r}")
    return figures.enterprises(t.conn, code)


@router.get("/enterprises", response_model=list[models.Enterprise], tags=["site model"])
def list_enterprises(t: TenantDep):
    return figures.enterprises(t.conn)


def _enterprise(t, code: str) -> dict:
    return figures.enterprise(t.conn, code) or _404(f"enterprise {code!r}")


@router.get("/enterprises/{code}", response_model=models.Enterprise, tags=["site model"])
def get_enterprise(code: str, t: TenantDep):
    return _enterprise(t, code)


@router.get("/enterprises/{code}/sites", response_model=list[models.Site], tags=["site model"])
def enterprise_sites(code: str, t: TenantDep):
    return figures.sites(t.conn, _enterprise(t, code)["enterprise_id"])


@router.get("/enterprises/{code}/points", response_model=list[models.Point], tags=["site model"])
def enterprise_points(code: str, t: TenantDep):
    return figures.points(t.conn, _enterprise(t, code)["enterprise_id"])


@router.get("/points/{name}", response_model=models.Point, tags=["site model"])
def get_point(name: str, t: TenantDep):
    return figures.point(t.conn, name) or _404(f"point {name!r}")


# -- figures --------------------------------------------------------------------------------------

@router.get("/enterprises/{code}/years/{year}", response_model=models.YearFigures, tags=["figures"],
            summary="Every stored figure of an enterprise-year with its evidence")
def year_figures(code: str, year: YearPath, t: TenantDep):
    """Green share (rule R1) with the certificate ledger, projection and gap, carbon and standard
    coal, the R1/R2/R3/intensity checks with their full decision history, and production. Stored
    results only; ``data_through`` says up to when."""
    return figures.year_figures(t.conn, code, year) or _404(f"enterprise {code!r}")


@router.get("/enterprises/{code}/years/{year}/eligibility", response_model=list[models.Decision], tags=["figures"])
def year_eligibility(code: str, year: YearPath, t: TenantDep):
    """The current decision of every rule, each with every version and the reason it was made."""
    return figures.decisions(t.conn, _enterprise(t, code)["enterprise_id"], year)


@router.get("/decisions/{decision_id}/versions", response_model=list[models.FullVersion], tags=["figures"])
def decision_versions(decision_id: Annotated[int, Path(ge=1, le=2**63 - 1)], t: TenantDep):
    """Every version of the decision's (enterprise, year, document, clause, rule, subject), oldest
    first, each with its evidence."""
    return figures.decision_versions(t.conn, decision_id) or _404(f"decision {decision_id}")


@router.get("/changes", response_model=list[models.Change], tags=["figures"],
            summary="Decision versions newer than a decision id (what changed since the last pull)")
def changes(t: TenantDep, since: Annotated[int, Query(ge=0, le=2**63 - 1, description="the last decision_id seen")] = 0,
            limit: Annotated[int, Query(ge=1, le=10_000)] = 1000):
    """Every eligibility decision version with ``decision_id > since`` the token may see, oldest
    first, each beside the status and amount it replaced; page on with the last ``decision_id``."""
    with t.conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT c.decision_id, e.code AS enterprise, c.year, c.document, c.clause, c.rule, c.subject, c.version,
                      c.reason, c.old_status, c.new_status, c.old_amount, c.new_amount, c.decided_at
               FROM reader.eligibility_change c JOIN reader.enterprise e USING (enterprise_id)
               WHERE c.decision_id > %s ORDER BY c.decision_id LIMIT %s""", (since, limit)).fetchall()


@router.get("/enterprises/{code}/statements", response_model=list[models.StatementRef], tags=["statements"])
def enterprise_statements(code: str, t: TenantDep):
    """The statements issued for the enterprise, newest first."""
    eid = _enterprise(t, code)["enterprise_id"]
    with t.conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("""SELECT statement_id::text, year, kid, issued_at, data_through FROM reader.statement
                              WHERE enterprise_id = %s ORDER BY issued_at DESC, statement_id""", (eid,)).fetchall()


@router.get("/enterprises/{code}/daily-balance", response_model=list[models.DailyBalance], tags=["figures"])
def daily_balance(code: str, t: TenantDep,
                  from_: Annotated[date, Query(alias="from", description="first local day")],
                  to: Annotated[date, Query(description="last local day (inclusive), at most 366 days on")]):
    if to < from_ or (to - from_).days > 366:
        raise ApiProblem(422, "to: must be on or after from and at most 366 days on",
                         errors=[FieldError(field="to", message="must be on or after from, at most 366 days on")])
    eid = _enterprise(t, code)["enterprise_id"]
    with t.conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("""SELECT * FROM reader.daily_balance WHERE enterprise_id = %s AND day BETWEEN %s AND %s
                              ORDER BY day""", (eid, from_, to)).fetchall()


@router.get("/enterprises/{code}/findings", response_model=list[models.Finding], tags=["data quality"])
def findings(code: str, t: TenantDep, state: Literal["open", "closed", "all"] = "all",
             limit: Annotated[int, Query(ge=1, le=10_000)] = 1000):
    """Data-quality findings of the enterprise's devices, newest first."""
    eid = _enterprise(t, code)["enterprise_id"]
    with t.conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT f.finding_id, f.kind, d.name AS device, p.name AS point, s.code AS site, f.opened_at, f.closed_at,
                      CASE WHEN f.closed_at IS NULL THEN 'open' ELSE 'closed' END AS state, f.detail, f.detected_at
               FROM reader.dq_finding f JOIN reader.device d USING (device_id) JOIN reader.site s USING (site_id)
               LEFT JOIN reader.point p ON p.point_id = f.point_id
               WHERE s.enterprise_id = %(e)s
                 AND (%(s)s = 'all' OR (%(s)s = 'open') = (f.closed_at IS NULL))
               ORDER BY f.opened_at DESC, f.finding_id DESC LIMIT %(n)s""",
            {"e": eid, "s": state, "n": limit}).fetchall()


# -- exports --------------------------------------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _export(request: Request, t, name: str, kind: str, fmt: str, start: datetime, end: datetime, limit: int | None):
    exports.check_range(start, end)
    max_rows = request.app.state.settings.api_max_rows
    limit = min(limit or max_rows, max_rows)
    p = figures.point(t.conn, name) or _404(f"point {name!r}")
    headers = {}
    nxt = exports.next_from(t.conn, kind, p["point_id"], start, end, limit)
    if nxt is not None:
        url = request.url.include_query_params(**{"from": nxt.isoformat()})
        headers["Link"] = f'<{url}>; rel="next"'
    stem = f"{name}_{kind}_{start:%Y%m%dT%H%M%S%z}"
    if fmt == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
        return StreamingResponse(exports.stream_csv(t.conn, kind, p["point_id"], start, end, limit, name),
                                 media_type="text/csv; charset=utf-8", headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{stem}.xlsx"'
    return Response(exports.xlsx(t.conn, kind, p["point_id"], start, end, limit, name), media_type=XLSX,
                    headers=headers)


def _export_route(kind: str, fmt: str):
    def export(request: Request, name: str, t: TenantDep,
               from_: Annotated[datetime, Query(alias="from", description="ISO 8601 with offset, inclusive")],
               to: Annotated[datetime, Query(description="ISO 8601 with offset, exclusive; at most 366 days after from")],
               limit: Annotated[int | None, Query(ge=1, le=1_000_000, description="rows per page (capped)")] = None):
        return _export(request, t, name, kind, fmt, from_, to, limit)

    export.__name__ = f"export_{kind}_{fmt}"
    router.add_api_route(f"/points/{{name}}/{kind}.{fmt}", export, methods=["GET"], response_class=Response,
                         responses={200: {"content": {"text/csv" if fmt == "csv" else XLSX: {}},
                                          "description": "one page of rows; a Link header names the next page"}},
                         tags=["exports"], summary=f"{kind.capitalize()} of a point as {fmt.upper()}"
                                                   + (" (streamed)" if fmt == "csv" else ""))


for _kind in ("intervals", "readings"):
    for _fmt in ("csv", "xlsx"):
        _export_route(_kind, _fmt)


# -- statements -----------------------------------------------------------------------------------

@router.get("/keys", response_model=models.Jwks, tags=["statements"], responses={},
            summary="Public keys statements are signed with (JWKS, RFC 7517)")
def keys(request: Request):
    return jwks(request.app.state.public_keys)


def _signing_key(request: Request):
    key = request.app.state.signing_key
    if key is None:
        raise ApiProblem(503, "this server has no signing key (set GREENGAUGE_SIGNING_KEY_FILE; "
                              "`greengauge api keygen FILE` makes one)")
    return key


@router.post("/statements", response_model=models.Statement, status_code=201, tags=["statements"],
             responses=_problem_docs(401, 404, 422, 503))
def create_statement(body: models.StatementRequest, request: Request, response: Response, t: TenantDep):
    """Freeze one enterprise-year (every figure and status, evidence, input digests, document
    hashes, code version, data_through) and sign it. Any token that sees the enterprise may ask."""
    key = _signing_key(request)
    issued = statements.issue(t.conn, body.enterprise, body.year, key)
    if issued is None:
        _404(f"enterprise {body.enterprise!r}")
    payload, jws = issued
    if not (payload["green_share"] or payload["carbon"] or any(payload["checks"].values())):
        raise ApiProblem(422, f"no stored figures of {body.enterprise} for {body.year} to state",
                         errors=[FieldError(field="year", message="no figure is stored for this year yet")])
    eid = figures.enterprise(t.conn, body.enterprise)["enterprise_id"]
    t.as_service()  # the tenant role has read what it may; the service role records the statement
    row = t.conn.execute(
        """INSERT INTO public.statement (statement_id, enterprise_id, year, kid, jws, payload_sha256, data_through, issued_at,
                                  issued_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING issued_at""",
        (payload["statement_id"], eid, body.year, key.thumbprint(), jws, statements.payload_sha256(jws),
         payload["data_through"], payload["issued_at"], t.token_id)).fetchone()
    t.conn.commit()
    response.headers["Location"] = f"/v1/statements/{payload['statement_id']}"
    return _statement_out(payload["statement_id"], body.enterprise, body.year, key.thumbprint(), row[0], jws)


def _statement_out(sid, code, year, kid, issued_at, jws):
    payload = statements.payload_of(jws)
    return {"statement_id": str(sid), "enterprise": code, "year": year, "kid": kid, "issued_at": issued_at,
            "data_through": payload.get("data_through"), "jws": jws, "payload": payload}


def _load_statement(t, statement_id: str) -> dict:
    try:
        sid = uuid.UUID(statement_id)
    except ValueError:
        raise ApiProblem(404, f"statement {statement_id!r} not found") from None
    row = t.conn.execute(
        """SELECT s.statement_id, e.code, s.year, s.kid, s.issued_at, s.jws
           FROM reader.statement s JOIN reader.enterprise e USING (enterprise_id) WHERE s.statement_id = %s""",
        (sid,)).fetchone()
    if row is None:
        _404(f"statement {statement_id!r}")
    return _statement_out(*row)


@router.get("/statements/{statement_id}", response_model=models.Statement, tags=["statements"],
            responses={200: {"content": {"application/jose": {}}}})
def get_statement(statement_id: str, request: Request, t: TenantDep):
    """The statement; with ``Accept: application/jose`` the bare compact JWS."""
    s = _load_statement(t, statement_id)
    if "application/jose" in request.headers.get("accept", ""):
        return Response(s["jws"], media_type="application/jose")
    return s


@router.get("/statements/{statement_id}/fujian.{fmt}", response_class=Response, tags=["statements"],
            responses={200: {"content": {"application/json": {}, XLSX: {}}}})
def fujian_report(statement_id: str, fmt: Literal["json", "xlsx"], t: TenantDep):
    """The indicators energy data decides for the Fujian annual dynamic-management report
    (福建省绿色制造梯度培育管理实施细则 第十四条, due before 1 April), from the statement, carrying
    its signature."""
    from api import reports

    s = _load_statement(t, statement_id)
    if fmt == "json":
        return Response(figures.canonical(reports.fujian_json(s)), media_type="application/json")
    return Response(reports.fujian_xlsx(s), media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="fujian_{s["enterprise"]}_{s["year"]}.xlsx"'})


@router.get("/statements/{statement_id}/page", response_class=HTMLResponse, tags=["statements"])
def statement_page(statement_id: str, request: Request, t: TenantDep):
    """A printable page (Chinese and English) showing the figures and checking the signature in
    the browser against /v1/keys."""
    from api import pages

    return HTMLResponse(pages.statement_html(_load_statement(t, statement_id)))


@router.get("/verify", response_class=HTMLResponse, tags=["statements"], responses={})
def verify_page():
    """A page that checks any statement pasted or loaded into it, in the browser (no token needed)."""
    from api import pages

    return HTMLResponse(pages.statement_html(None))


@router.get("/whoami", response_model=models.TokenInfo, tags=["access"])
def whoami(t: TenantDep):
    row = t.conn.execute("SELECT current_user").fetchone()
    t.as_service()
    kind, code, write, expires = t.conn.execute(
        "SELECT kind, scope_code, can_write, expires_at FROM public.api_token WHERE token_id = %s", (t.token_id,)).fetchone()
    log.debug("whoami %s as %s", t.name, row[0])
    return {"name": t.name, "kind": kind, "scope_code": code, "can_write": write, "expires_at": expires}


def _404(what: str):
    raise not_found(what)


# -- the application ------------------------------------------------------------------------------

def service_url(settings: ApiSettings) -> str:
    """The service role's URL: api_database_url, else database_url with the service role as user."""
    if settings.api_database_url:
        return settings.api_database_url
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from store import tenancy

    password = settings.api_db_password()
    with psycopg.connect(settings.database_url) as conn:
        role = tenancy.service_role(conn, password=password)
        conn.commit()
    params = conninfo_to_dict(settings.database_url)
    params["user"] = role
    params.pop("password", None)  # the owner's
    if password:
        params["password"] = password
    return make_conninfo(**params)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    signing_key = load_key(settings.signing_key_file) if settings.signing_key_file else None
    public = ([signing_key] if signing_key else []) + [load_key(p.strip()) for p in settings.verify_key_files.split(",")
                                                       if p.strip()]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = ConnectionPool(service_url(settings), min_size=1, max_size=settings.api_pool_size,
                                        open=False, kwargs={"application_name": "greengauge-api"})
        app.state.pool.open(wait=True, timeout=30)
        try:
            yield
        finally:
            app.state.pool.close()

    app = FastAPI(title="GreenGauge bureau API", version="1", lifespan=lifespan, openapi_url="/v1/openapi.json",
                  docs_url="/v1/docs", redoc_url=None,
                  description="Verified yearly figures with their evidence, signed statements anyone can check, "
                              "exports and data entry. Authenticate with `Authorization: Bearer <token>` "
                              "(`greengauge tokens create`).")
    app.state.settings = settings
    app.state.signing_key = signing_key
    app.state.public_keys = public
    problems.install(app)

    @app.exception_handler(psycopg.OperationalError)
    async def _database_away(request: Request, exc: psycopg.OperationalError):
        log.error("database unavailable: %s", exc)
        return problems.problem_response(503, "the database is unavailable; retry later", request.url.path,
                                         headers={"Retry-After": "30"})

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        with app.state.pool.connection() as conn:
            conn.execute("SELECT 1")
        return {"status": "ok"}

    app.include_router(router)
    from api.writes import router as write_router

    app.include_router(write_router)
    return app
