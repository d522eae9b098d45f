"""Interval energy and readings of one point as streamed CSV or XLSX, paged and bounded.

A page holds at most ``limit`` rows (at most the API's ``api_max_rows``) of [from, to), the range
at most :data:`MAX_RANGE`. When more rows follow, the ``Link`` header names the next page
(RFC 8288, ``rel="next"``): the same request with ``from`` set to the first row not sent.
CSV is streamed from a server-side cursor inside the request's transaction; XLSX is built with
openpyxl's write-only workbook (bounded by the same page size).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from psycopg import sql

from api.problems import ApiProblem, FieldError

MAX_RANGE = timedelta(days=366)

KINDS = {
    "intervals": {"table": "interval_energy", "ts": "bucket_start",
                  "columns": ("bucket_start", "energy_wh", "estimated", "suspect")},
    "readings": {"table": "reading", "ts": "ts", "columns": ("ts", "value", "quality")},
}


def check_range(start: datetime, end: datetime) -> None:
    errors = []
    if start.tzinfo is None:
        errors.append(FieldError(field="from", message="needs a UTC offset, e.g. 2025-06-21T00:00:00+08:00"))
    if end.tzinfo is None:
        errors.append(FieldError(field="to", message="needs a UTC offset, e.g. 2025-06-22T00:00:00+08:00"))
    if not errors and end <= start:
        errors.append(FieldError(field="to", message=f"{end.isoformat()} is not after from {start.isoformat()}"))
    if not errors and end - start > MAX_RANGE:
        errors.append(FieldError(field="to", message=f"the range is longer than {MAX_RANGE.days} days; page by range"))
    if errors:
        raise ApiProblem(422, "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)


def _query(kind: str, *, count_only: bool = False):
    k = KINDS[kind]
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in k["columns"])
    return sql.SQL("SELECT {cols} FROM reader.{table} WHERE point_id = %(pid)s AND {ts} >= %(start)s AND {ts} < %(end)s "
                   "ORDER BY {ts} LIMIT %(limit)s").format(cols=cols, table=sql.Identifier(k["table"]),
                                                          ts=sql.Identifier(k["ts"]))


def next_from(conn, kind: str, point_id: int, start: datetime, end: datetime, limit: int) -> datetime | None:
    """Time of the first row after this page, or None when the page is the last."""
    k = KINDS[kind]
    q = sql.SQL("SELECT {ts} FROM reader.{table} WHERE point_id = %s AND {ts} >= %s AND {ts} < %s "
                "ORDER BY {ts} OFFSET %s LIMIT 1").format(ts=sql.Identifier(k["ts"]), table=sql.Identifier(k["table"]))
    row = conn.execute(q, (point_id, start, end, limit)).fetchone()
    return row[0] if row else None


def _cell(v):
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat()
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else v


def stream_csv(conn, kind: str, point_id: int, start: datetime, end: datetime, limit: int,
               point_name: str) -> Iterator[bytes]:
    """Header row, then the rows, a chunk at a time from a server-side cursor."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("point",) + KINDS[kind]["columns"])
    yield buf.getvalue().encode()
    with conn.cursor(name=f"export_{kind}") as cur:
        cur.itersize = 5000
        cur.execute(_query(kind), {"pid": point_id, "start": start, "end": end, "limit": limit})
        while True:
            rows = cur.fetchmany(5000)
            if not rows:
                break
            buf.seek(0)
            buf.truncate()
            for r in rows:
                w.writerow((point_name,) + tuple(_cell(v) for v in r))
            yield buf.getvalue().encode()


def xlsx(conn, kind: str, point_id: int, start: datetime, end: datetime, limit: int, point_name: str) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(kind)
    ws.append(("point",) + KINDS[kind]["columns"])
    with conn.cursor(name=f"export_{kind}_xlsx") as cur:
        cur.execute(_query(kind), {"pid": point_id, "start": start, "end": end, "limit": limit})
        for r in cur:
            # Excel has no time zones: times are written as UTC ISO 8601 text, exact
            ws.append((point_name,) + tuple(_cell(v) if isinstance(v, datetime) else v for v in r))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
