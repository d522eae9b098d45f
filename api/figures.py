"""What the API reads: stored results and their evidence, through the ``reader`` views.

Nothing here computes a figure (one path per figure: the flows compute and store them, see
flows/metrics.py and flows/eligibility.py). Every query names ``reader.<table>``, the tenant-scoped
view of the table of the same name, and runs as the request's tenant role; a row of another tenant
is simply absent.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.rows import dict_row

#: which group of checks each rule kind belongs to (policies/README.md: R1, R2, R3, and the rest)
CHECK_GROUPS = {"green_share": "R1", "recycling_energy": "R2", "pv_storage": "R3", "unit_energy": "intensity",
                "listing": "listings", "topup": "listings"}
#: 2025-5 §三(一) replaced the R2 electricity award by a one-off award for a new MIIT norm listing
_R2_RULE_IDS = {"miit-norm-listing"}


@lru_cache(maxsize=1)
def policy_documents() -> tuple[dict[str, Any], ...]:
    from model.tables import load_documents

    return tuple({"number": d.number, "title": d.title, "source": d.source, "sha256": d.digest,
                  "rules": {r.id: r.kind for r in d.rules}} for d in load_documents())


def check_group(document: str, rule: str) -> str:
    if rule in _R2_RULE_IDS:
        return "R2"
    for d in policy_documents():
        if d["number"] == document and rule in d["rules"]:
            return CHECK_GROUPS.get(d["rules"][rule], "other")
    return "other"


def _rows(conn: psycopg.Connection, query: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _row(conn: psycopg.Connection, query: str, params: Any = None) -> dict[str, Any] | None:
    rows = _rows(conn, query, params)
    return rows[0] if rows else None


# -- the site model -------------------------------------------------------------------------------

def parks(conn) -> list[dict]:
    return _rows(conn, "SELECT park_id, code, name FROM reader.park ORDER BY code")


def park(conn, code: str) -> dict | None:
    return _row(conn, "SELECT park_id, code, name FROM reader.park WHERE code = %s", (code,))


_ENTERPRISE = """SELECT e.enterprise_id, e.code, e.name, e.timezone, e.industry, p.code AS park
                 FROM reader.enterprise e LEFT JOIN reader.park p USING (park_id)"""


def enterprises(conn, park_code: str | None = None) -> list[dict]:
    return _rows(conn, _ENTERPRISE + " WHERE %(p)s::text IS NULL OR p.code = %(p)s ORDER BY e.code", {"p": park_code})


def enterprise(conn, code: str) -> dict | None:
    return _row(conn, _ENTERPRISE + " WHERE e.code = %s", (code,))


def sites(conn, enterprise_id: int) -> list[dict]:
    return _rows(conn, "SELECT site_id, code, name FROM reader.site WHERE enterprise_id = %s ORDER BY code",
                 (enterprise_id,))


_POINT = """SELECT pt.point_id, pt.name, pt.quantity, pt.kind, pt.unit, pt.role, pt.subproject, pt.rated_power_w,
                   d.name AS device, s.code AS site, e.code AS enterprise
            FROM reader.point pt JOIN reader.device d USING (device_id) JOIN reader.site s USING (site_id)
            JOIN reader.enterprise e USING (enterprise_id)"""


def points(conn, enterprise_id: int) -> list[dict]:
    return _rows(conn, _POINT + " WHERE s.enterprise_id = %s ORDER BY pt.name", (enterprise_id,))


def point(conn, name: str) -> dict | None:
    return _row(conn, _POINT + " WHERE pt.name = %s", (name,))


# -- stored figures -------------------------------------------------------------------------------

def _year_days(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


def ledger(conn, enterprise_id: int, year: int) -> dict[str, list[dict]]:
    """The certificate ledger of the local calendar year, as recorded (rule R1's instruments)."""
    first, last = _year_days(year)
    trades = _rows(conn, """SELECT reference, settled_on, settled_wh FROM reader.green_trade
                            WHERE enterprise_id = %s AND settled_on BETWEEN %s AND %s
                            ORDER BY settled_on, reference""", (enterprise_id, first, last))
    certs = _rows(conn, """SELECT c.serial_prefix, c.serial_first, c.serial_last, c.serial_digits,
                                  c.serial_last - c.serial_first + 1 AS count, c.production_month, c.used_on,
                                  t.reference AS trade, c.reference
                           FROM reader.certificate c LEFT JOIN reader.green_trade t USING (trade_id)
                           WHERE c.enterprise_id = %s AND c.used_on BETWEEN %s AND %s
                           ORDER BY c.used_on, c.serial_prefix, c.serial_first""", (enterprise_id, first, last))
    return {"trades": trades, "certificates": certs}


_DECISION = """decision_id, document, clause, rule, subject, version, status, amount, evidence, evidence_hash,
               reason, supersedes, decided_at"""


def decisions(conn, enterprise_id: int, year: int, *, history: bool = True) -> list[dict]:
    """The current decision of each (document, clause, rule, subject), each with its versions
    (newest first) and the reason each was made."""
    current = _rows(conn, f"""SELECT {_DECISION} FROM reader.eligibility_current
                              WHERE enterprise_id = %s AND year = %s
                              ORDER BY document, clause, rule, subject""", (enterprise_id, year))
    versions: dict[tuple, list[dict]] = {}
    if history:
        for r in _rows(conn, f"""SELECT {_DECISION} FROM reader.eligibility_decision
                                 WHERE enterprise_id = %s AND year = %s
                                 ORDER BY document, clause, rule, subject, version DESC""", (enterprise_id, year)):
            versions.setdefault((r["document"], r["clause"], r["rule"], r["subject"]), []).append(r)
    for c in current:
        c["check"] = check_group(c["document"], c["rule"])
        if history:
            c["history"] = [{k: v[k] for k in ("decision_id", "version", "status", "amount", "reason", "supersedes",
                                              "evidence_hash", "decided_at")}
                            for v in versions.get((c["document"], c["clause"], c["rule"], c["subject"]), [])]
    return current


def decision_versions(conn, decision_id: int) -> list[dict] | None:
    """Every version of the decision key ``decision_id`` belongs to, oldest first, with evidence."""
    key = _row(conn, "SELECT enterprise_id, year, document, clause, rule, subject FROM reader.eligibility_decision "
                     "WHERE decision_id = %s", (decision_id,))
    if key is None:
        return None
    return _rows(conn, f"""SELECT {_DECISION} FROM reader.eligibility_decision
                           WHERE enterprise_id = %(enterprise_id)s AND year = %(year)s AND document = %(document)s
                             AND clause = %(clause)s AND rule = %(rule)s AND subject = %(subject)s
                           ORDER BY version""", key)


def production(conn, enterprise_id: int, year: int) -> list[dict]:
    """Production of periods overlapping the year, with the product's reference values (intensity)."""
    first, last = _year_days(year)
    return _rows(conn, """SELECT product, period_start, period_end, quantity, unit, output_value_yuan
                          FROM reader.production WHERE enterprise_id = %s AND period_start <= %s AND period_end >= %s
                          ORDER BY product, period_start""", (enterprise_id, last, first))


def year_figures(conn, code: str, year: int) -> dict[str, Any] | None:
    """Every stored figure of one enterprise and local calendar year with its evidence; None when
    the enterprise is not visible to the caller."""
    e = enterprise(conn, code)
    if e is None:
        return None
    eid = e["enterprise_id"]
    share = _row(conn, "SELECT * FROM reader.green_share_ytd WHERE enterprise_id = %s AND year = %s", (eid, year))
    proj = _row(conn, "SELECT * FROM reader.green_share_projection WHERE enterprise_id = %s AND year = %s", (eid, year))
    carbon = _row(conn, "SELECT * FROM reader.carbon_ytd WHERE enterprise_id = %s AND year = %s", (eid, year))
    for r in (share, proj, carbon):
        if r is not None:
            r.pop("enterprise_id", None)
            r.pop("year", None)
    checks: dict[str, list[dict]] = {"R1": [], "R2": [], "R3": [], "intensity": [], "listings": [], "other": []}
    for d in decisions(conn, eid, year):
        checks.setdefault(d["check"], []).append(d)
    data_through = share["data_through"] if share else (carbon["data_through"] if carbon else None)
    return {"enterprise": e, "year": year, "data_through": data_through,
            "green_share": share, "ledger": ledger(conn, eid, year), "projection": proj, "carbon": carbon,
            "checks": checks, "production": production(conn, eid, year)}


# -- digests of the inputs (statements) ------------------------------------------------------------

def canonical(value: Any) -> bytes:
    """Canonical JSON: keys sorted, no spaces, UTF-8; Decimal and times as strings (exact)."""
    return json.dumps(jsonable(value), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sha256_of(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


#: one line per stored interval, in this order, joined by "\n": the interval-energy digest
INTERVAL_LINE = "point_name|bucket_start (UTC, ISO 8601)|energy_wh|estimated (t/f)"


def interval_digest(conn, enterprise_id: int, start: datetime, end: datetime) -> dict[str, Any]:
    """sha256 of the enterprise's stored interval energy with bucket_start in [start, end), one
    line per interval as :data:`INTERVAL_LINE`, ordered by point name and time; a bureau
    recomputes it from the interval export."""
    n, digest = conn.execute(
        """SELECT count(*), encode(sha256(convert_to(coalesce(string_agg(
                      p.name || '|' || to_char(i.bucket_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                      || '|' || i.energy_wh || '|' || CASE WHEN i.estimated THEN 't' ELSE 'f' END,
                      E'\\n' ORDER BY p.name, i.bucket_start), ''), 'UTF8')), 'hex')
           FROM reader.interval_energy i JOIN reader.point p USING (point_id)
           JOIN reader.device d USING (device_id) JOIN reader.site s USING (site_id)
           WHERE s.enterprise_id = %s AND i.bucket_start >= %s AND i.bucket_start < %s""",
        (enterprise_id, start, end)).fetchone()
    return {"rows": n, "sha256": digest, "line": INTERVAL_LINE, "from": start, "to": end}


def recorded_digests(conn, enterprise_id: int, year: int) -> dict[str, Any]:
    """Digests of what people recorded for the year: ledger, facts and PV projects, production."""
    facts = _rows(conn, """SELECT kind, fact_date, level, scope, until, first_time, amount, reference
                           FROM reader.enterprise_fact WHERE enterprise_id = %s ORDER BY fact_date, kind, level, scope""",
                  (enterprise_id,))
    projects = _rows(conn, """SELECT code, pv_w, commissioned, storage_power_w, storage_energy_wh, storage_commissioned,
                                     storage_electrochemical FROM reader.pv_project WHERE enterprise_id = %s ORDER BY code""",
                     (enterprise_id,))
    return {"ledger": {"sha256": sha256_of(ledger(conn, enterprise_id, year)), "of": "ledger (canonical JSON)"},
            "facts": {"sha256": sha256_of({"facts": facts, "pv_projects": projects}), "rows": len(facts) + len(projects)},
            "production": {"sha256": sha256_of(production(conn, enterprise_id, year))}}
