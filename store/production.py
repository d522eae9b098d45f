"""Production volumes, output value and the limit standard's reference values: CSV import and query.

The CSV has a header row and a ``record`` column:

- ``production``: ``enterprise, product, period_start, period_end, quantity, unit`` required,
  ``output_value_yuan`` optional (工业总产值 of that product and period, yuan).
- ``reference``: ``product, unit`` required, and at least one of ``limit, access, advanced,
  industry_average`` [kgce per unit of product], with ``standard`` (the standard's number and
  table, e.g. "GB 30252-2013 表1"). One row per product; the values are the national or industry
  energy-consumption limit standard's 限定值 / 准入值 / 先进值.

Every error names the file, the line and the field; one bad row means nothing is written.
Importing the same rows again updates them (production is keyed by enterprise, product and
period; reference values by product). A production period may not overlap another period of the
same enterprise and product, in the file or already stored.

References
----------
福建省绿色制造梯度培育管理实施细则（暂行） 第七条 3; 晋政规〔2024〕2号 §四(五).
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

COLUMNS = ("record", "enterprise", "product", "period_start", "period_end", "quantity", "unit", "output_value_yuan",
           "limit", "access", "advanced", "industry_average", "standard")
RECORDS = ("production", "reference")
LEVEL_COLUMNS = ("limit", "access", "advanced", "industry_average")


class ProductionError(ValueError):
    """A production file is wrong; the message lists every problem with its line and field."""


@dataclass(frozen=True)
class ProductionRow:
    line: int
    enterprise: str
    product: str
    start: date
    end: date
    quantity: Decimal
    unit: str
    output_value_yuan: Decimal | None


@dataclass(frozen=True)
class ReferenceRow:
    line: int
    product: str
    unit: str
    values: dict[str, Decimal | None]  #: limit, access, advanced, industry_average [kgce/unit]
    standard: str


@dataclass(frozen=True)
class ImportResult:
    production: int
    references: int


def _number(raw: str, where: str, field: str, errors: list[str], *, positive: bool = False) -> Decimal | None:
    v = (raw or "").strip()
    if not v:
        return None
    try:
        d = Decimal(v.replace(",", ""))
    except InvalidOperation:
        errors.append(f"{where}: {field}: {v!r} is not a number")
        return None
    if not d.is_finite() or d < 0 or (positive and d == 0):
        errors.append(f"{where}: {field}: must be {'positive' if positive else 'non-negative'}, got {v}")
        return None
    return d


def parse_production_csv(text: str, name: str = "production.csv") -> list[ProductionRow | ReferenceRow]:
    """Parse and check a production CSV without touching the database.

    Raises
    ------
    ProductionError
        listing every problem as ``NAME line N: field: message``.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise ProductionError(f"{name} line 1: unknown column(s) {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    if "record" not in header or "product" not in header:
        raise ProductionError(f"{name} line 1: the columns record and product are required")
    errors: list[str] = []
    out: list[ProductionRow | ReferenceRow] = []
    periods: dict[tuple[str, str], list[tuple[date, date, int]]] = {}
    refs: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if None in raw:
            errors.append(f"{name} line {line}: more cells than the header has columns")
            continue
        if not any((v or "").strip() for v in raw.values()):
            continue
        where = f"{name} line {line}"
        n = len(errors)
        get = lambda f: (raw.get(f) or "").strip()  # noqa: E731
        record = get("record")
        product = get("product")
        if not product:
            errors.append(f"{where}: product: is required")
        if record == "production":
            ent = get("enterprise")
            if not ent:
                errors.append(f"{where}: enterprise: is required")
            days = {}
            for f in ("period_start", "period_end"):
                v = get(f)
                if not v:
                    errors.append(f"{where}: {f}: is required")
                    continue
                try:
                    days[f] = date.fromisoformat(v)
                except ValueError:
                    errors.append(f"{where}: {f}: {v!r} is not a date (YYYY-MM-DD)")
            start, end = days.get("period_start"), days.get("period_end")
            if start and end and end < start:
                errors.append(f"{where}: period_end: {end} is before period_start {start}")
            if not get("quantity"):
                errors.append(f"{where}: quantity: is required")
            qty = _number(get("quantity"), where, "quantity", errors)
            unit = get("unit")
            if not unit:
                errors.append(f"{where}: unit: is required")
            value = _number(get("output_value_yuan"), where, "output_value_yuan", errors)
            for f in LEVEL_COLUMNS + ("standard",):
                if get(f):
                    errors.append(f"{where}: {f}: belongs to a reference row, not a production row")
            if len(errors) == n:
                key = (ent, product)
                for a, b, other in periods.get(key, []):
                    if start <= b and a <= end:
                        errors.append(f"{where}: period_start: {start}..{end} overlaps {a}..{b} of {product} "
                                      f"on line {other}")
                        break
                periods.setdefault(key, []).append((start, end, line))
                out.append(ProductionRow(line, ent, product, start, end, qty, unit, value))
        elif record == "reference":
            unit = get("unit")
            if not unit:
                errors.append(f"{where}: unit: is required")
            values = {f: _number(get(f), where, f, errors, positive=True) for f in LEVEL_COLUMNS}
            if len(errors) == n and all(v is None for v in values.values()):
                errors.append(f"{where}: limit: give at least one of {', '.join(LEVEL_COLUMNS)} [kgce per {unit}]")
            lim, acc, adv = values["limit"], values["access"], values["advanced"]
            if len(errors) == n:
                # lower is better: advanced ≤ access ≤ limit wherever both are given
                for hi_name, hi, lo_name, lo in (("limit", lim, "access", acc), ("access", acc, "advanced", adv),
                                                 ("limit", lim, "advanced", adv)):
                    if hi is not None and lo is not None and lo > hi:
                        errors.append(f"{where}: {lo_name}: {lo} is above the {hi_name} value {hi} "
                                      "(lower is better: advanced ≤ access ≤ limit)")
                        break
            for f in ("enterprise", "period_start", "period_end", "quantity", "output_value_yuan"):
                if get(f):
                    errors.append(f"{where}: {f}: belongs to a production row, not a reference row")
            if len(errors) == n:
                if product in refs:
                    errors.append(f"{where}: product: reference values of {product!r} are already on line {refs[product]}")
                refs[product] = line
                out.append(ReferenceRow(line, product, unit, values, get("standard")))
        else:
            errors.append(f"{where}: record: {record!r} is not one of {', '.join(RECORDS)}")
    if errors:
        raise ProductionError("\n".join(errors))
    units = {r.product: (r.unit, r.line) for r in out if isinstance(r, ReferenceRow)}
    for r in out:
        if isinstance(r, ProductionRow) and r.product in units and units[r.product][0] != r.unit:
            errors.append(f"{name} line {r.line}: unit: {r.unit!r}, but the reference values of {r.product!r} "
                          f"(line {units[r.product][1]}) are per {units[r.product][0]!r}")
    if errors:
        raise ProductionError("\n".join(errors))
    return out


def import_production(conn: psycopg.Connection, rows: list[ProductionRow | ReferenceRow],
                      name: str = "production.csv") -> ImportResult:
    """Write parsed rows in one transaction: all or nothing.

    Raises
    ------
    ProductionError
        naming the line of each row whose enterprise does not exist, whose period overlaps a
        stored period of the same product, or whose unit differs from the stored reference values.
    """
    prod = [r for r in rows if isinstance(r, ProductionRow)]
    refs = [r for r in rows if isinstance(r, ReferenceRow)]
    codes = sorted({r.enterprise for r in prod})
    ids = dict(conn.execute("SELECT code, enterprise_id FROM enterprise WHERE code = ANY(%s)", (codes,)).fetchall())
    errors = [f"{name} line {r.line}: enterprise: no enterprise {r.enterprise!r} (apply its site file first)"
              for r in prod if r.enterprise not in ids]
    new_units = {r.product: r.unit for r in refs}
    stored_units = dict(conn.execute("SELECT product, unit FROM product_reference").fetchall())
    for r in prod:
        if r.enterprise not in ids:
            continue
        unit = new_units.get(r.product, stored_units.get(r.product))
        if unit is not None and unit != r.unit:
            errors.append(f"{name} line {r.line}: unit: {r.unit!r}, but the reference values of {r.product!r} "
                          f"are per {unit!r}")
        clash = conn.execute(
            """SELECT period_start, period_end FROM production
               WHERE enterprise_id = %s AND product = %s AND period_start <= %s AND period_end >= %s
                 AND NOT (period_start = %s AND period_end = %s) LIMIT 1""",
            (ids[r.enterprise], r.product, r.end, r.start, r.start, r.end)).fetchone()
        if clash:
            errors.append(f"{name} line {r.line}: period_start: {r.start}..{r.end} overlaps the stored period "
                          f"{clash[0]}..{clash[1]} of {r.product}")
    if errors:
        raise ProductionError("\n".join(errors))
    with conn.transaction():
        for r in refs:
            v = r.values
            conn.execute(
                """INSERT INTO product_reference (product, unit, limit_kgce, access_kgce, advanced_kgce,
                                                  industry_average_kgce, standard)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (product) DO UPDATE SET unit = EXCLUDED.unit, limit_kgce = EXCLUDED.limit_kgce,
                       access_kgce = EXCLUDED.access_kgce, advanced_kgce = EXCLUDED.advanced_kgce,
                       industry_average_kgce = EXCLUDED.industry_average_kgce, standard = EXCLUDED.standard,
                       recorded_at = now()""",
                (r.product, r.unit, v["limit"], v["access"], v["advanced"], v["industry_average"], r.standard))
        for r in prod:
            conn.execute(
                """INSERT INTO production (enterprise_id, product, period_start, period_end, quantity, unit,
                                           output_value_yuan)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (enterprise_id, product, period_start, period_end) DO UPDATE SET
                       quantity = EXCLUDED.quantity, unit = EXCLUDED.unit,
                       output_value_yuan = EXCLUDED.output_value_yuan, recorded_at = now()""",
                (ids[r.enterprise], r.product, r.start, r.end, r.quantity, r.unit, r.output_value_yuan))
    return ImportResult(len(prod), len(refs))


def import_production_file(conn: psycopg.Connection, path: Path | str) -> ImportResult:
    path = Path(path)
    text = read_text(path, ProductionError)
    return import_production(conn, parse_production_csv(text, path.name), path.name)
