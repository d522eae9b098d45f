"""The certificate ledger in PostgreSQL: green-power trades and green certificates (GEC).

A serial counts once, ever: the table ``certificate`` holds each serial at most once (exclusion
constraint ``certificate_serial_once``), so a second use is refused by the database itself.
Imports are all-or-nothing: every row is checked first, then all are written in one transaction;
an error names the row (file line) and the field.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg
from psycopg import errors

from metrics.ledger import WH_PER_CERTIFICATE, CertificateBlock, Serial, Trade, serial_range, validity_problem

COLUMNS = ("kind", "enterprise", "reference", "date", "mwh", "serial_first", "serial_last",
           "production_month", "trade")


class LedgerError(ValueError):
    """An entry the ledger refuses; the message names the row and field."""


@dataclass(frozen=True)
class TradeEntry:
    enterprise: str
    reference: str
    settled_on: date
    settled_wh: int


@dataclass(frozen=True)
class CertificateEntry:
    enterprise: str
    first: Serial
    last: Serial
    production_month: date
    used_on: date
    trade: str | None = None
    reference: str | None = None

    @property
    def count(self) -> int:
        return self.last.number - self.first.number + 1

    @property
    def label(self) -> str:
        return str(self.first) if self.count == 1 else f"{self.first}..{self.last}"


#: the most one ledger row can hold: 10 TWh, far above any single trade, far below bigint's 9.2e18 Wh
MAX_MWH = 10_000_000


def mwh_to_wh(text: str | Decimal) -> int:
    """Exact MWh (up to 6 decimals) to whole Wh. Raises ValueError naming the value."""
    try:
        d = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number of MWh") from None
    if not d.is_finite() or d <= 0:
        raise ValueError(f"{text!r} MWh must be a positive number")
    if d > MAX_MWH:
        raise ValueError(f"{text!r} MWh is more than one entry can be (at most {MAX_MWH:,} MWh, 10 TWh); "
                         "check the unit (MWh, not kWh)")
    wh = d * WH_PER_CERTIFICATE
    if wh != wh.to_integral_value():
        raise ValueError(f"{text!r} MWh is finer than 1 Wh")
    return int(wh)


def parse_month(text: str) -> date:
    """``YYYY-MM`` (or a date in that month) to the month's first day."""
    t = text.strip()
    try:
        return date.fromisoformat(t + "-01" if len(t) == 7 else t).replace(day=1)
    except ValueError:
        raise ValueError(f"{text!r} is not a month YYYY-MM") from None


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD") from None


def check_certificate(e: CertificateEntry) -> None:
    problem = validity_problem(e.production_month, e.used_on)
    if problem:
        raise ValueError(f"certificate {e.label} rejected: {problem}")


def parse_csv(text: str, source: str = "ledger.csv") -> list[TradeEntry | CertificateEntry]:
    """Parse and check every row; raise :class:`LedgerError` naming the first bad row and field."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("kind", "enterprise", "date") if c not in (reader.fieldnames or [])]
    if missing:
        raise LedgerError(f"{source} line 1: missing column(s) {', '.join(missing)} (columns: {', '.join(COLUMNS)})")
    out: list[TradeEntry | CertificateEntry] = []
    for row in reader:
        line = reader.line_num
        row = {k: (v or "").strip() for k, v in row.items() if k}

        def need(name: str) -> str:
            if not row.get(name):
                raise LedgerError(f"{source} line {line}: field {name!r} is empty")
            return row[name]

        def field(name: str, parse):
            value = need(name)
            try:
                return parse(value)
            except ValueError as exc:
                raise LedgerError(f"{source} line {line}: field {name!r}: {exc}") from None

        kind = need("kind").lower()
        if kind == "trade":
            out.append(TradeEntry(need("enterprise"), need("reference"), field("date", parse_date), field("mwh", mwh_to_wh)))
        elif kind == "gec":
            try:
                first, last = serial_range(need("serial_first"), row.get("serial_last") or None)
            except ValueError as exc:
                raise LedgerError(f"{source} line {line}: field 'serial_first'/'serial_last': {exc}") from None
            e = CertificateEntry(need("enterprise"), first, last, field("production_month", parse_month),
                                 field("date", parse_date), row.get("trade") or None, row.get("reference") or None)
            try:
                check_certificate(e)
            except ValueError as exc:
                raise LedgerError(f"{source} line {line}: field 'date': {exc}") from None
            out.append(e)
        else:
            raise LedgerError(f"{source} line {line}: field 'kind': {row['kind']!r} is not 'trade' or 'gec'")
    return out


def _enterprise_id(conn: psycopg.Connection, code: str) -> int:
    row = conn.execute("SELECT enterprise_id FROM enterprise WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise ValueError(f"no enterprise {code!r}")
    return row[0]


def _insert(conn: psycopg.Connection, e: TradeEntry | CertificateEntry) -> None:
    eid = _enterprise_id(conn, e.enterprise)
    if isinstance(e, TradeEntry):
        try:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO green_trade (enterprise_id, reference, settled_on, settled_wh) VALUES (%s, %s, %s, %s)",
                    (eid, e.reference, e.settled_on, e.settled_wh))
        except errors.UniqueViolation:
            raise ValueError(f"trade {e.reference!r} is already in the ledger") from None
        return
    trade_id = None
    if e.trade:
        row = conn.execute("SELECT trade_id, enterprise_id, settled_wh FROM green_trade WHERE reference = %s",
                           (e.trade,)).fetchone()
        if row is None:
            raise ValueError(f"certificate {e.label}: trade {e.trade!r} is not in the ledger (add the trade first)")
        trade_id, trade_eid, settled_wh = row
        if trade_eid != eid:
            raise ValueError(f"certificate {e.label}: trade {e.trade!r} belongs to another enterprise")
        held = conn.execute("SELECT coalesce(sum(serial_last - serial_first + 1), 0) FROM certificate WHERE trade_id = %s",
                            (trade_id,)).fetchone()[0]
        if (held + e.count) * WH_PER_CERTIFICATE > settled_wh:
            raise ValueError(f"certificate {e.label}: trade {e.trade!r} settled {settled_wh / 1e6:g} MWh, "
                             f"fewer than the {held + e.count} certificates delivered with it")
    check_certificate(e)
    try:
        with conn.transaction():
            conn.execute(
                """INSERT INTO certificate (enterprise_id, serial_prefix, serial_first, serial_last, serial_digits,
                                            production_month, used_on, trade_id, reference)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (eid, e.first.prefix, e.first.number, e.last.number, e.first.digits, e.production_month,
                 e.used_on, trade_id, e.reference))
    except errors.ExclusionViolation:
        clash = conn.execute(
            """SELECT c.serial_prefix, c.serial_first, c.serial_last, c.serial_digits, en.code, c.used_on,
                      t.reference
               FROM certificate c JOIN enterprise en USING (enterprise_id) LEFT JOIN green_trade t USING (trade_id)
               WHERE c.serial_prefix = %s AND int8range(c.serial_first, c.serial_last, '[]') && int8range(%s, %s, '[]')
               LIMIT 1""", (e.first.prefix, e.first.number, e.last.number)).fetchone()
        used = ""
        if clash:
            p, a, b, d, code, on, tref = clash
            rng = f"{p}{a:0{d}d}" + ("" if a == b else f"..{p}{b:0{d}d}")
            used = f": {rng} already used by {code} on {on}" + (f" with trade {tref}" if tref else "")
        raise ValueError(f"certificate {e.label} rejected: a serial counts once, ever{used}") from None
    except errors.CheckViolation as exc:
        raise ValueError(f"certificate {e.label} rejected by the database: {exc.diag.constraint_name}") from None


def add_entries(conn: psycopg.Connection, entries: list[TradeEntry | CertificateEntry],
                labels: list[str] | None = None) -> int:
    """Write entries in one transaction (all or nothing); return how many were written.

    ``labels`` name each entry in an error (e.g. "ledger.csv line 4").
    """
    with conn.transaction():
        for i, e in enumerate(entries):
            try:
                _insert(conn, e)
            except ValueError as exc:
                where = labels[i] if labels else f"entry {i + 1}"
                raise LedgerError(f"{where}: {exc}") from None
    return len(entries)


def import_csv(conn: psycopg.Connection, path: Path) -> int:
    """Import a ledger CSV all-or-nothing; return the number of rows written."""
    from model.yamlfile import read_text

    text = read_text(path, LedgerError, encoding="utf-8-sig")
    entries = parse_csv(text, Path(path).name)
    lines = _data_lines(text)
    return add_entries(conn, entries, [f"{Path(path).name} line {n}" for n in lines])


def _data_lines(text: str) -> list[int]:
    reader = csv.DictReader(io.StringIO(text))
    return [reader.line_num for _ in reader]


#: an enterprise's trades and certificate blocks (parameter: its id), for :func:`ledger_from`
LEDGER_SQL = (
    "SELECT reference, settled_on, settled_wh FROM green_trade WHERE enterprise_id = %s ORDER BY settled_on, reference",
    """SELECT c.serial_prefix, c.serial_first, c.serial_last, c.serial_digits, c.production_month,
              c.used_on, t.reference, c.reference
       FROM certificate c LEFT JOIN green_trade t USING (trade_id)
       WHERE c.enterprise_id = %s ORDER BY c.used_on, c.serial_prefix, c.serial_first""")


def ledger_for(conn: psycopg.Connection, enterprise: str, enterprise_id: int | None = None
               ) -> tuple[list[Trade], list[CertificateBlock]]:
    """Every trade and certificate block of an enterprise (by code, or by id when the caller has
    it), as :mod:`metrics.ledger` values."""
    eid = enterprise_id if enterprise_id is not None else _enterprise_id(conn, enterprise)
    return ledger_from(*(conn.execute(q, (eid,)).fetchall() for q in LEDGER_SQL))


def ledger_from(trade_rows, cert_rows) -> tuple[list[Trade], list[CertificateBlock]]:
    """The rows of :data:`LEDGER_SQL`'s two queries as :mod:`metrics.ledger` values (a caller that
    sends several queries at once, store.bundle.load_enterprise_period, parses them afterwards)."""
    trades = [Trade(r, on, wh) for r, on, wh in trade_rows]
    certs = [CertificateBlock(Serial(p, a, d), Serial(p, b, d), pm, on, tref, ref)
             for p, a, b, d, pm, on, tref, ref in cert_rows]
    return trades, certs
