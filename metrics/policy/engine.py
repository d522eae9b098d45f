"""The policy engine: every document that reaches an enterprise's year, every candidate, one choice.

For an :class:`~metrics.policy.inputs.EnterpriseYear`, every rule of every document is evaluated
and returned as a :class:`Candidate` with its document, clause, status, amount, reasons and
evidence. Candidates of the same *group* (overlapping support, e.g. the recycling award of
2024-2 and the MIIT-listing award of 2025-5) compete: the engine chooses one per group and keeps
the others, marked as lost, in the result.

Notes
-----
Reach (see :mod:`metrics.policy.documents`): an annual rule (green share, recycling electricity,
unit-product energy) is evaluated when its document reaches any day of the year, on the whole
calendar year's quantity. A one-off rule (listing, certification, grant, PV commissioning) is
evaluated for each event in the year, when its document reaches the event's date.

Choice: among the qualifying candidates of a group the highest amount wins (就高不重复); on equal
amounts the newer document wins (从新). Non-monetary benefits (R1 priority) count as equal.

References
----------
晋政规〔2024〕2号 §五(一) "就高不重复"; 晉政規〔2025〕5號 closing clause "从新、从优、就高不重复".
Rule R4 of shared/policies/README.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from typing import Any, Literal

from metrics.green_share import green_share
from metrics.intensity import grade_unit_energy, meets_level
from metrics.policy.documents import PolicyDocument, Reach, Rule
from metrics.policy.inputs import EnterpriseYear, Fact, PvProject
from metrics.policy.pv_storage import pv_storage_award
from metrics.policy.recycling import recycling_award

Status = Literal["qualifies", "does_not_qualify", "unknown", "not_applicable"]
STATUSES: tuple[Status, ...] = ("qualifies", "does_not_qualify", "unknown", "not_applicable")
FEN = Decimal("0.01")


@dataclass(frozen=True)
class Candidate:
    """One rule of one document applied to one subject (the year, a fact, a project)."""

    document: str  #: document number
    rule: str  #: rule id within the document
    kind: str
    clause: str
    group: str  #: overlapping support shares a group
    subject: str  #: "year 2025", "fact green_factory/national 2025-03-01", "project pv1"
    status: Status
    amount: Decimal | None  #: [yuan]; None for a benefit that is not money, or when not known
    reasons: tuple[str, ...]
    evidence: dict[str, Any] = field(default_factory=dict)
    chosen: bool = False
    choice: str = ""  #: why it was chosen or lost

    @property
    def key(self) -> tuple[str, str]:
        """Candidates with the same key compete; only one of them is paid."""
        return (self.group, self.subject if self.kind == "pv_storage" else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "document": self.document, "rule": self.rule, "kind": self.kind, "clause": self.clause,
            "group": self.group, "subject": self.subject, "status": self.status,
            "amount": None if self.amount is None else str(self.amount),
            "reasons": list(self.reasons), "evidence": _jsonable(self.evidence),
            "chosen": self.chosen, "choice": self.choice,
        }


@dataclass(frozen=True)
class Evaluation:
    enterprise: str
    year: int
    candidates: tuple[Candidate, ...]
    inputs: dict[str, Any] = field(default_factory=dict)  #: the EnterpriseYear, as plain data
    code_version: str = ""  #: the version of the code that evaluated (given by the caller)

    @property
    def chosen(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.chosen)

    @property
    def total(self) -> Decimal:
        """Sum of the chosen money awards [yuan]."""
        return sum((c.amount for c in self.chosen if c.amount is not None), Decimal("0.00"))

    def in_group(self, group: str) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.group == group)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every candidate with its evidence, the inputs, the code version and a digest.

        ``digest`` is the sha256 of the canonical JSON of everything else, so a bureau that
        re-runs the engine on the same inputs and documents can compare one string.
        """
        body = {"enterprise": self.enterprise, "year": self.year, "total": str(self.total),
                "code_version": self.code_version, "inputs": _jsonable(self.inputs),
                "candidates": [c.to_dict() for c in self.candidates]}
        canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        body["digest"] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        return body


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (Decimal, Fraction)):
        return str(v)
    if isinstance(v, date):
        return v.isoformat()
    return v


# ---- one document ------------------------------------------------------------------------------

def _doc_evidence(doc: PolicyDocument, rule: Rule, reach: Reach | None) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "document": doc.number, "title": doc.title, "source": doc.source, "rule": rule.id,
        "clause": rule.clause, "window": [doc.first_day, doc.last_day],
    }
    if doc.digest:
        ev["document_sha256"] = doc.digest
    if reach is not None:
        ev["reach"] = reach.reason
    if rule.notes:
        ev["reading"] = rule.notes
    return ev


def _cand(doc: PolicyDocument, rule: Rule, subject: str, status: Status, amount: Decimal | None,
          reasons: Iterable[str], reach: Reach | None, **evidence: Any) -> Candidate:
    ev = _doc_evidence(doc, rule, reach)
    ev.update(evidence)
    if amount is not None:
        amount = amount.quantize(FEN)  # every amount in yuan to the fen, for a uniform display
    return Candidate(doc.number, rule.id, rule.kind, rule.clause, rule.group, subject, status, amount,
                     tuple(reasons), ev)


def _unreached(reach: Reach) -> Status:
    return "unknown" if reach.reached is None else "not_applicable"


def _matches(fact: Fact, rule: Rule) -> bool:
    c = rule.condition
    return (fact.kind == c.fact and (c.level is None or fact.level == c.level)
            and (c.scope is None or fact.scope == c.scope))


def _fact_subject(f: Fact) -> str:
    return f"fact {f.kind}{'/' + f.level if f.level else ''}{' ' + f.scope if f.scope else ''} {f.date}"


def _evaluate_rule(doc: PolicyDocument, rule: Rule, ey: EnterpriseYear) -> list[Candidate]:
    year_subject = f"year {ey.year}"
    if not doc.applies_to_region(ey.region):
        return [_cand(doc, rule, year_subject, "not_applicable", None,
                      [f"{doc.number} applies in {doc.jurisdiction}, the enterprise is in {ey.region}"], None)]
    year_reach = doc.reach_year(ey.year)
    if year_reach.reached is not True:
        return [_cand(doc, rule, year_subject, _unreached(year_reach), None, [year_reach.reason], year_reach)]
    kind = rule.kind
    if kind == "green_share":
        return [_green_share(doc, rule, ey, year_reach)]
    if kind == "recycling_energy":
        return [_recycling(doc, rule, ey, year_reach)]
    if kind == "unit_energy":
        return [_unit_energy(doc, rule, ey, year_reach)]
    if kind in ("listing", "topup"):
        return _events(doc, rule, ey, year_reach)
    if kind == "pv_storage":
        return _pv_projects(doc, rule, ey, year_reach)
    raise ValueError(f"rule kind {kind!r} has no implementation")  # pragma: no cover - validated on load


def _green_share(doc: PolicyDocument, rule: Rule, ey: EnterpriseYear, reach: Reach) -> Candidate:
    subject = f"year {ey.year}"
    if ey.green_wh is None or ey.consumption_wh is None:
        return _cand(doc, rule, subject, "unknown", None, ["green or total electricity not known for the year"], reach)
    t = Fraction(rule.condition.threshold)
    try:
        gs = green_share(ey.green_wh, ey.consumption_wh, t)
    except ValueError as exc:
        return _cand(doc, rule, subject, "unknown", None, [str(exc)], reach)
    why = (f"green share {gs.percent:.2f} % {'≥' if gs.qualifies else '<'} {float(t * 100):g} % "
           f"({gs.green_wh} of {gs.consumption_wh} Wh): {rule.benefit}")
    return _cand(doc, rule, subject, "qualifies" if gs.qualifies else "does_not_qualify", None, [why], reach,
                 green_wh=gs.green_wh, consumption_wh=gs.consumption_wh, share=gs.share, threshold=t)


def _recycling(doc: PolicyDocument, rule: Rule, ey: EnterpriseYear, reach: Reach) -> Candidate:
    subject = f"year {ey.year}"
    held = [f for f in ey.facts if _matches(f, rule) and f.date <= reach.last
            and (f.until is None or f.until >= reach.first)]
    if not held:
        return _cand(doc, rule, subject, "does_not_qualify", None,
                     [f"no {rule.condition.fact} ({rule.condition.scope}) status recorded as held in "
                      f"{reach.first}..{reach.last}"], reach)
    fact = held[0]
    status_why = f"holds {fact.kind} {fact.scope or ''} since {fact.date} ({fact.reference or 'no reference'})"
    if ey.recycling_wh is None:
        return _cand(doc, rule, subject, "unknown", None,
                     [status_why, f"the recycling project's electricity in {ey.year} is not known"], reach,
                     fact=_fact_ev(fact))
    a = recycling_award(ey.recycling_wh, rule.amount, rule.cap)
    why = f"{ey.recycling_wh} Wh × {rule.amount} {rule.unit} = {a.uncapped} yuan"
    if a.capped:
        why += f", capped at {a.cap}"
    return _cand(doc, rule, subject, "qualifies", a.amount, [status_why, why], reach,
                 fact=_fact_ev(fact), energy_wh=ey.recycling_wh, period=[date(ey.year, 1, 1), date(ey.year, 12, 31)],
                 rate=rule.amount, unit=rule.unit, uncapped=a.uncapped, cap=a.cap, capped=a.capped)


def _fact_ev(f: Fact) -> dict[str, Any]:
    return {k: v for k, v in vars(f).items() if v not in (None, "")}


def _events(doc: PolicyDocument, rule: Rule, ey: EnterpriseYear, year_reach: Reach) -> list[Candidate]:
    c = rule.condition
    facts = [f for f in ey.facts if _matches(f, rule) and f.date.year == ey.year]
    if not facts:
        what = f"{c.fact}{'/' + c.level if c.level else ''}"
        return [_cand(doc, rule, f"year {ey.year}", "does_not_qualify", None,
                      [f"no {what} recorded in {ey.year}"], year_reach)]
    out = []
    for f in facts:
        subject = _fact_subject(f)
        reach = doc.reach_date(f.date)
        if reach.reached is not True:
            out.append(_cand(doc, rule, subject, _unreached(reach), None, [reach.reason], reach, fact=_fact_ev(f)))
            continue
        reasons = [f"{f.kind} {f.level or ''} on {f.date} ({f.reference or 'no reference'})".replace("  ", " ")]
        if c.first_time and f.first_time is not True:
            if f.first_time is None:
                out.append(_cand(doc, rule, subject, "unknown", None,
                                 reasons + ["the rule pays a first certification only; not recorded whether it is"],
                                 reach, fact=_fact_ev(f)))
            else:
                out.append(_cand(doc, rule, subject, "does_not_qualify", None,
                                 reasons + ["not a first certification (首次)"], reach, fact=_fact_ev(f)))
            continue
        if rule.kind == "listing":
            out.append(_cand(doc, rule, subject, "qualifies", rule.amount, reasons + [f"{rule.amount} yuan one-off"],
                             reach, fact=_fact_ev(f)))
            continue
        # topup: a share of a grant received, capped
        if f.amount is None:
            out.append(_cand(doc, rule, subject, "unknown", None, reasons + ["the grant's amount is not recorded"],
                             reach, fact=_fact_ev(f)))
            continue
        uncapped = (f.amount * rule.amount).quantize(FEN, rounding=ROUND_DOWN)
        amount = min(uncapped, rule.cap) if rule.cap is not None else uncapped
        reasons.append(f"{f.amount} × {rule.amount} = {uncapped} yuan" + (f", capped at {rule.cap}" if amount < uncapped else ""))
        out.append(_cand(doc, rule, subject, "qualifies", amount, reasons, reach, fact=_fact_ev(f),
                         uncapped=uncapped, cap=rule.cap))
    return out


def _pv_projects(doc: PolicyDocument, rule: Rule, ey: EnterpriseYear, year_reach: Reach) -> list[Candidate]:
    projects = [p for p in ey.projects if p.commissioned.year == ey.year]
    if not projects:
        return [_cand(doc, rule, f"year {ey.year}", "does_not_qualify", None,
                      [f"no PV project commissioned in {ey.year}"], year_reach)]
    return [evaluate_pv_project(doc, rule, p) for p in projects]


def evaluate_pv_project(doc: PolicyDocument, rule: Rule, p: PvProject) -> Candidate:
    """Apply a ``pv_storage`` rule to one project, on its commissioning date.

    Nameplates decide the amount; telemetry checks that ``fail`` remove the part they disprove
    (PV not producing: the project; storage short of 2 h or of 10 %: the storage part). Checks that
    are ``unknown`` leave the nameplate decision standing and are listed in the reasons.
    """
    subject = f"project {p.id}"
    reach = doc.reach_date(p.commissioned)
    ev: dict[str, Any] = {"pv_w": p.pv_w, "commissioned": p.commissioned,
                          "checks": [{"name": c.name, "status": c.status, "detail": c.detail, "data": c.data}
                                     for c in p.checks]}
    if p.storage:
        ev["storage"] = {"power_w": p.storage.power_w, "energy_wh": p.storage.energy_wh,
                         "commissioned": p.storage.commissioned, "electrochemical": p.storage.electrochemical}
    if reach.reached is not True:
        return _cand(doc, rule, subject, _unreached(reach), None,
                     [f"PV commissioned {p.commissioned}: {reach.reason}"], reach, **ev)
    cond = rule.condition
    reasons: list[str] = [f"PV commissioned {p.commissioned}: {reach.reason}"]
    storage = p.storage
    if storage is not None:
        s_reach = doc.reach_date(storage.commissioned)
        if not storage.electrochemical:
            reasons.append("storage is not electrochemical (电化学储能)")
            storage = None
        elif s_reach.reached is not True:
            reasons.append(f"storage commissioned {storage.commissioned}: {s_reach.reason}")
            storage = None
    if p.pv_w is None:
        reasons.append("PV capacity not known: no nameplate in the site file and no SunSpec capacity_w reading")
        return _cand(doc, rule, subject, "unknown", None, reasons, reach, **ev)
    if storage is not None and (storage.power_w is None or storage.energy_wh is None):
        reasons.append(f"storage nameplate not known (power {storage.power_w} W, energy {storage.energy_wh} Wh): "
                       "the storage part is not decided")
        storage = None
    checks = {c.name: c for c in p.checks}
    produced = checks.get("pv_produced_after_commissioning")
    if produced is not None and produced.status == "fail":
        reasons.append(f"telemetry: {produced.detail}")
        return _cand(doc, rule, subject, "does_not_qualify", None, reasons, reach, **ev)
    failed_storage = [c for n, c in checks.items()
                      if n in ("storage_discharge_duration", "storage_power_ratio") and c.status == "fail"]
    if storage is not None and failed_storage:
        reasons += [f"telemetry disproves the storage nameplate: {c.detail}" for c in failed_storage]
        storage = None
    for c in p.checks:
        if c.status == "unknown":
            reasons.append(f"telemetry not verified: {c.name}: {c.detail}")
    a = pv_storage_award(
        p.pv_w,
        storage.power_w if storage else None,
        storage.energy_wh if storage else None,
        pv_rate=rule.amount["pv"], storage_rate=rule.amount["storage"], pv_min_w=cond.pv_min_w,
        storage_min_power_ratio=cond.storage_min_power_ratio, storage_min_hours=cond.storage_min_hours,
        cap=rule.cap,
    )
    reasons += list(a.reasons)
    figures = dict(pv_amount=a.pv_amount, storage_amount=a.storage_amount, uncapped=a.uncapped, cap=a.cap,
                   capped=a.capped, rates=dict(rule.amount), unit=rule.unit)
    if not a.pv_ok:
        return _cand(doc, rule, subject, "does_not_qualify", None, reasons, reach, **ev, **figures)
    return _cand(doc, rule, subject, "qualifies", a.amount, reasons, reach, **ev, **figures)


def _unit_energy(doc: PolicyDocument, rule: Rule, ey: EnterpriseYear, reach: Reach) -> Candidate:
    subject = f"year {ey.year}"
    level = rule.condition.reach
    if not ey.products:
        return _cand(doc, rule, subject, "unknown", None, [f"no production recorded for {ey.year}"], reach)
    results: dict[str, Any] = {}
    verdicts: list[bool | None] = []
    reasons: list[str] = []
    for pr in ey.products:
        if pr.energy_kgce is None:
            verdicts.append(None)
            reasons.append(f"{pr.product}: its share of the enterprise's energy is not known")
            continue
        if pr.reference is None or pr.quantity <= 0:
            verdicts.append(None)
            reasons.append(f"{pr.product}: no reference values or no output recorded")
            continue
        g = grade_unit_energy(pr.energy_kgce, pr.quantity, pr.reference)
        ok = meets_level(g, level)
        verdicts.append(ok)
        results[pr.product] = {"kgce_per_unit": g.value, "unit": pr.reference.unit, "reaches": g.reaches,
                               "source": pr.reference.source}
        word = {True: "reaches", False: "does not reach", None: "cannot be compared with"}[ok]
        reasons.append(f"{pr.product}: {float(g.value):.4g} kgce/{pr.reference.unit} {word} the {level} value")
    if all(v is True for v in verdicts):
        status: Status = "qualifies"
    elif any(v is False for v in verdicts):
        status = "does_not_qualify"
    else:
        status = "unknown"
    if rule.benefit:
        reasons.append(rule.benefit)
    return _cand(doc, rule, subject, status, None, reasons, reach, products=results, level=level)


# ---- choosing ----------------------------------------------------------------------------------

def choose(candidates: Sequence[Candidate], documents: Sequence[PolicyDocument]) -> list[Candidate]:
    """Mark one qualifying candidate per group as chosen: highest amount, then newest document.

    Returns the candidates in the same order, each with ``chosen`` and ``choice`` set.
    """
    issued = {d.number: d.issued or date.min for d in documents}
    principle = {d.number: d.overlap for d in documents}
    by_key: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(candidates):
        by_key.setdefault(c.key, []).append(i)
    out = list(candidates)
    for idxs in by_key.values():
        qual = [i for i in idxs if out[i].status == "qualifies"]
        if not qual:
            continue
        win = max(qual, key=lambda i: (out[i].amount or Decimal(0), issued.get(out[i].document, date.min)))
        w = out[win]
        rule_names = sorted({f"{principle[out[i].document].principle} ({out[i].document} {principle[out[i].document].clause})"
                             for i in qual if principle.get(out[i].document)})
        how = "; ".join(rule_names) or "就高不重复"
        rivals = [i for i in qual if i != win]
        pending = [out[i] for i in idxs if out[i].status == "unknown"]
        choice = "chosen" if not rivals else f"chosen over {len(rivals)} other candidate(s) by {how}"
        if pending:
            choice += "; undecided in the same group: " + ", ".join(f"{c.document} {c.clause}" for c in pending)
        out[win] = replace(w, chosen=True, choice=choice)
        for i in rivals:
            c = out[i]
            if w.amount is None:
                out[i] = replace(c, choice=f"superseded: {w.document} {w.clause} gives the same benefit ({how})")
                continue
            cmp = "lower amount" if (c.amount or 0) < w.amount else "equal amount, older document (从新)"
            out[i] = replace(c, choice=f"not paid: {w.document} {w.clause} pays {w.amount} ({cmp}; {how})")
    return out


def evaluate(ey: EnterpriseYear, documents: Sequence[PolicyDocument], *, code_version: str = "") -> Evaluation:
    """Evaluate every rule of every document for one enterprise and year, and choose.

    Parameters
    ----------
    ey : the enterprise's year: metered energy [Wh], recorded facts, PV projects, products
    documents : the policy documents (``model.tables.load_documents()`` loads the packaged ones)
    code_version : the calling code's version, recorded in :meth:`Evaluation.to_dict`

    Returns
    -------
    :class:`Evaluation` holding every candidate (chosen, lost, not qualifying, unknown, not
    applicable) in document order; ``.chosen`` and ``.total`` give what is paid.

    References
    ----------
    晋政规〔2024〕2号 §五(一); 晉政規〔2025〕5號 closing clause; README R1-R4.
    """
    if not isinstance(ey.year, int) or not 1900 < ey.year < 2200:
        raise ValueError(f"year must be a calendar year, got {ey.year!r}")
    docs = list(documents)
    cands: list[Candidate] = []
    for doc in sorted(docs, key=lambda d: (d.issued or date.min, d.number)):
        for rule in doc.rules:
            cands.extend(_evaluate_rule(doc, rule, ey))
    return Evaluation(ey.enterprise, ey.year, tuple(choose(cands, docs)), asdict(ey), code_version)
