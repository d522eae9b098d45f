"""Recorded facts for the policy engine: import from CSV (all or nothing) and query.

The CSV has a header row; ``enterprise`` and ``record`` are required columns, the others are
optional and may be left empty where they do not apply. ``record`` is ``fact`` or ``pv_project``:

- fact: ``kind, date`` required; ``level, scope, until, first_time, amount, reference`` optional.
- pv_project: ``project, pv_w, date`` (the commissioning date) required; ``storage_power_w,
  storage_energy_wh, storage_commissioned`` (default: the PV's date), ``storage_electrochemical``
  optional.

Every error names the file, the line and the field; one bad row means nothing is written.
Importing the same rows again updates them (facts are keyed by enterprise, kind, level, scope and
date; projects by enterprise and project code).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg

from model.yamlfile import read_text

from metrics.policy import FACT_KINDS, Fact, PvProject, Storage
from model.tables import load_documents

COLUMNS = (
    "enterprise", "record", "kind", "date", "level", "scope", "until", "first_time", "amount", "reference",
    "project", "pv_w", "storage_power_w", "storage_energy_wh", "storage_commissioned", "storage_electrochemical",
)
RECORDS = ("fact", "pv_project")
_TRUE = {"true", "yes", "1", "y", "是"}
_FALSE = {"false", "no", "0", "n", "否"}


class FactsError(ValueError):
    """A facts file is wrong; the message lists every problem with its line and field."""


@dataclass(frozen=True)
class FactRow:
    line: int
    enterprise: str
    fact: Fact


@dataclass(frozen=True)
class ProjectRow:
    line: int
    enterprise: str
    project: PvProject


@dataclass(frozen=True)
class ImportResult:
    facts: int
    projects: int


def known_fact_kinds() -> list[str]:
    """Fact kinds the engine knows: the listed ones and every kind a policy document names."""
    kinds = set(FACT_KINDS)
    for d in load_documents():
        for r in d.rules:
            f = getattr(r.condition, "fact", None)
            if f:
                kinds.add(f)
    return sorted(kinds)


class _Row:
    def __init__(self, name: str, line: int, raw: dict[str, str], errors: list[str]):
        self.name, self.line, self.raw, self.errors = name, line, raw, errors

    def err(self, field: str, msg: str) -> None:
        self.errors.append(f"{self.name} line {self.line}: {field}: {msg}")

    def text(self, field: str, required: bool = False) -> str | None:
        v = (self.raw.get(field) or "").strip()
        if not v:
            if required:
                self.err(field, "is required")
            return None
        return v

    def day(self, field: str, required: bool = False) -> date | None:
        v = self.text(field, required)
        if v is None:
            return None
        try:
            return date.fromisoformat(v)
        except ValueError:
            self.err(field, f"{v!r} is not a date (YYYY-MM-DD)")
            return None

    def whole(self, field: str, required: bool = False) -> int | None:
        v = self.text(field, required)
        if v is None:
            return None
        try:
            n = int(v)
        except ValueError:
            self.err(field, f"{v!r} is not a whole number")
            return None
        if n <= 0:
            self.err(field, f"must be positive, got {n}")
            return None
        return n

    def money(self, field: str) -> Decimal | None:
        v = self.text(field)
        if v is None:
            return None
        try:
            d = Decimal(v)
        except InvalidOperation:
            self.err(field, f"{v!r} is not a number")
            return None
        if not d.is_finite() or d < 0:
            self.err(field, f"must be a non-negative amount, got {v}")
            return None
        return d

    def flag(self, field: str) -> bool | None:
        v = self.text(field)
        if v is None:
            return None
        if v.lower() in _TRUE:
            return True
        if v.lower() in _FALSE:
            return False
        self.err(field, f"{v!r} is not true/false")
        return None


def parse_facts_csv(text: str, name: str = "facts.csv") -> list[FactRow | ProjectRow]:
    """Parse and check a facts CSV without touching the database.

    Raises
    ------
    FactsError
        listing every problem as ``NAME line N: field: message``.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    errors: list[str] = []
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise FactsError(f"{name} line 1: unknown column(s) {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    missing = [c for c in ("enterprise", "record") if c not in header]
    if missing:
        raise FactsError(f"{name} line 1: missing column(s) {', '.join(missing)}")
    kinds = known_fact_kinds()
    out: list[FactRow | ProjectRow] = []
    seen: dict[tuple, int] = {}
    for raw in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
            continue
        if None in raw:  # more cells than header columns
            errors.append(f"{name} line {line}: more cells than the header has columns")
            continue
        r = _Row(name, line, raw, errors)
        n_err = len(errors)
        ent = r.text("enterprise", True)
        record = r.text("record", True)
        if record is not None and record not in RECORDS:
            r.err("record", f"{record!r} is not one of {', '.join(RECORDS)}")
            continue
        if record == "fact":
            kind = r.text("kind", True)
            if kind is not None and kind not in kinds:
                r.err("kind", f"unknown fact kind {kind!r} (known: {', '.join(kinds)})")
            d = r.day("date", True)
            until = r.day("until")
            if d and until and until < d:
                r.err("until", f"{until} is before the date {d}")
            fact = Fact(kind or "", d or date.min, level=r.text("level"), scope=r.text("scope"), until=until,
                        first_time=r.flag("first_time"), amount=r.money("amount"), reference=r.text("reference") or "")
            for f in ("project", "pv_w", "storage_power_w", "storage_energy_wh", "storage_commissioned"):
                if r.text(f):
                    r.err(f, "belongs to a pv_project row, not a fact")
            if len(errors) == n_err and ent:
                key = ("fact", ent, fact.kind, fact.level, fact.scope, fact.date)
                if key in seen:
                    r.err("date", f"the same fact is already on line {seen[key]}")
                seen[key] = line
                out.append(FactRow(line, ent, fact))
        elif record == "pv_project":
            code = r.text("project", True)
            pv_w = r.whole("pv_w", True)
            d = r.day("date", True)
            sp, se = r.whole("storage_power_w"), r.whole("storage_energy_wh")
            sd = r.day("storage_commissioned")
            if (sp is None) != (se is None) and len(errors) == n_err:
                r.err("storage_energy_wh" if se is None else "storage_power_w",
                      "give both storage_power_w and storage_energy_wh, or neither")
            if sd is not None and sp is None:
                r.err("storage_commissioned", "given without storage_power_w")
            electro = r.flag("storage_electrochemical")
            storage = Storage(sp, se, sd or d, True if electro is None else electro) if sp and se and d else None
            if len(errors) == n_err and ent and code and pv_w and d:
                key = ("pv_project", ent, code)
                if key in seen:
                    r.err("project", f"project {code!r} is already on line {seen[key]}")
                seen[key] = line
                out.append(ProjectRow(line, ent, PvProject(code, pv_w, d, storage)))
    if errors:
        raise FactsError("\n".join(errors))
    return out


def import_facts(conn: psycopg.Connection, rows: list[FactRow | ProjectRow], name: str = "facts.csv") -> ImportResult:
    """Write parsed rows in one transaction: all or nothing.

    Raises
    ------
    FactsError
        naming the line of each row whose enterprise does not exist (nothing is written).
    """
    codes = sorted({r.enterprise for r in rows})
    ids = dict(conn.execute("SELECT code, enterprise_id FROM enterprise WHERE code = ANY(%s)", (codes,)).fetchall())
    bad = [f"{name} line {r.line}: enterprise: no enterprise {r.enterprise!r} (apply its site file first)"
           for r in rows if r.enterprise not in ids]
    if bad:
        raise FactsError("\n".join(bad))
    n_f = n_p = 0
    with conn.transaction():
        for r in rows:
            eid = ids[r.enterprise]
            if isinstance(r, FactRow):
                f = r.fact
                conn.execute(
                    """INSERT INTO enterprise_fact (enterprise_id, kind, fact_date, level, scope, until, first_time,
                                                    amount, reference)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (enterprise_id, kind, level, scope, fact_date) DO UPDATE SET
                           until = EXCLUDED.until, first_time = EXCLUDED.first_time, amount = EXCLUDED.amount,
                           reference = EXCLUDED.reference, recorded_at = now()""",
                    (eid, f.kind, f.date, f.level, f.scope, f.until, f.first_time, f.amount, f.reference),
                )
                n_f += 1
            else:
                p, s = r.project, r.project.storage
                conn.execute(
                    """INSERT INTO pv_project (enterprise_id, code, pv_w, commissioned, storage_power_w,
                                               storage_energy_wh, storage_commissioned, storage_electrochemical)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (enterprise_id, code) DO UPDATE SET pv_w = EXCLUDED.pv_w,
                           commissioned = EXCLUDED.commissioned, storage_power_w = EXCLUDED.storage_power_w,
                           storage_energy_wh = EXCLUDED.storage_energy_wh,
                           storage_commissioned = EXCLUDED.storage_commissioned,
                           storage_electrochemical = EXCLUDED.storage_electrochemical, origin = 'facts',
                           recorded_at = now()""",
                    (eid, p.id, p.pv_w, p.commissioned, s.power_w if s else None, s.energy_wh if s else None,
                     s.commissioned if s else None, s.electrochemical if s else True),
                )
                n_p += 1
    return ImportResult(n_f, n_p)


def import_facts_file(conn: psycopg.Connection, path: Path | str) -> ImportResult:
    path = Path(path)
    text = read_text(path, FactsError)
    return import_facts(conn, parse_facts_csv(text, path.name), path.name)


def enterprise_facts(conn: psycopg.Connection, enterprise: str) -> tuple[Fact, ...]:
    rows = conn.execute(
        """SELECT f.kind, f.fact_date, f.level, f.scope, f.until, f.first_time, f.amount, f.reference
           FROM enterprise_fact f JOIN enterprise e USING (enterprise_id)
           WHERE e.code = %s ORDER BY f.fact_date, f.fact_id""",
        (enterprise,),
    ).fetchall()
    return tuple(Fact(k, d, level=lv, scope=sc, until=u, first_time=ft, amount=a, reference=ref)
                 for k, d, lv, sc, u, ft, a, ref in rows)


def enterprise_projects(conn: psycopg.Connection, enterprise: str) -> tuple[PvProject, ...]:
    """The projects as recorded, nameplates unresolved and without checks; the engine's input comes
    from :func:`accounting.policy_inputs.project_inputs` (SunSpec nameplates, per-project telemetry)."""
    rows = conn.execute(
        """SELECT p.code, p.pv_w, p.commissioned, p.storage_power_w, p.storage_energy_wh,
                  p.storage_commissioned, p.storage_electrochemical
           FROM pv_project p JOIN enterprise e USING (enterprise_id)
           WHERE e.code = %s ORDER BY p.commissioned, p.code""",
        (enterprise,),
    ).fetchall()
    out = []
    for code, pv_w, comm, sp, se, sd, electro in rows:
        # storage is present when it has a date (0301: a site-file project may leave its nameplate to SunSpec)
        storage = Storage(sp, se, sd or comm, electro) if sp is not None or sd is not None else None
        out.append(PvProject(code, pv_w, comm, storage))
    return tuple(out)
