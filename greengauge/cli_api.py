"""Commands of the bureau API: serve it, its signing key, its tokens, and verifying a statement.
Registered in :mod:`greengauge.cli` with one import."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from greengauge.terminal import connect, console, err, fail

api_app = typer.Typer(help="The bureau HTTP API.", no_args_is_help=True)
tokens_app = typer.Typer(help="Bearer tokens of the API (scoped to an enterprise, a park or the bureau).",
                         no_args_is_help=True)
statement_app = typer.Typer(help="Signed statements.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the commands to the ``greengauge`` app (greengauge/cli.py)."""
    app.add_typer(api_app, name="api")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(statement_app, name="statement")


@api_app.command("serve")
def serve(host: str = typer.Option("127.0.0.1", help="address to listen on"),
          port: int = typer.Option(8000, help="TCP port"),
          workers: int = typer.Option(1, help="worker processes")) -> None:
    """Serve the API with uvicorn (settings: GREENGAUGE_DATABASE_URL, GREENGAUGE_API_DATABASE_URL,
    GREENGAUGE_SIGNING_KEY_FILE)."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings
    from api.signing import KeyError_

    try:
        application = create_app(ApiSettings())
    except KeyError_ as exc:
        fail(str(exc))
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_level="info", proxy_headers=True)
    else:
        uvicorn.run("api.asgi:app", host=host, port=port, workers=workers, log_level="info", proxy_headers=True)


@api_app.command("keygen")
def keygen(file: Path = typer.Argument(..., help="where to write the Ed25519 private key (PEM, mode 0600)")) -> None:
    """Make a statement signing key; point GREENGAUGE_SIGNING_KEY_FILE at it."""
    from api.signing import KeyError_, generate_key

    try:
        kid = generate_key(file)
    except KeyError_ as exc:
        fail(str(exc))
    console.print(f"{file}: Ed25519 signing key, kid {kid}\nset GREENGAUGE_SIGNING_KEY_FILE={file}", highlight=False)


_DURATION = re.compile(r"^(\d+)([dhm])$")


def _lifetime(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not m or int(m[1]) == 0:
        fail(f"--expires {text!r}: give a lifetime like 90d, 12h or 30m")
    n = int(m[1])
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[m[2]]


@tokens_app.command("create")
def tokens_create(name: str = typer.Argument(..., help="a name for the token, e.g. bureau-quanzhou"),
                  enterprise: Optional[str] = typer.Option(None, help="scope: this enterprise (code)"),
                  park: Optional[str] = typer.Option(None, help="scope: the enterprises of this park (code)"),
                  bureau: bool = typer.Option(False, "--bureau", help="scope: every enterprise, read-only"),
                  write: bool = typer.Option(False, "--write", help="may also enter ledger, facts, production"),
                  expires: str = typer.Option("90d", help="lifetime: 90d, 12h, 30m")) -> None:
    """Create a token; the secret is printed once and stored only as its sha256."""
    from store.tenancy import TenancyError
    from store.tokens import TokenError, create_token

    with connect() as conn:
        try:
            token, secret = create_token(conn, name, enterprise=enterprise, park=park, bureau=bureau, write=write,
                                         expires_in=_lifetime(expires))
        except (TokenError, TenancyError) as exc:
            fail(str(exc))
    scope = token.kind + (f" {token.scope_code}" if token.scope_code else "")
    err.print(f"token {token.name}: {scope}{', write' if token.can_write else ''}, expires "
              f"{token.expires_at:%Y-%m-%d %H:%M %Z} (shown once; store it now):", highlight=False)
    print(secret)


@tokens_app.command("list")
def tokens_list() -> None:
    """Every token with its scope and state (never the secret)."""
    from store.tokens import list_tokens

    with connect() as conn:
        tokens = list_tokens(conn)
    t = Table("name", "scope", "write", "expires", "state", "database role")
    for k in tokens:
        t.add_row(k.name, k.kind + (f" {k.scope_code}" if k.scope_code else ""), "yes" if k.can_write else "",
                  f"{k.expires_at:%Y-%m-%d %H:%M}", k.state, k.db_role)
    console.print(t)


@tokens_app.command("revoke")
def tokens_revoke(name: str) -> None:
    """Revoke a token now (its requests get 401) and drop its database role."""
    from store.tokens import TokenError, revoke_token

    with connect() as conn:
        try:
            t = revoke_token(conn, name)
        except TokenError as exc:
            fail(str(exc))
    console.print(f"token {t.name} revoked", highlight=False)


@statement_app.command("verify")
def statement_verify(
    file: Path = typer.Argument(..., help="the statement: a compact JWS, or the JSON of GET /v1/statements/{id}"),
    jwks: Optional[str] = typer.Option(None, help="JWKS file or URL (e.g. https://HOST/v1/keys)"),
    database: bool = typer.Option(False, "--database", help="also re-read every figure from GREENGAUGE_DATABASE_URL "
                                                            "and print what differs"),
) -> None:
    """Check a statement's signature offline against a JWKS; with --database, compare every figure,
    status and input digest with what the database holds now. Exit 0 valid and unchanged, 1 invalid,
    3 valid but the database differs."""
    from api.signing import InvalidSignature, verify

    if not file.exists():
        fail(f"{file}: no such file")
    text = file.read_text(encoding="utf-8").strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
            text = doc.get("jws") or doc["statement"]["jws"]
        except (ValueError, KeyError, TypeError, AttributeError):
            fail(f"{file}: JSON without a 'jws' member")
    if jwks is None:
        fail("--jwks FILE|URL: the public keys to check against (GET /v1/keys of the issuing server)")
    try:
        if re.match(r"^https?://", jwks):
            import httpx

            key_set = httpx.get(jwks, timeout=10).raise_for_status().json()
        else:
            key_set = json.loads(Path(jwks).read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - any way of not getting the keys is one message
        fail(f"--jwks {jwks}: cannot read the keys ({exc})")
    try:
        header, payload_bytes = verify(text, key_set)
    except InvalidSignature as exc:
        err.print(f"[red]INVALID[/red] {file}: {exc}", highlight=False)
        raise typer.Exit(1)
    payload = json.loads(payload_bytes)
    e = payload.get("enterprise") or {}
    console.print(f"[green]valid[/green] {file}: statement {payload.get('statement_id')} of {e.get('code')} "
                  f"{payload.get('year')}, data through {payload.get('data_through')}, key {header.get('kid')}",
                  highlight=False)
    if not database:
        return
    from api.statements import COMPARED, differences, frozen_figures

    with connect() as conn:
        now = _as_bureau(conn, e.get("code"), payload.get("year"), frozen_figures)
    if now is None:
        fail(f"enterprise {e.get('code')!r} is not in the database")
    diffs = differences({k: payload.get(k) for k in COMPARED}, {k: now.get(k) for k in COMPARED})
    diffs += _recomputed(payload)
    diffs += _recomputed_carbon_and_decisions(payload)
    # a figure recomputed by a later flow run moves computed_at without changing: say so apart
    moved = [d for d in diffs if ".computed_at:" in d or d.startswith("computed_at")]
    real = [d for d in diffs if d not in moved]
    for d in real:
        console.print(f"  differs: {d}", highlight=False, markup=False)
    for d in moved:
        console.print(f"  recomputed since (same figure): {d}", highlight=False, markup=False)
    if real:
        console.print(f"[yellow]{len(real)} difference(s)[/yellow] between the statement and the database now")
        raise typer.Exit(3)
    console.print("every figure, status and input digest equals the database now")


#: members of the stated green share that the metrics flow's own computation gives again
RECOMPUTED = ("green_wh", "consumption_wh", "onsite_green_wh", "trade_wh", "certificate_wh", "status", "missing_wh",
              "certificates_to_buy")


def _recomputed(payload: dict) -> list[str]:
    """Rule R1 for the stated period recomputed from the stored interval energy and the ledger by
    the metrics flow's own functions (flows.metrics.read_year + compute_metrics, nothing written):
    a difference means the inputs changed since (late data, a ledger entry), not a second method."""
    from datetime import datetime

    from flows.metrics import compute_metrics, read_year
    from model.settings import get_settings
    from store.results import enterprises, projected_green_wh

    stated = payload.get("green_share")
    if not stated or not payload.get("data_through"):
        return []
    url = get_settings().database_url
    with connect() as conn:
        e = enterprises(conn, payload["enterprise"]["code"])[0]
    m = compute_metrics(read_year(url, e, payload["year"], datetime.fromisoformat(payload["data_through"])))
    if m.share is None:
        return ["green_share: stated, but nothing to recompute it from now"]
    out = []
    for k in RECOMPUTED:
        again = getattr(m.share, k)
        if stated.get(k) != again:
            out.append(f"green_share.{k} recomputed from interval energy: {stated.get(k)} -> {again}")
    # the year-end projection: the members store.results.write_projection stores as they are
    proj = payload.get("projection")
    if proj and m.projection is not None:
        for k, again in (("projected_green_wh", projected_green_wh(m.projection)),
                         ("projected_consumption_wh", m.projection.consumption_wh),
                         ("projected_qualifies", m.projection.qualifies),
                         ("gap_year_end_wh", m.projection.missing_wh), ("gap_now_wh", m.share.missing_wh)):
            if k in proj and proj[k] != again:
                out.append(f"projection.{k} recomputed from interval energy: {proj[k]} -> {again}")
    if not out:
        console.print("recomputed from the stored interval energy and ledger: rule R1 and the projection give "
                      "the stated figures",
                      highlight=False)
    return out


def _recomputed_carbon_and_decisions(payload: dict) -> list[str]:
    """Carbon and standard coal (flows.metrics.carbon_row, the stated region, factor offset and
    equal value, up to the stated carbon data_through) and every stated eligibility decision
    (flows.eligibility.policy_candidates over the period the stated decisions were made for:
    status and amount per document, clause, rule and subject), recomputed inside a transaction
    that is rolled back: nothing is written. The statement holds no daily balances."""
    from datetime import datetime
    from decimal import Decimal

    from api.figures import jsonable
    from flows.eligibility import period_of, policy_candidates
    from flows.metrics import CarbonOptions, carbon_row
    from store.results import enterprises

    out: list[str] = []
    with connect() as conn:
        try:
            found = enterprises(conn, payload["enterprise"]["code"])
            if not found:
                return []
            e, year = found[0], payload["year"]
            stated = payload.get("carbon")
            if stated and stated.get("data_through"):
                opts = CarbonOptions(region=stated.get("region") or "national",
                                     factor_year_offset=stated.get("factor_year_offset") or 0,
                                     equal_value_kgce_per_kwh=None if stated.get("equal_value_kgce_per_kwh") is None
                                     else Decimal(str(stated["equal_value_kgce_per_kwh"])))
                again = jsonable(carbon_row(conn, e, year, datetime.fromisoformat(stated["data_through"]), opts))
                n = len(out)
                for k in sorted(again):
                    if stated.get(k) != again[k]:
                        out.append(f"carbon.{k} recomputed: {stated.get(k)} -> {again[k]}")
                if len(out) == n:
                    console.print("recomputed carbon and standard coal: the stated figures", highlight=False)
            stated_d = [d for g in (payload.get("checks") or {}).values() for d in g]
            if stated_d:
                periods = {((d.get("evidence") or {}).get("period") or {}).get("end") for d in stated_d} - {None}
                if len(periods) == 1:
                    p = next(iter(periods))
                    period = period_of(e, year, datetime.fromisoformat(p))
                elif payload.get("data_through"):
                    period = period_of(e, year, datetime.fromisoformat(payload["data_through"]))
                else:
                    period = None
                if period is None:
                    return out + ["checks: stated, but no period to re-evaluate them over"]
                now = {(c["document"], c["clause"], c["rule"], c.get("subject") or ""): c
                       for c in policy_candidates(conn, e, year, *period)}
                n = len(out)
                amount = lambda v: None if v is None else Decimal(str(v))  # noqa: E731
                unmatched = []
                for d in stated_d:
                    c = now.pop((d["document"], d["clause"], d["rule"], d.get("subject") or ""), None)
                    if c is None:
                        unmatched.append(d)
                        continue
                    name = f"{d['document']} {d['clause']} {d['rule']} [{d.get('subject') or ''}]"
                    if d["status"] != c["status"]:
                        out.append(f"decision {name} re-evaluated: status {d['status']} -> {c['status']}")
                    if amount(d.get("amount")) != amount(c.get("amount")):
                        out.append(f"decision {name} re-evaluated: amount {d.get('amount')} -> {c.get('amount')}")
                # a rule whose subject changed (e.g. the listing it now rests on): paired by rule
                for d in unmatched:
                    rule = (d["document"], d["clause"], d["rule"])
                    k = next((k for k in sorted(now) if k[:3] == rule), None)
                    c = now.pop(k) if k else None
                    out.append(f"decision {' '.join(rule)} re-evaluated: status {d['status']} [{d.get('subject') or ''}]"
                               + (f" -> {c['status']} [{k[3]}], amount {d.get('amount')} -> {c.get('amount')}" if c
                                  else " -> (no such rule now)"))
                for k, c in sorted(now.items()):
                    out.append(f"decision {' '.join(k[:3])} re-evaluated: (not stated) -> {c['status']} [{k[3]}]")
                if len(out) == n:
                    console.print("re-evaluated by the policy engine: every stated decision's status and amount",
                                  highlight=False)
        finally:
            conn.rollback()
    return out


def _as_bureau(conn, code, year, frozen_figures):
    """Read as the API would for the bureau: a bureau reader role made inside this transaction
    and rolled back with it (roles are transactional), so verifying leaves nothing behind."""
    import secrets

    from psycopg import sql

    from store import tenancy

    conn.execute("SELECT 1")  # begin the transaction: add_reader's own block becomes a savepoint
    try:
        r = tenancy.add_reader(conn, bureau=True, name=f"verify_{secrets.token_hex(4)}")
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(r.name)))
        conn.execute("SET LOCAL search_path = reader")
        return frozen_figures(conn, code, year)
    finally:
        conn.rollback()
