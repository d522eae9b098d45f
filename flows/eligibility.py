"""Eligibility decisions per enterprise and year, versioned: never overwritten in place.

Every candidate source returns a list of candidate dicts, one per rule of a document in force::

    {"document": "晋政规〔2024〕2号", "clause": "§三(一)", "rule": "R1",
     "status": "qualifies", "amount": None | Decimal | str, "evidence": {...},
     "subject": "project pv1"}   # optional, default "": when one rule applies to several things

:func:`record_candidates` compares each candidate with the current version of the same
(enterprise, year, document, clause, rule, subject). Unchanged (same status, amount and evidence hash):
nothing is written. Changed: a new version row is inserted, pointing at the one it supersedes,
with the reason, read from the evidence:

- ``rule_change``   ``evidence["rule_version"]`` differs (a rule or document version changed);
- ``ledger_change`` ``evidence["ledger_digest"]`` differs (certificates, trades, facts entered);
- ``new_data``      ``evidence["data_through"]`` moved (the period grew: a new day for the current year);
- ``late_data``     otherwise (same period, different figures: late or replayed readings);
- ``first``         no earlier version.

The table refuses UPDATE (a trigger), so old versions stay; "what changed since decision N" is
``store.results.decisions_since(conn, N)`` or ``SELECT * FROM eligibility_change WHERE decision_id > N``.

Candidate sources are plain functions ``(conn, enterprise, year, period_start, period_end) ->
list[dict]`` listed in :data:`CANDIDATE_SOURCES`. Until the policy engine (metrics/, issue 5) is
plugged in, the only source is :func:`r1_candidates`: rule R1, green share ≥ 30 %, from the
accounting in flows/site_energy.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version as package_version
from zoneinfo import ZoneInfo

import psycopg
from prefect import flow, get_run_logger

from flows.metrics import list_enterprises
from flows.site_energy import site_energy
from flows.tasks import io_task, resolve_url
from metrics.green_share import THRESHOLD
from metrics.periods import local_bounds
from store.results import (Enterprise, current_decisions, evidence_hash, input_fingerprint, insert_decision,
                           last_fingerprint, lock, save_fingerprint)

Candidate = dict
CandidateSource = Callable[[psycopg.Connection, Enterprise, int, datetime, datetime], list[Candidate]]

#: R1's documents and the dates of the cases each may apply to (shared/policies/README.md):
#: 2024-2 from 2024-01-01, repealed when 2025-5 took effect on 2025-06-15; 2025-5 from
#: 2025-01-01 to 2026-12-31. Interim data until the policy engine owns documents in force.
R1_DOCUMENTS = (
    ("晋政规〔2024〕2号", "§三(一)", date(2024, 1, 1), date(2025, 6, 14)),
    ("晋政規〔2025〕5號", "§三(三)", date(2025, 1, 1), date(2026, 12, 31)),
)
R1_RULE_VERSION = "R1/flows-interim-1"


def code_version() -> str:
    try:
        return package_version("greengauge")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def r1_candidates(conn: psycopg.Connection, e: Enterprise, year: int, start: datetime, end: datetime) -> list[Candidate]:
    """Rule R1 for every document in force in ``year``: green share ≥ 30 % (inclusive) over [start, end)."""
    docs = [d for d in R1_DOCUMENTS if d[2] <= date(year, 12, 31) and d[3] >= date(year, 1, 1)]
    if not docs:
        return []
    result = site_energy(conn, e.code, start, end)
    t = result.totals
    if result.share is None:
        status = "no_consumption"
    else:
        status = "qualifies" if result.share.qualifies else "does_not_qualify"
    evidence = {
        "period": {"start": start.isoformat(), "end": end.isoformat(), "timezone": e.timezone},
        "data_through": end.isoformat(),
        "points": sorted(p.point_id for p in result.points),
        "intervals": t.intervals,
        "estimated_intervals": t.estimated_intervals,
        "green_wh": t.green_wh,
        "consumption_wh": t.consumption_wh,
        "share": f"{t.green_wh}/{t.consumption_wh}",
        "threshold": f"{THRESHOLD.numerator}/{THRESHOLD.denominator}",
        "inclusive": True,
        "method": "flows.site_energy.site_energy: counters -> interval energy -> balance -> green share",
        "rule_version": R1_RULE_VERSION,
        "ledger_digest": None,  # green trades and certificates arrive with the ledger (issue 4)
        "code_version": code_version(),
    }
    return [{"document": doc, "clause": clause, "rule": "R1", "status": status, "amount": None,
             "evidence": evidence} for doc, clause, _, _ in docs]


r1_candidates.version = R1_RULE_VERSION  # part of the input fingerprint: a new version re-evaluates

#: where candidates come from; the policy engine is added here (see the module docstring)
CANDIDATE_SOURCES: list[CandidateSource] = [r1_candidates]

#: more inputs an evaluation depends on, beyond rolled-up energy: ``(conn, enterprise, year) ->
#: JSON-able value`` (e.g. the newest change to certificates, trades, facts). A change re-evaluates.
FINGERPRINT_INPUTS: dict[str, Callable[[psycopg.Connection, Enterprise, int], object]] = {}


def classify_reason(old_evidence: dict, new_evidence: dict) -> str:
    if old_evidence.get("rule_version") != new_evidence.get("rule_version"):
        return "rule_change"
    if old_evidence.get("ledger_digest") != new_evidence.get("ledger_digest"):
        return "ledger_change"
    if old_evidence.get("data_through") != new_evidence.get("data_through"):
        return "new_data"
    return "late_data"


@dataclass(frozen=True)
class Recorded:
    decision_id: int
    document: str
    clause: str
    rule: str
    subject: str
    version: int
    reason: str
    status: str


def _amount(value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        raise ValueError(f"amount {value!r} is a float; give Decimal or str yuan")
    return Decimal(value)


def record_candidates(conn: psycopg.Connection, enterprise_id: int, year: int, candidates: list[Candidate],
                      *, reason: str | None = None) -> list[Recorded]:
    """Insert a new version for each candidate whose status, amount or evidence changed.

    Runs in the caller's transaction; ``reason`` overrides the classification (a caller that knows
    why it is re-evaluating, e.g. after a ledger import). Returns the versions written.
    """
    current = current_decisions(conn, enterprise_id, year)
    out = []
    for c in candidates:
        missing = {"document", "clause", "rule", "status", "evidence"} - set(c)
        if missing:
            raise ValueError(f"candidate {c!r} lacks {sorted(missing)}")
        key = (c["document"], c["clause"], c["rule"], c.get("subject") or "")
        amount = _amount(c.get("amount"))
        old = current.get(key)
        if old is not None and (old.status, old.amount, old.evidence_hash) == (c["status"], amount, evidence_hash(c["evidence"])):
            continue
        why = "first" if old is None else (reason or classify_reason(old.evidence, c["evidence"]))
        v = old.version + 1 if old else 1
        did = insert_decision(conn, enterprise_id, year, *key, v, c["status"], amount, c["evidence"], why,
                              old.decision_id if old else None)
        out.append(Recorded(did, *key, v, why, c["status"]))
    return out


def period_of(e: Enterprise, year: int, as_of: datetime) -> tuple[datetime, datetime] | None:
    """[year start, end): the whole local year when it is over; for the current year, up to the
    local midnight that starts ``as_of``'s day (complete days only, so it changes once a day);
    None for a future year or the first day of the current year."""
    start, end = local_bounds("year", date(year, 1, 1), e.timezone)
    if as_of >= end:
        return start, end
    today, _ = local_bounds("day", as_of.astimezone(ZoneInfo(e.timezone)).date(), e.timezone)
    return (start, today) if today > start else None


def evaluate(url: str, e: Enterprise, year: int, as_of: datetime, *, sources: list[CandidateSource] | None = None,
             reason: str | None = None, force: bool = False) -> list[Recorded]:
    """Evaluate every candidate source for one enterprise and year and record what changed, in one
    transaction. Skipped when the inputs' fingerprint (rolled-up energy of the period, code and
    source versions, :data:`FINGERPRINT_INPUTS`) equals the last evaluation's, unless ``force``."""
    period = period_of(e, year, as_of)
    if period is None:
        return []
    srcs = sources or CANDIDATE_SOURCES
    with psycopg.connect(url) as conn, conn.transaction():
        lock(conn, f"greengauge.flows.eligibility.{e.enterprise_id}")
        extra = {"code": code_version(), "sources": [getattr(s, "version", s.__qualname__) for s in srcs],
                 **{k: f(conn, e, year) for k, f in FINGERPRINT_INPUTS.items()}}
        fingerprint = input_fingerprint(conn, e.enterprise_id, *period, extra)
        if not force and fingerprint == last_fingerprint(conn, e.enterprise_id, year):
            return []
        candidates = [c for src in srcs for c in src(conn, e, year, *period)]
        recorded = record_candidates(conn, e.enterprise_id, year, candidates, reason=reason)
        save_fingerprint(conn, e.enterprise_id, year, fingerprint)
        return recorded


evaluate_task = io_task(evaluate, task_run_name="evaluate-{e.code}-{year}")


@flow(name="eligibility")
def eligibility_flow(database_url: str | None = None, enterprise: str | None = None,
                     years: list[int] | None = None, as_of: datetime | None = None) -> list[Recorded]:
    """Every rule of every document in force, per enterprise and year (default: this year and the last)."""
    url = resolve_url(database_url)
    now = as_of or datetime.now(timezone.utc)
    log = get_run_logger()
    out = []
    for e in list_enterprises(url, enterprise):
        this_year = now.astimezone(ZoneInfo(e.timezone)).year
        for y in years or [this_year - 1, this_year]:
            recorded = evaluate_task(url, e, y, now)
            for r in recorded:
                log.info("%s %d %s %s %s %s: version %d (%s) %s", e.code, y, r.document, r.clause, r.rule,
                         r.subject, r.version, r.reason, r.status)
            out.extend(recorded)
    return out
