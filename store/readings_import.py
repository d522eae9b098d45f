"""Import readings from other systems: a long-format CSV (point, timestamp, value).

Uses the same writer as the collectors (:func:`store.ingest.write_readings`), so an import is
idempotent on (point, timestamp) and one transaction: every row is checked first, and an error
names the file line and the field; nothing is written unless every row is good.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from pathlib import Path

import psycopg

from model.readings import Quality, Reading
from store.ingest import write_readings

COLUMNS = ("point", "ts", "value")


class ImportError_(ValueError):
    """A row the import refuses; the message names the line and field."""


def parse_readings(text: str, point_ids: dict[str, int], source: str = "readings.csv") -> list[Reading]:
    """Parse every row; raise :class:`ImportError_` naming the first bad line and field."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportError_(f"{source} line 1: missing column(s) {', '.join(missing)} "
                           f"(header must be {','.join(COLUMNS)})")
    out: list[Reading] = []
    for row in reader:
        line = reader.line_num
        name = (row.get("point") or "").strip()
        if name not in point_ids:
            known = ", ".join(sorted(point_ids)[:8]) or "none; run greengauge site apply"
            raise ImportError_(f"{source} line {line}: field 'point': no point {name!r} (known: {known})")
        raw_ts = (row.get("ts") or "").strip()
        try:
            ts = datetime.fromisoformat(raw_ts)
        except ValueError:
            raise ImportError_(f"{source} line {line}: field 'ts': {raw_ts!r} is not an ISO-8601 time") from None
        if ts.tzinfo is None:
            raise ImportError_(f"{source} line {line}: field 'ts': {raw_ts!r} has no UTC offset "
                               "(write e.g. 2025-01-01T00:00:00+08:00)")
        raw_v = (row.get("value") or "").strip()
        try:
            value = float(raw_v)
        except ValueError:
            raise ImportError_(f"{source} line {line}: field 'value': {raw_v!r} is not a number") from None
        if not math.isfinite(value):
            raise ImportError_(f"{source} line {line}: field 'value': {raw_v!r} is not a finite number")
        out.append(Reading(point_ids[name], ts, value, Quality.GOOD))
    return out


def import_readings(conn: psycopg.Connection, path: Path) -> tuple[int, int]:
    """Import a readings CSV all-or-nothing; return (rows in the file, rows new in the database)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    ids = dict(conn.execute("SELECT name, point_id FROM point").fetchall())
    readings = parse_readings(text, ids, path.name)
    return len(readings), write_readings(conn, readings)
