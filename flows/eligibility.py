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
list[dict]`` listed in :data:`CANDIDATE_SOURCES`; the source is :func:`policy_candidates`, the
policy engine (metrics/policy) over every document's rules, fed from the store by
accounting/policy_inputs.py (R1 through the accounting's green-share report with the ledger).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from fractions import Fraction
from importlib.metadata import PackageNotFoundError, version as package_version
from zoneinfo import ZoneInfo

import psycopg
from prefect import flow, get_run_logger

from flows.metrics import list_enterprises
from accounting.policy_inputs import enterprise_year
from flows.tasks import BatchError, batch_name, batches, io_task, resolve_url, task_runner
from metrics.evidence import jsonable
from metrics.periods import local_bounds
from metrics.policy import evaluate as evaluate_policies
from model import CODE_VERSION
from model.tables import load_documents
from store.facts import enterprise_facts
from store.ledger import ledger_for
from store.bundle import nameplate_digest_rows_of, policy_read_start
from store.db import session
from store.projects import project_records, project_records_of
from store.results import (Enterprise, current_decisions, evidence_hash, input_fingerprints, insert_decision, lock,
                           pass_start, save_fingerprint, save_watermarks)

Candidate = dict
CandidateSource = Callable[[psycopg.Connection, Enterprise, int, datetime, datetime], list[Candidate]]

@functools.lru_cache(maxsize=1)
def code_version() -> str:
    try:
        return package_version("greengauge")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _default(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (Decimal, Fraction, date, datetime)):
        return str(obj)
    raise TypeError(f"not JSON-able: {obj!r}")


def _plain(obj):
    """JSON-ready data: dataclasses as objects; Decimal, Fraction and dates as exact strings."""
    return json.loads(json.dumps(jsonable(obj), ensure_ascii=False, default=_default))


def _digest(obj) -> str:
    canonical = json.dumps(_plain(obj), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def recorded_inputs(conn: psycopg.Connection, enterprise: str) -> dict[str, str]:
    """Digests of what people record for an enterprise: the certificate ledger (trades,
    certificates) and the facts (listings, certifications, PV projects, production). A changed
    digest in a decision's evidence makes its new version a ``ledger_change``."""
    trades, certs = ledger_for(conn, enterprise)
    facts = enterprise_facts(conn, enterprise)
    projects = project_records(conn, enterprise)
    production = conn.execute(
        """SELECT p.product, p.period_start, p.period_end, p.quantity, p.unit, p.output_value_yuan,
                  r.limit_kgce, r.access_kgce, r.advanced_kgce, r.industry_average_kgce, r.standard
           FROM production p JOIN enterprise e USING (enterprise_id)
           LEFT JOIN product_reference r USING (product)
           WHERE e.code = %s ORDER BY 1, 2""", (enterprise,)).fetchall()
    return {"ledger": _digest([trades, certs]), "facts": _digest([facts, projects, production])}


#: which recorded inputs each rule kind depends on
_KIND_INPUTS = {"green_share": ("ledger",), "recycling_energy": ("facts",), "pv_storage": ("facts",),
                "listing": ("facts",), "topup": ("facts",), "unit_energy": ("facts",)}


def policy_candidates(conn: psycopg.Connection, e: Enterprise, year: int, start: datetime, end: datetime
                      ) -> list[Candidate]:
    """Every rule of every policy document for the enterprise and year, from the policy engine
    (metrics/policy): each candidate with its document, clause, status, amount, whether it was
    chosen (就高不重复 / 从新、从优、就高不重复) and its evidence. The year is read up to ``end``."""
    ey, inputs = enterprise_year(conn, e.code, year, until=end)
    evaluation = evaluate_policies(ey, load_documents(), code_version=CODE_VERSION)
    digests = recorded_inputs(conn, e.code)
    versions = {d.number: d.digest for d in load_documents()}
    out = []
    for c in evaluation.candidates:
        d = c.to_dict()
        evidence = {
            **d["evidence"], "kind": c.kind, "group": c.group, "reasons": d["reasons"], "chosen": c.chosen,
            "choice": c.choice, "inputs": _inputs_for(c.kind, inputs),
            "period": {"start": start.isoformat(), "end": end.isoformat(), "timezone": e.timezone},
            "data_through": end.isoformat(),
            "rule_version": versions.get(c.document),
            "ledger_digest": {k: digests[k] for k in _KIND_INPUTS.get(c.kind, ("ledger", "facts"))},
            "code_version": code_version(),
        }
        out.append({"document": c.document, "clause": c.clause, "rule": c.rule, "status": c.status,
                    "amount": c.amount, "evidence": _plain(evidence), "subject": c.subject})
    return out


def _inputs_for(kind: str, inputs: dict) -> dict:
    """The part of the engine's input evidence a candidate of ``kind`` rests on."""
    keys = {"green_share": ("green_share",), "recycling_energy": ("recycling", "subproject"),
            "pv_storage": ("projects",), "unit_energy": ("products",)}.get(kind, ())
    return {"timezone": inputs.get("timezone"), "period_utc": inputs.get("period_utc"),
            **{k: inputs.get(k) for k in keys}}


# part of the input fingerprint: a new version re-evaluates every enterprise-year (unchanged decisions are
# not re-versioned). 2: the loader reads SunSpec nameplates per device id, not per device name; points'
# evidence states expected_interval_s and import_resolutions
policy_candidates.version = "policy-engine-2"

#: where candidates come from
CANDIDATE_SOURCES: list[CandidateSource] = [policy_candidates]

#: More inputs an evaluation depends on, beyond rolled-up energy: ``(conn, enterprise, year) ->
#: JSON-able value``. A change re-evaluates. What people record (ledger, facts, projects,
#: production) and the metering settings (the time zone, points' names, quantities, roles, ratings
#: and rollover widths, devices' profiles, CT/PT ratios and poll intervals, meter replacements) move
#: the enterprise's input stamp on every write (migration 0840), which
#: :func:`store.results.input_fingerprint` reads with the intervals.
FINGERPRINT_INPUTS: dict[str, Callable[[psycopg.Connection, Enterprise, int], object]] = {
    "documents": lambda conn, e, year: {d.number: d.digest for d in load_documents()},
}


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
    srcs = sources or CANDIDATE_SOURCES
    due = stale(url, [(e, year)], as_of, srcs, force=force)
    return record(url, *due[0], srcs, reason=reason) if due else []


Due = tuple[Enterprise, int, tuple[datetime, datetime], str]


def stale(url: str, items: list[tuple[Enterprise, int]], as_of: datetime, sources: list[CandidateSource], *,
          force: bool = False) -> list[Due]:
    """The (enterprise, year) of ``items`` to evaluate, each with its period (:func:`period_of`) and
    inputs' fingerprint: those whose fingerprint differs from the one their last evaluation stored
    (all of them with ``force``; none for a period not begun). Read in a few round trips for the
    whole batch: the projects, the nameplates of their devices, the fingerprints."""
    todo = [(e, y, p) for e, y in items if (p := period_of(e, y, as_of)) is not None]
    if not todo:
        return []
    with session(url, autocommit=True) as conn:  # reads only
        projects = project_records_of(conn, sorted({e.code for e, _, _ in todo}))
        plates = nameplate_digest_rows_of(conn, projects)
        base = {"code": code_version(), "sources": [getattr(s, "version", s.__qualname__) for s in sources]}
        rows = []
        for e, year, period in todo:
            extra = {**base, **{k: f(conn, e, year) for k, f in FINGERPRINT_INPUTS.items()},
                     # the latest SunSpec nameplates of the project devices (readings: no input stamp)
                     "nameplates": _digest(plates[e.code])}
            # the intervals the decision reads: the period, from a week before a commissioning in it (R3)
            read_from = policy_read_start(projects[e.code], period[0], period[1], e.timezone)
            rows.append((e.enterprise_id, read_from, period[1], {**extra, "period": [period[0], period[1]]}, year))
        fingerprints = input_fingerprints(conn, rows)
    return [(e, year, period, fp) for (e, year, period), (fp, last) in zip(todo, fingerprints) if force or fp != last]


def record(url: str, e: Enterprise, year: int, period: tuple[datetime, datetime], fingerprint: str,
           sources: list[CandidateSource], *, reason: str | None = None) -> list[Recorded]:
    """Evaluate one enterprise-year found :func:`stale` and record what changed with its
    fingerprint, in one transaction."""
    with session(url) as conn, conn.transaction():
        # one writer of an enterprise's decisions: a second pass that found the same change waits
        # here, then records nothing new (record_candidates compares with the current versions)
        lock(conn, f"greengauge.flows.eligibility.{e.enterprise_id}")
        candidates = [c for src in sources for c in src(conn, e, year, *period)]
        recorded = record_candidates(conn, e.enterprise_id, year, candidates, reason=reason)
        save_fingerprint(conn, e.enterprise_id, year, fingerprint)
    return recorded



def enterprise_decisions(url: str, e: Enterprise, as_of: datetime, years: list[int] | None = None) -> list[Recorded]:
    """One enterprise's eligibility: :func:`enterprises_decisions` of it alone."""
    return enterprises_decisions(url, [e], as_of, years)[0]


def enterprises_decisions(url: str, ents: list[Enterprise], as_of: datetime, years: list[int] | None = None
                          ) -> list[list[Recorded]]:
    """A batch of enterprises' eligibility (a list per enterprise): for each, the given years, or
    this year and the last plus every year holding intervals that changed since its eligibility
    watermark (late data of any age: that year's changed decisions get a new version, reason
    ``late_data``; the first pass: every year holding intervals). The batch's changed days are read
    in one round trip (:func:`store.results.pass_start`), its watermarks written in one; an
    enterprise's watermark moves once every year of it is recorded, so a failed pass is redone (each
    year's fingerprint then decides whether it is evaluated again): the others are still recorded,
    then the first failure is raised with the enterprises it hit."""
    begun = {}
    if years is None:
        with session(url) as conn:
            begun = pass_start(conn, ents, "eligibility")
    years_of = {}
    for e in ents:
        this_year = as_of.astimezone(ZoneInfo(e.timezone)).year
        years_of[e.enterprise_id] = years if years is not None else sorted(
            {this_year - 1, this_year} | {d.year for d in begun[e.enterprise_id].days if d.year <= this_year})
    due = stale(url, [(e, y) for e in ents for y in years_of[e.enterprise_id]], as_of, CANDIDATE_SOURCES)
    got: dict[int, list[Recorded]] = {e.enterprise_id: [] for e in ents}
    failed = []
    for e, year, period, fingerprint in due:
        if any(f is e for f, _ in failed):
            continue
        try:
            got[e.enterprise_id].extend(record(url, e, year, period, fingerprint, CANDIDATE_SOURCES))
        except Exception as exc:  # the others are still recorded; raised below
            failed.append((e, exc))
    out = [got[e.enterprise_id] for e in ents]
    if begun:
        bad = {e.enterprise_id for e, _ in failed}
        with session(url, autocommit=True) as conn:
            save_watermarks(conn, {eid: b.newest for eid, b in begun.items() if eid not in bad}, "eligibility")
    if failed:
        raise BatchError(failed)
    return out


decisions_task = io_task(enterprises_decisions, task_run_name=batch_name("eligibility"))


@flow(name="eligibility", task_runner=task_runner())
def eligibility_flow(database_url: str | None = None, enterprise: str | None = None,
                     years: list[int] | None = None, as_of: datetime | None = None,
                     deferred: bool = False) -> list[Recorded]:
    """Every rule of every document in force, per enterprise (fanned out: ``decisions_task.map``;
    ``deferred``: to task workers on any machine)
    and year (default: this year, the last, and closed years re-opened by late data)."""
    from prefect import unmapped

    url = resolve_url(database_url)
    now = as_of or datetime.now(timezone.utc)
    log = get_run_logger()
    out = []
    ents = list_enterprises(url, enterprise)
    futures = decisions_task.map(unmapped(url), batches(ents), unmapped(now), unmapped(years), deferred=deferred)
    for e, recorded in zip(ents, [r for batch in futures.result() for r in batch]):
        for r in recorded:
            log.info("%s %s %s %s %s: version %d (%s) %s", e.code, r.document, r.clause, r.rule,
                     r.subject, r.version, r.reason, r.status)
        out.extend(recorded)
    return out
