"""Data entry: certificates and trades, facts, production, meter replacements.

Each POST runs the store's own entry code (store/ledger.py, facts.py, production.py, events.py:
the same validation as the command line) as the token's writer role, through the scoped entry
views of schema ``reader``: all of a request is written or nothing. An ``Idempotency-Key``
header makes a retried POST answer what the first one answered without entering anything twice
(the key is held with an advisory lock, so two concurrent retries cannot both write). Errors are
RFC 9457 problem details whose ``errors`` name each field (``entries/2/mwh``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from typing import Annotated, Any, Callable

import psycopg
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api import figures, models
from api.db import WriterDep
from api.problems import PROBLEM, ApiProblem, FieldError, Problem

router = APIRouter(prefix="/v1", tags=["data entry"], responses={
    c: {"model": Problem, "content": {PROBLEM: {}}} for c in (401, 403, 404, 409, 422)})

IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200,
                                       description="retrying with the same key and body enters nothing twice")]


def _idempotent(t, request: Request, key: str | None, body: BaseModel, write: Callable[[], dict[str, int]]):
    digest = hashlib.sha256(figures.canonical(body.model_dump(mode="json"))).hexdigest()
    if key is not None:
        t.as_service()
        t.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"greengauge.api.idempotency.{t.token_id}.{key}",))
        row = t.conn.execute("""SELECT request_hash, path, status, response FROM public.api_idempotency
                                WHERE token_id = %s AND key = %s""", (t.token_id, key)).fetchone()
        if row is not None:
            if row[0] != digest or row[1] != request.url.path:
                raise ApiProblem(422, f"Idempotency-Key {key!r} was used for another request",
                                 errors=[FieldError(field="Idempotency-Key",
                                                    message="already used with another body or path; use a new key")])
            return JSONResponse(row[3], status_code=row[2], headers={"Idempotent-Replayed": "true"})
        t.as_tenant()
    try:
        written = write()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ApiProblem(403, f"the database refused the entry for this token: {exc.diag.message_primary}") from None
    out = models.Written(written=written, idempotency_key=key).model_dump(mode="json")
    if key is not None:
        t.as_service()
        t.conn.execute("""INSERT INTO public.api_idempotency (token_id, key, method, path, request_hash, status, response)
                          VALUES (%s, %s, %s, %s, %s, 201, %s)""",
                       (t.token_id, key, request.method, request.url.path, digest, psycopg.types.json.Jsonb(out)))
    t.conn.commit()
    return JSONResponse(out, status_code=201)


def _visible_enterprise(t, code: str) -> dict:
    e = figures.enterprise(t.conn, code)
    if e is None:
        raise ApiProblem(404, f"enterprise {code!r} not found")
    return e


_LINE = re.compile(r"^(?P<name>\w+) line (?P<line>\d+): (?P<field>[\w/']+): (?P<msg>.*)$")
_ENTRY = re.compile(r"^entries/(?P<i>\d+): (?P<msg>.*)$")


def _csv_problem(exc: ValueError, collection: str) -> ApiProblem:
    """store/facts.py and store/production.py name 'NAME line N: field: message'; line 2 is row 0."""
    errors = []
    for line in str(exc).splitlines():
        m = _LINE.match(line)
        if m:
            row = int(m["line"]) - 2
            errors.append(FieldError(field=f"{collection}/{row}/{m['field']}" if row >= 0 else collection,
                                     message=m["msg"]))
        else:
            errors.append(FieldError(field=collection, message=line))
    return ApiProblem(422, "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)


def _to_csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


@router.post("/enterprises/{code}/ledger", status_code=201, response_model=models.Written)
def add_ledger(code: str, body: models.LedgerIn, request: Request, t: WriterDep, idempotency_key: IdemKey = None):
    """Green-power trades and green certificates (rule R1's ledger), all or nothing. A certificate
    serial counts once, ever; a certificate bundled with a trade names the trade's reference."""
    from metrics.ledger import serial_range
    from store.ledger import (CertificateEntry, LedgerError, TradeEntry, add_entries, check_certificate, mwh_to_wh,
                              parse_month)

    _visible_enterprise(t, code)
    entries, errors = [], []
    for i, e in enumerate(body.entries):
        try:
            if isinstance(e, models.TradeIn):
                try:
                    wh = mwh_to_wh(e.mwh)
                except ValueError as exc:
                    raise _Bad("mwh", str(exc)) from None
                entries.append(TradeEntry(code, e.reference, e.settled_on, wh))
            else:
                try:
                    first, last = serial_range(e.serial_first, e.serial_last)
                except ValueError as exc:
                    raise _Bad("serial_first", str(exc)) from None
                try:
                    month = parse_month(e.production_month)
                except ValueError as exc:
                    raise _Bad("production_month", str(exc)) from None
                c = CertificateEntry(code, first, last, month, e.used_on, e.trade, e.reference)
                try:
                    check_certificate(c)
                except ValueError as exc:
                    raise _Bad("used_on", str(exc)) from None
                entries.append(c)
        except _Bad as b:
            errors.append(FieldError(field=f"entries/{i}/{b.field}", message=b.message))
    if errors:
        raise ApiProblem(422, "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)

    def write():
        try:
            n = add_entries(t.conn, entries, [f"entries/{i}" for i in range(len(entries))])
        except LedgerError as exc:
            m = _ENTRY.match(str(exc))
            field = f"entries/{m['i']}" if m else "entries"
            raise ApiProblem(422, str(exc), errors=[FieldError(field=field, message=m["msg"] if m else str(exc))]) from None
        trades = sum(isinstance(e, TradeEntry) for e in entries)
        return {"trades": trades, "certificate_ranges": n - trades}

    return _idempotent(t, request, idempotency_key, body, write)


class _Bad(Exception):
    def __init__(self, field: str, message: str):
        self.field, self.message = field, message


@router.post("/enterprises/{code}/facts", status_code=201, response_model=models.Written)
def add_facts(code: str, body: models.FactsIn, request: Request, t: WriterDep, idempotency_key: IdemKey = None):
    """Facts for the policy engine (listings, certifications, grants) and PV projects, the rows
    of `greengauge facts import`; the same rows again update them."""
    from store.facts import COLUMNS, FactsError, import_facts, parse_facts_csv

    _visible_enterprise(t, code)
    text = _to_csv(COLUMNS, [{**r.model_dump(), "enterprise": code} for r in body.rows])
    try:
        rows = parse_facts_csv(text, "rows")
    except FactsError as exc:
        raise _csv_problem(exc, "rows") from None

    def write():
        try:
            r = import_facts(t.conn, rows, "rows")
        except FactsError as exc:
            raise _csv_problem(exc, "rows") from None
        return {"facts": r.facts, "pv_projects": r.projects}

    return _idempotent(t, request, idempotency_key, body, write)


@router.post("/enterprises/{code}/production", status_code=201, response_model=models.Written)
def add_production(code: str, body: models.ProductionsIn, request: Request, t: WriterDep,
                   idempotency_key: IdemKey = None):
    """Production volumes and output value per product and period, the production rows of
    `greengauge production import` (periods of one product may not overlap)."""
    from store.production import COLUMNS, ProductionError, import_production, parse_production_csv

    _visible_enterprise(t, code)
    text = _to_csv(COLUMNS, [{**r.model_dump(), "record": "production", "enterprise": code} for r in body.rows])
    try:
        rows = parse_production_csv(text, "rows")
    except ProductionError as exc:
        raise _csv_problem(exc, "rows") from None

    def write():
        try:
            r = import_production(t.conn, rows, "rows")
        except ProductionError as exc:
            raise _csv_problem(exc, "rows") from None
        return {"production": r.production}

    return _idempotent(t, request, idempotency_key, body, write)


@router.post("/points/{name}/replacements", status_code=201, response_model=models.Written)
def add_replacement(name: str, body: models.ReplacementIn, request: Request, t: WriterDep,
                    idempotency_key: IdemKey = None):
    """A meter replacement, so energy stays continuous across it (as `greengauge meter replace`);
    the next rollup recomputes the point's intervals from the swap on."""
    from store.events import record_replacement

    if figures.point(t.conn, name) is None:
        raise ApiProblem(404, f"point {name!r} not found")

    def write():
        try:
            rid = record_replacement(t.conn, name, body.ts, body.old_final_wh, body.new_initial_wh, body.reason)
        except (LookupError, ValueError) as exc:
            msg = str(exc).strip("'\"")
            field = ("ts" if "time" in msg or "instant" in msg or "already" in msg else
                     "reason" if "reason" in msg else "old_final_wh" if "old" in msg else
                     "new_initial_wh" if "new" in msg else "name")
            raise ApiProblem(422, msg, errors=[FieldError(field=field, message=msg)]) from None
        return {"replacements": 1, "replacement_id": rid}

    return _idempotent(t, request, idempotency_key, body, write)
