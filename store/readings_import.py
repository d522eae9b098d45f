"""Import readings from other systems: a long-format CSV (point, ts, value[, unit]).

Uses the same writer as the collectors (:func:`store.ingest.write_readings`), so an import is
idempotent on (point, timestamp) and marks late data for the rollup; it is one transaction: every
row is checked first, and an error names the file line and the field; nothing is written unless
every row is good (docs/accounting.md "Importing history").

Checked: the header (``point,ts,value`` and optionally ``unit``; any other column is an error), the
unit (``--unit`` or a ``unit`` column, converted to the point's canonical unit), the points (one
enterprise per file, or the one named; an unknown point lists that enterprise's points only),
times (with a UTC offset, from 2000 on, at most a day ahead), values (finite; an energy counter
not negative and not beyond its wrap width — the one the rollup uses, from the site file or the
device profile — or 1 PWh; a file whose typical rate for a point is
above ten times its rating is refused as a wrong unit), and the same point and time twice with
different values (in the file: both lines named; against the database: the stored value named).
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import psycopg

from model.profile import counter_width_wh
from model.quantities import QUANTITIES, unit_factor
from model.readings import Quality, Reading
from model.yamlfile import read_text
from store.ingest import write_readings
from store.rollups import mark_dirty

COLUMNS = ("point", "ts", "value")
OPTIONAL_COLUMNS = ("unit",)
#: no reading is taken before this
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
#: how far ahead of now a reading's time may be (clocks a little fast, time zones typed wrong)
FUTURE_SLACK = timedelta(days=1)
#: no single meter's counter reaches a petawatt-hour [Wh]
MAX_COUNTER_WH = 1e15
#: a file's typical rate for a point above this many times its rating is a wrong unit
RATE_FACTOR = 10


class ImportError_(ValueError):
    """A row the import refuses; the message names the line and field."""


@dataclass(frozen=True)
class ImportPoint:
    """What the import checks a row against."""

    point_id: int
    enterprise: str
    quantity: str
    kind: str
    rated_power_w: float | None = None
    #: the counter's wrap width [Wh], the one the rollup uses (:func:`model.profile.counter_width_wh`:
    #: the site file's ``counter_rollover_wh``, else the device profile's register × scale × CT × PT)
    rollover_wh: float | None = None
    width_source: str = ""  #: where the width comes from, for the message (e.g. "device profile x")


_DURATION = re.compile(r"^\s*(\d+)\s*(s|min|m|h|d)\s*$")
_SECONDS = {"s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}


def parse_resolution(text: str) -> int:
    """``15min``, ``1h``, ``1d``, ``900s`` → seconds; ValueError saying the forms otherwise."""
    m = _DURATION.match(text or "")
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"resolution {text!r} is not a duration such as 15min, 1h, 1d or 900s")
    return int(m.group(1)) * _SECONDS[m.group(2)]


def _enterprise_points(points: dict[str, ImportPoint], enterprise: str) -> str:
    names = sorted(n for n, p in points.items() if p.enterprise == enterprise)
    more = f" and {len(names) - 12} more" if len(names) > 12 else ""
    return (", ".join(names[:12]) + more) if names else "none; run greengauge site apply"


def parse_readings(text: str, points: dict[str, ImportPoint] | dict[str, int], source: str = "readings.csv", *,
                   unit: str | None = None, enterprise: str | None = None,
                   now: datetime | None = None) -> list[Reading]:
    """Parse and check every row; raise :class:`ImportError_` naming the first bad line and field.

    ``points`` maps point names to :class:`ImportPoint` (a plain name → id map is taken as Wh
    counters of one enterprise, for callers that know no more). ``unit`` applies to rows without a
    ``unit`` column. ``enterprise``: the file's enterprise; without it, the enterprise of the
    file's first known point.
    """
    pts = {n: (p if isinstance(p, ImportPoint) else ImportPoint(p, "", "energy_import", "counter"))
           for n, p in points.items()}
    now = now or datetime.now(timezone.utc)
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in fields]
    if missing:
        raise ImportError_(f"{source} line 1: missing column(s) {', '.join(missing)} "
                           f"(header must be {','.join(COLUMNS)}, optionally unit)")
    unknown = [c for c in fields if c not in COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise ImportError_(f"{source} line 1: unknown column(s) {', '.join(repr(c) for c in unknown)} "
                           f"(the columns are {','.join(COLUMNS)} and optionally unit)")
    if len(set(fields)) != len(fields):
        raise ImportError_(f"{source} line 1: a column is named twice")
    if "unit" not in fields and unit is None:
        raise ImportError_(f"{source}: say the values' unit: --unit kWh (or Wh, MWh), or a unit column")
    reader.fieldnames = fields
    rows = list(reader)
    if enterprise is None:
        for row in rows:
            p = pts.get((row.get("point") or "").strip())
            if p is not None:
                enterprise = p.enterprise
                break
    out: list[Reading] = []
    seen: dict[tuple[int, datetime], tuple[int, float]] = {}
    lines: dict[int, list[tuple[int, datetime, float]]] = {}
    line = 1
    for row in rows:
        line += 1
        if None in row:  # more fields than the header
            raise ImportError_(f"{source} line {line}: more fields than the header's {len(fields)}")
        name = (row.get("point") or "").strip()
        p = pts.get(name)
        if p is None:
            if enterprise is None:
                raise ImportError_(f"{source} line {line}: field 'point': no point {name!r}, and no point of the "
                                   "file is known (name the enterprise with --enterprise to see its points, "
                                   "or run greengauge site apply)")
            raise ImportError_(f"{source} line {line}: field 'point': no point {name!r} in enterprise {enterprise!r} "
                               f"(its points: {_enterprise_points(pts, enterprise)})")
        if enterprise is not None and p.enterprise and p.enterprise != enterprise:
            raise ImportError_(f"{source} line {line}: field 'point': {name!r} belongs to enterprise "
                               f"{p.enterprise!r}, the file to {enterprise!r}: one enterprise per file")
        raw_ts = (row.get("ts") or "").strip()
        try:
            ts = datetime.fromisoformat(raw_ts)
        except ValueError:
            raise ImportError_(f"{source} line {line}: field 'ts': {raw_ts!r} is not an ISO-8601 time") from None
        if ts.tzinfo is None:
            raise ImportError_(f"{source} line {line}: field 'ts': {raw_ts!r} has no UTC offset "
                               "(write e.g. 2025-01-01T00:00:00+08:00)")
        if ts < EARLIEST or ts > now + FUTURE_SLACK:
            raise ImportError_(f"{source} line {line}: field 'ts': {raw_ts!r} is outside the sane range "
                               f"(from {EARLIEST.date()} to a day from now)")
        raw_v = (row.get("value") or "").strip()
        try:
            value = float(raw_v)
        except ValueError:
            raise ImportError_(f"{source} line {line}: field 'value': {raw_v!r} is not a number") from None
        if not math.isfinite(value):
            raise ImportError_(f"{source} line {line}: field 'value': {raw_v!r} is not a finite number")
        u = (row.get("unit") or "").strip() or unit
        if u is None:
            raise ImportError_(f"{source} line {line}: field 'unit': empty, and no --unit given")
        try:
            factor = unit_factor(u, p.quantity)
        except ValueError as exc:
            raise ImportError_(f"{source} line {line}: field 'unit': {exc}") from None
        value = float(Decimal(raw_v) * factor) if factor != 1 else value
        if not math.isfinite(value):
            raise ImportError_(f"{source} line {line}: field 'value': {raw_v} {u} is not a finite number of "
                               f"{QUANTITIES[p.quantity].unit}")
        if p.kind == "counter" and QUANTITIES[p.quantity].unit == "Wh":
            limit = min(MAX_COUNTER_WH, p.rollover_wh or MAX_COUNTER_WH)
            if value < 0 or value > limit:
                src = f" ({p.width_source})" if p.width_source else ""
                what = "negative" if value < 0 else (
                    f"beyond the counter's wrap width {p.rollover_wh:g} Wh{src}"
                    if p.rollover_wh and value > p.rollover_wh else "beyond what any meter counts (1 PWh)")
                raise ImportError_(f"{source} line {line}: field 'value': {raw_v} {u} = {value:g} Wh is {what} "
                                   f"for {name}: is the unit right?")
        key = (p.point_id, ts)
        if key in seen:
            first_line, first_value = seen[key]
            if first_value != value:
                raise ImportError_(f"{source} lines {first_line} and {line}: point {name!r} at {ts.isoformat()} "
                                   f"has two values ({first_value:g} and {value:g} "
                                   f"{QUANTITIES[p.quantity].unit}); keep one")
            continue
        seen[key] = (line, value)
        lines.setdefault(p.point_id, []).append((line, ts, value))
        out.append(Reading(p.point_id, ts, value, Quality.GOOD))
    by_id = {p.point_id: (n, p) for n, p in pts.items()}
    for pid, rows_ in lines.items():
        name, p = by_id[pid]
        _check_rate(source, name, p, sorted(rows_, key=lambda r: r[1]))
    return out


def _check_rate(source: str, name: str, p: ImportPoint, rows: list[tuple[int, datetime, float]]) -> None:
    """Refuse a file whose typical rate for an energy counter is far above the point's rating: the
    unit is wrong (e.g. Wh values declared MWh). One glitch does not decide it: the median does."""
    if p.rated_power_w is None or p.kind != "counter" or QUANTITIES[p.quantity].unit != "Wh" or len(rows) < 3:
        return
    rates = []
    for (_, t0, v0), (_, t1, v1) in zip(rows, rows[1:]):
        if v1 >= v0:
            rates.append((v1 - v0) * 3600 / (t1 - t0).total_seconds())
    if len(rates) < 2:
        return
    typical = statistics.median(rates)
    if typical > RATE_FACTOR * p.rated_power_w:
        first = next(ln for (ln, t0, v0), (_, t1, v1) in zip(rows, rows[1:])
                     if v1 >= v0 and (v1 - v0) * 3600 / (t1 - t0).total_seconds() > RATE_FACTOR * p.rated_power_w)
        raise ImportError_(f"{source} line {first}: field 'value': {name}'s readings rise at a typical "
                           f"{typical:,.0f} W, more than {RATE_FACTOR}× its rating of {p.rated_power_w:,.0f} W: "
                           "is the unit right?")


def import_points(conn: psycopg.Connection) -> dict[str, ImportPoint]:
    """Every point with what a row is checked against; a counter's wrap width is the one the rollup
    uses (:func:`model.profile.counter_width_wh`, as ``accounting.site_energy.point_rollover``)."""
    rows = conn.execute(
        """SELECT p.name, p.point_id, e.code, p.quantity, p.kind, p.rated_power_w, p.counter_rollover_wh,
                  d.profile, d.ct_ratio, d.pt_ratio
           FROM point p JOIN device d USING (device_id) JOIN site s USING (site_id)
           JOIN enterprise e USING (enterprise_id)""").fetchall()
    out = {}
    for name, pid, ent, quantity, kind, rated, own, profile, ct, pt in rows:
        width = counter_width_wh(profile, quantity, own, ct, pt) if kind == "counter" else None
        if own is not None:
            source = "the site file's counter_rollover_wh"
        elif width is not None:
            source = f"device profile {profile}'s register"
        else:
            source = ""
        out[name] = ImportPoint(pid, ent, quantity, kind, rated, width, source)
    return out


def _stored_conflicts(conn: psycopg.Connection, readings: list[Reading], source: str,
                      names: dict[int, str]) -> None:
    """A row whose point and time is already stored with another value is an error (an import
    never silently keeps one of two values)."""
    if not readings:
        return
    row = conn.execute(
        """SELECT f.point_id, f.ts, f.value, r.value, f.ord
           FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[]) WITH ORDINALITY AS f(point_id, ts, value, ord)
           JOIN reading r ON r.point_id = f.point_id AND r.ts = f.ts
           WHERE r.value IS DISTINCT FROM f.value ORDER BY f.ord LIMIT 1""",
        ([r.point_id for r in readings], [r.ts for r in readings], [r.value for r in readings])).fetchone()
    if row is not None:
        pid, ts, new, old, _ = row
        raise ImportError_(f"{source}: point {names[pid]!r} at {ts.isoformat()} is already stored as {old:g}, the file "
                           f"says {new:g}: the stored reading stays; remove or correct the row")


class Imported(NamedTuple):
    rows: int  #: data rows in the file
    new: int  #: readings new in the database
    repeated: int  #: rows repeating an earlier row of the file exactly (point, time and value)


def import_readings(conn: psycopg.Connection, path: Path, *, unit: str | None = None,
                    enterprise: str | None = None, resolution_s: int | None = None) -> Imported:
    """Import a readings CSV all-or-nothing; return the rows in the file, the readings new in the
    database and the rows that repeat an earlier one exactly (the rest were already stored).

    ``resolution_s``: the interval the file's readings were taken at (e.g. 3600 for hourly
    history); readings no further apart are measured time, not estimated (kept per point for the
    file's time range in ``reading_resolution``).
    """
    path = Path(path)
    # missing, a directory, not UTF-8: one line naming the file and what to do (a BOM is allowed: Excel)
    text = read_text(path, ImportError_, encoding="utf-8-sig")
    points = import_points(conn)
    if enterprise is not None and not any(p.enterprise == enterprise for p in points.values()):
        known = sorted({p.enterprise for p in points.values()})
        raise ImportError_(f"no enterprise {enterprise!r} (known: {', '.join(known) or 'none'})")
    readings = parse_readings(text, points, path.name, unit=unit, enterprise=enterprise)
    names = {p.point_id: n for n, p in points.items()}
    with conn.transaction():
        _stored_conflicts(conn, readings, path.name, names)
        new = write_readings(conn, readings)
        if resolution_s is not None:
            spans: dict[int, list[datetime]] = {}
            for r in readings:
                s = spans.setdefault(r.point_id, [r.ts, r.ts])
                s[0], s[1] = min(s[0], r.ts), max(s[1], r.ts)
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO reading_resolution (point_id, since, until, interval_s, source)
                       SELECT %(p)s, %(a)s, %(b)s, %(i)s, %(src)s WHERE NOT EXISTS (
                           SELECT 1 FROM reading_resolution WHERE point_id = %(p)s AND since = %(a)s
                           AND until = %(b)s AND interval_s = %(i)s)""",
                    [{"p": pid, "a": a, "b": b, "i": resolution_s, "src": path.name} for pid, (a, b) in spans.items()])
            # the stated resolution changes which intervals are measured: recompute them
            for pid, (a, _b) in spans.items():
                mark_dirty(conn, pid, a)
    rows = sum(1 for row in csv.reader(io.StringIO(text)) if row) - 1  # (blank lines are no rows, as for DictReader)
    return Imported(rows, new, rows - len(readings))
