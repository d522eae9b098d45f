"""One loader per enterprise and period: everything a figure needs, read once.

:func:`load_enterprise_period` reads the time zone, the points with their roles and settings, the
meter replacements, the PV projects with their links and SunSpec nameplates, the certificate
ledger, the facts, the production rows and reference values, and the stored interval energy
(``interval_energy``, with its estimated/suspect flags) with the rollup's counter findings, into
one :class:`metrics.bundle.EnterprisePeriod`. Flows and reports compute every figure from it with
the pure functions of :mod:`metrics.figures` and :mod:`metrics.policy`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg

from model.profile import counter_width_wh

import numpy as np

from metrics.bundle import EnterprisePeriod, Point, PointFinding, PointSeries
from metrics.counters import CounterFinding
from metrics.intervals import INTERVAL_S, floor_interval
from store.events import REPLACEMENTS_SQL, RESOLUTIONS_SQL, replacements_from, resolutions_from
from store.facts import enterprise_facts
from store.ledger import LEDGER_SQL, ledger_from
from store.projects import NAMEPLATE_SQL, NameplateReading, project_records

#: days before a commissioning date the R3 "produced after commissioning" check reads
#: (metrics.policy.pv_storage); the loader reads that far back for projects commissioned in the period
PRE_COMMISSIONING_DAYS = 7
NAMEPLATE_QUANTITIES = ("capacity_w", "storage_capacity_wh")


def policy_read_start(projects, start: datetime, end: datetime, tz: str) -> datetime:
    """Where the policy figures of [start, end) start reading intervals: ``start``, or
    :data:`PRE_COMMISSIONING_DAYS` before the commissioning day of a project commissioned in the
    period's years (R3's "produced after commissioning" check). The loader and the eligibility
    fingerprint use it alike, so the fingerprint covers what the decision reads."""
    zone = ZoneInfo(tz)
    first, last = start.astimezone(zone).date().year, end.astimezone(zone).date().year
    out = start
    for rec in projects:
        if first <= rec.commissioned.year <= last:
            lo = datetime.combine(rec.commissioned, datetime.min.time(), zone) - timedelta(days=PRE_COMMISSIONING_DAYS)
            out = min(out, floor_interval(lo))
    return out


def nameplate_digest_rows(conn: psycopg.Connection, projects) -> list:
    """The latest SunSpec nameplate reading of every device of ``projects`` (the enterprise's
    :func:`store.projects.project_records`: what R3 reads when the site file states no nameplate),
    for the eligibility fingerprint."""
    return nameplate_digest_rows_of(conn, {None: projects})[None]


def nameplate_digest_rows_of(conn: psycopg.Connection, projects: dict) -> dict:
    """:func:`nameplate_digest_rows` of each key's projects (a key per enterprise), in one round trip."""
    mine = {k: {d for rec in recs for part in rec.devices.values() for d, _ in part} for k, recs in projects.items()}
    devices = sorted(set().union(*mine.values())) if mine else []
    if not devices:
        return {k: [] for k in projects}
    with conn.pipeline():
        got = [(q, conn.execute(NAMEPLATE_SQL, (devices, q, None, None))) for q in NAMEPLATE_QUANTITIES]
    rows = [(q, r) for q, cur in got for r in cur.fetchall()]
    return {k: [(q, *r[1:]) for q, r in rows if r[0] in mine[k]] for k in projects}


#: an enterprise's points with their devices' settings (parameter: its code), for :func:`points_from`
POINTS_SQL = """SELECT e.enterprise_id, e.timezone, p.point_id, p.name, d.name, p.quantity, p.role, p.subproject,
                       p.rated_power_w, d.profile, p.counter_rollover_wh, d.poll_interval_s, d.ct_ratio, d.pt_ratio
                FROM enterprise e LEFT JOIN (point p JOIN device d USING (device_id) JOIN site s USING (site_id))
                     ON s.enterprise_id = e.enterprise_id
                WHERE e.code = %s ORDER BY p.point_id"""


def load_points(conn: psycopg.Connection, enterprise: str) -> tuple[int, str, tuple[Point, ...]]:
    """(enterprise id, time zone, points) of an enterprise; LookupError naming the known ones."""
    return points_from(conn, enterprise, conn.execute(POINTS_SQL, (enterprise,)).fetchall())


def points_from(conn: psycopg.Connection, enterprise: str, rows) -> tuple[int, str, tuple[Point, ...]]:
    """:data:`POINTS_SQL`'s rows as :func:`load_points` returns them."""
    if not rows:
        known = [r[0] for r in conn.execute("SELECT code FROM enterprise ORDER BY code")]
        raise LookupError(f"no enterprise {enterprise!r} (known: {', '.join(known) or 'none; run greengauge site apply'})")
    eid, tz = rows[0][:2]
    points = tuple(Point(pid, name, dev, q, role, sub, rated, counter_width_wh(profile, q, own, ct, pt), poll)
                   for _, _, pid, name, dev, q, role, sub, rated, profile, own, poll, ct, pt in rows if pid is not None)
    return eid, tz, points


_PG_EPOCH_S = 946_684_800  #: 2000-01-01 UTC in Unix seconds


def read_columns(conn: psycopg.Connection, ids: list[int], start: datetime, end: datetime
                 ) -> tuple[dict[int, PointSeries], datetime | None]:
    """The stored intervals of ``ids`` starting in [start, end), per point as columns, and the
    newest ``computed_at`` among them.

    Each column of a point comes packed in one ``bytea``: ``string_agg`` of the values' binary
    forms (``timestamptz_send``: int64 microseconds since 2000-01-01 UTC; ``int8send`` of
    ``energy_wh × 4 + estimated × 2 + suspect``; big-endian), which numpy reads as it is — a year
    of an enterprise's quarter hours is a few MB, and no Python object is made per interval. The
    aggregates of a group take its rows in one order, so the columns line up; that order is
    checked and the columns sorted by start when the scan gave another. Every column is NOT NULL
    (migration 0401); an energy of 2**61 Wh or more would not fit the packing (the query fails,
    nothing is misread)."""
    with conn.cursor(binary=True) as cur:
        cur.execute(COLUMNS_SQL, (ids, start, end))
        return columns_from(ids, cur.fetchall())


#: the packed columns of :func:`read_columns` (parameters: point ids, start, end; a binary cursor)
COLUMNS_SQL = """SELECT point_id::int8, string_agg(timestamptz_send(bucket_start), ''::bytea),
                        string_agg(int8send(energy_wh * 4 + (estimated::int * 2 + suspect::int)), ''::bytea),
                        string_agg(timestamptz_send(computed_at), ''::bytea)
                 FROM (SELECT * FROM interval_energy WHERE point_id = ANY(%s) AND bucket_start >= %s
                       AND bucket_start < %s ORDER BY point_id, bucket_start) i
                 GROUP BY point_id"""


def columns_from(ids: list[int], rows) -> tuple[dict[int, PointSeries], datetime | None]:
    """:data:`COLUMNS_SQL`'s rows as :func:`read_columns` returns them."""
    out = {pid: PointSeries.empty() for pid in ids}
    newest = None
    for pid, ts, packed, changed in rows:
        t = (np.frombuffer(ts, ">i8") // 1_000_000 + _PG_EPOCH_S).astype(np.int64)
        v = np.frombuffer(packed, ">i8").astype(np.int64)
        at = np.frombuffer(changed, ">i8").astype(np.int64)
        col = PointSeries(t, v >> 2, (v & 2).astype(bool), (v & 1).astype(bool), at)
        if len(t) > 1 and not (np.diff(t) > 0).all():
            k = np.argsort(t, kind="stable")
            col = PointSeries(t[k], col.wh[k], col.est[k], col.sus[k], at[k])
        out[pid] = col
        top = pg_time(int(at.max()))
        newest = top if newest is None or top > newest else newest
    return out, newest


def day_sources(bundle: EnterprisePeriod, point_ids: list[int], days: list[date]) -> dict[date, datetime | None]:
    """The newest ``computed_at`` of the intervals of ``point_ids`` in each local day of ``days``
    (None for a day without one): what a daily balance was built from."""
    from metrics.periods import local_hour_numbers

    want = {(d - date(1970, 1, 1)).days: d for d in days}
    best: dict[int, int] = {}
    for pid in point_ids:
        col = bundle.columns.get(pid)
        if col is None or not len(col) or col.at is None:
            continue
        day = local_hour_numbers(col.t, bundle.timezone) // 24
        order = np.argsort(day, kind="stable")
        uniq, first = np.unique(day[order], return_index=True)
        tops = np.maximum.reduceat(col.at[order], first)
        for k, v in zip(uniq.tolist(), tops.tolist()):
            if k in want and v > best.get(k, -2**63):
                best[k] = v
    return {d: (pg_time(best[k]) if k in best else None) for k, d in want.items()}


def pg_time(us: int) -> datetime:
    """A timestamptz's binary value (microseconds since 2000-01-01 UTC) as a time."""
    return datetime(2000, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)


def load_enterprise_period(conn: psycopg.Connection, enterprise: str, start: datetime, end: datetime, *,
                           with_policy: bool = True, findings_from: datetime | None = None,
                           expect: tuple[int, list[int]] | None = None) -> EnterprisePeriod:
    """Everything stored for ``enterprise`` and the intervals starting in [start, end).

    With ``with_policy`` (default) also the projects, nameplates, facts and production the policy
    engine needs; for a project commissioned in the period the intervals are read from
    :data:`PRE_COMMISSIONING_DAYS` before its commissioning day (R3's check).

    ``expect``: (enterprise id, point ids in order) as the caller read them a moment ago (the flows'
    :func:`store.results.pass_start`); without the policy inputs, everything is then read in one
    round trip — and again in two should the points read differ (one was added in between).

    Raises
    ------
    LookupError for an unknown enterprise.
    """
    start, end = floor_interval(start), floor_interval(end)
    if expect is not None and not with_policy:
        got = _load_rest(conn, enterprise, start, end, findings_from, *expect)
        if got is not None:
            return got
    eid, tz, points = load_points(conn, enterprise)
    zone = ZoneInfo(tz)
    projects: tuple = ()
    nameplates: dict = {}
    facts: tuple = ()
    products: tuple = ()
    references: dict = {}
    read_from = start
    if with_policy:
        projects = tuple(project_records(conn, enterprise))
        first_day, last_day = start.astimezone(zone).date(), end.astimezone(zone).date()
        read_from = policy_read_start(projects, start, end, tz)
        devices = sorted({d for rec in projects for part in rec.devices.values() for d, _ in part})
        for q in NAMEPLATE_QUANTITIES:
            if devices:
                # by device id, as the eligibility fingerprint reads them (nameplate_digest_rows_of):
                # two sites' devices may share a name
                by_dev: dict[int, list] = {}
                for r in conn.execute(NAMEPLATE_SQL, (devices, q, None, None)):
                    by_dev.setdefault(r[0], []).append(NameplateReading(*r[1:]))
                for d in devices:
                    nameplates[(d, q)] = tuple(by_dev.get(d, ()))
        facts = enterprise_facts(conn, enterprise)
        got = production_rows(conn, [eid], first_day.year, last_day.year)
        products, references = got.get(eid, ((), {}))
    return _load_rest(conn, enterprise, read_from, end, findings_from, eid, [p.point_id for p in points],
                      (tz, points), (tuple(facts), projects, nameplates, products, references))


def _load_rest(conn: psycopg.Connection, enterprise: str, read_from: datetime, end: datetime,
               findings_from: datetime | None, eid: int, ids: list[int], known: tuple | None = None,
               policy: tuple = ((), (), {}, (), {})) -> EnterprisePeriod | None:
    """The intervals, findings, rollup watermarks, ledger and replacements of points ``ids`` of
    enterprise ``eid`` in one round trip: every query sent (a pipeline), then every result read.
    Without ``known`` (time zone, points) the points are read in the same round trip, and None is
    returned when they are not ``ids`` of ``eid``."""
    with conn.pipeline():
        listed = conn.execute(POINTS_SQL, (enterprise,)) if known is None else None
        cols = conn.cursor(binary=True).execute(COLUMNS_SQL, (ids, read_from, end))
        found = conn.execute(
            """SELECT point_id, opened_at, kind, data->>'text' FROM finding
               WHERE origin = 'rollup' AND point_id = ANY(%s) AND opened_at >= %s AND opened_at <= %s
               ORDER BY opened_at, point_id, kind""", (ids, min(read_from, findings_from or read_from), end))
        marked = conn.execute("SELECT min(last_reading_ts) FROM rollup_watermark WHERE point_id = ANY(%s)", (ids,))
        ledger = [conn.execute(q, (eid,)) for q in LEDGER_SQL]
        replaced = conn.execute(REPLACEMENTS_SQL, (ids,))
        stated = conn.execute(RESOLUTIONS_SQL, (ids,))
    if known is None:
        rows = listed.fetchall()
        if not rows or rows[0][0] != eid or [r[2] for r in rows if r[2] is not None] != ids:
            return None
        known = points_from(conn, enterprise, rows)[1:]
    tz, points = known
    columns, computed_at = columns_from(ids, cols.fetchall())
    findings = tuple(PointFinding(pid, CounterFinding(kind, ts, detail)) for pid, ts, kind, detail in found.fetchall())
    marks = marked.fetchone()[0]
    trades, certs = ledger_from(*(c.fetchall() for c in ledger))
    events = replacements_from(ids, replaced.fetchall())
    joined = resolutions_from(ids, stated.fetchall())
    facts, projects, nameplates, products, references = policy
    return EnterprisePeriod(
        enterprise, eid, tz, read_from, end, points, columns, findings,
        {pid: tuple(v) for pid, v in events.items() if v}, tuple(trades), tuple(certs), facts, projects,
        nameplates, products, references, computed_at, marks,
        resolutions={pid: tuple(v) for pid, v in joined.items() if v})


_PRODUCTION_FIELDS = ("product", "start", "end", "quantity", "unit", "output_value_yuan")


def production_rows(conn: psycopg.Connection, enterprise_ids: list[int], first_year: int, last_year: int
                    ) -> dict[int, tuple[tuple[dict, ...], dict]]:
    """Per enterprise id: its production rows overlapping the years ``first_year``..``last_year``
    (in product and period order) and the reference values of those products."""
    from metrics.intensity import ReferenceValues

    rows: dict[int, list[dict]] = {}
    for eid, *r in conn.execute(
            """SELECT p.enterprise_id, p.product, p.period_start, p.period_end, p.quantity, p.unit, p.output_value_yuan
               FROM production p WHERE p.enterprise_id = ANY(%s) AND p.period_start <= %s AND p.period_end >= %s
               ORDER BY p.enterprise_id, p.product, p.period_start""",
            (enterprise_ids, date(last_year, 12, 31), date(first_year, 1, 1))):
        rows.setdefault(eid, []).append(dict(zip(_PRODUCTION_FIELDS, r)))
    names = sorted({r["product"] for rs in rows.values() for r in rs})
    refs = {}
    if names:
        refs = {p: ReferenceValues(*v) for p, *v in conn.execute(
            """SELECT product, unit, limit_kgce, access_kgce, advanced_kgce, industry_average_kgce, standard
               FROM product_reference WHERE product = ANY(%s)""", (names,))}
    return {eid: (tuple(rs), {r["product"]: refs[r["product"]] for r in rs if r["product"] in refs})
            for eid, rs in rows.items()}


def load_production_bundles(conn: psycopg.Connection, enterprises: list[str], year: int
                            ) -> dict[str, tuple[EnterprisePeriod, datetime | None]]:
    """For each enterprise code: a bundle without intervals holding its time zone, the production
    rows overlapping its local ``year`` and their reference values (what the industry's intensity
    ranking reads besides energy), and the end of its last stored interval in that year over every
    point (read newest first on the (point_id, bucket_start) key) — for a whole industry in three
    queries."""
    heads = conn.execute(
        """SELECT e.code, e.enterprise_id, e.timezone,
                  (SELECT max(b.bucket_start) FROM point p JOIN device d USING (device_id) JOIN site s USING (site_id)
                   CROSS JOIN LATERAL (
                       SELECT bucket_start FROM interval_energy i WHERE i.point_id = p.point_id
                         AND i.bucket_start >= make_timestamptz(%(y)s, 1, 1, 0, 0, 0, e.timezone)
                         AND i.bucket_start < make_timestamptz(%(y)s + 1, 1, 1, 0, 0, 0, e.timezone)
                       ORDER BY i.bucket_start DESC LIMIT 1) b
                   WHERE s.enterprise_id = e.enterprise_id)
           FROM enterprise e WHERE e.code = ANY(%(codes)s)""", {"y": year, "codes": enterprises}).fetchall()
    got = production_rows(conn, [h[1] for h in heads], year, year)
    from metrics.periods import local_bounds

    out = {}
    for code, eid, tz, last in heads:
        ystart, _ = local_bounds("year", date(year, 1, 1), tz)
        products, references = got.get(eid, ((), {}))
        out[code] = (EnterprisePeriod(code, eid, tz, ystart, ystart, (), {}, products=products, references=references),
                     None if last is None else last + timedelta(seconds=INTERVAL_S))
    return out


def load_enterprise_year(conn: psycopg.Connection, enterprise: str, year: int, *, until: datetime | None = None,
                         with_policy: bool = True) -> EnterprisePeriod:
    """:func:`load_enterprise_period` for a local calendar year (up to ``until`` when given)."""
    from metrics.periods import local_bounds

    tz = conn.execute("SELECT timezone FROM enterprise WHERE code = %s", (enterprise,)).fetchone()
    if tz is None:
        load_points(conn, enterprise)  # raises the LookupError with the known codes
    start, end = local_bounds("year", date(year, 1, 1), tz[0])
    if until is not None:
        end = max(start, min(end, until))
    return load_enterprise_period(conn, enterprise, start, end, with_policy=with_policy)


def save_prefix(conn: psycopg.Connection, enterprise_id: int, year: int, through: datetime, state: dict | None,
                *, input_stamp: int | None = None, versions: str | None = None) -> None:
    """Keep (or, with ``state`` None, drop) the metrics flow's carried year-to-date parts, with the
    enterprise's input stamp and the code and data versions they were computed at."""
    if state is None:
        conn.execute("DELETE FROM metrics_prefix WHERE enterprise_id = %s AND year = %s", (enterprise_id, year))
        return
    from psycopg.types.json import Jsonb

    conn.execute("""INSERT INTO metrics_prefix (enterprise_id, year, through, state, input_stamp, versions)
                    VALUES (%s, %s, %s, %s, %s, %s)
                    ON CONFLICT (enterprise_id, year) DO UPDATE SET through = EXCLUDED.through,
                        state = EXCLUDED.state, input_stamp = EXCLUDED.input_stamp, versions = EXCLUDED.versions,
                        computed_at = now()""",
                 (enterprise_id, year, through, Jsonb(state), input_stamp, versions))
