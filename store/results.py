"""Result tables the flows write and dashboards/API read: daily balance, year-to-date green share,
projection and gap, year-to-date carbon and standard coal, and versioned eligibility decisions.

Writers take a connection and run inside the caller's transaction, so a flow writes all of an
enterprise's results or none.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from metrics.balance import BalanceTotals
from store.db import no_jit


@dataclass(frozen=True)
class Enterprise:
    enterprise_id: int
    code: str
    timezone: str


def enterprises(conn: psycopg.Connection, code: str | None = None) -> list[Enterprise]:
    rows = conn.execute(
        "SELECT enterprise_id, code, timezone FROM enterprise WHERE %(c)s::text IS NULL OR code = %(c)s ORDER BY code",
        {"c": code},
    ).fetchall()
    if code is not None and not rows:
        known = [r[0] for r in conn.execute("SELECT code FROM enterprise ORDER BY code")]
        raise LookupError(f"no enterprise {code!r} (known: {', '.join(known) or 'none'})")
    return [Enterprise(*r) for r in rows]


def lock(conn: psycopg.Connection, what: str) -> None:
    """Serialise writers of one kind of result (held until the transaction ends)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (what,))


# -- daily balance --------------------------------------------------------------------------------

def dirty_days(conn: psycopg.Connection, e: Enterprise, point_ids: list[int], since: datetime) -> list[date]:
    """Local days from ``since`` whose intervals changed after their daily balance was computed
    (or that have none yet). Compares with the newest interval ``computed_at`` the balance was
    built from, so a rollup committing during a metrics run is caught on the next run."""
    rows = conn.execute(
        """SELECT d.day FROM (
               SELECT (date_trunc('day', bucket_start, %(tz)s) AT TIME ZONE %(tz)s)::date AS day,
                      max(computed_at) AS changed
               FROM interval_energy WHERE point_id = ANY(%(ids)s) AND bucket_start >= %(since)s
               GROUP BY 1) d
           LEFT JOIN daily_balance b ON b.enterprise_id = %(e)s AND b.day = d.day
           WHERE b.day IS NULL OR b.source_changed_at IS DISTINCT FROM d.changed
           ORDER BY d.day""",
        {"tz": e.timezone, "ids": point_ids, "since": since, "e": e.enterprise_id},
    ).fetchall()
    return [r[0] for r in rows]


#: the points of an enterprise, for SQL that filters on ``s.enterprise_id``
ENTERPRISE_POINTS = "point p JOIN device d USING (device_id) JOIN site s USING (site_id)"


def point_ids(enterprise: str) -> str:
    """SQL for the array of an enterprise's point ids in order (``'{}'`` when it has none), the
    enterprise given as an SQL expression (a column, a parameter)."""
    return f"ARRAY(SELECT p.point_id FROM {ENTERPRISE_POINTS} WHERE s.enterprise_id = {enterprise} ORDER BY p.point_id)"


#: a rollup transaction that began (its ``computed_at``) just before the metrics flow took the
#: rollup lock, but queued for the lock after it, carries a slightly older ``computed_at``
WATERMARK_MARGIN_S = 5


#: the flows that keep a watermark of the intervals they have taken in, and its table
WATERMARKS = {"metrics": "metrics_watermark", "eligibility": "eligibility_watermark"}


@dataclass
class PassStart:
    """What one enterprise's flow pass reads before anything else (:func:`pass_start`)."""

    ids: list[int]  #: every point of the enterprise
    stamp: int | None  #: its input stamp (migration 0840), read before any bundle of the pass
    #: the years the metrics flow keeps carried parts of: year -> (through, input stamp, versions)
    stored: dict[int, tuple[datetime, int | None, str | None]]
    prefixes: dict[int, dict]  #: the carried parts (``metrics_prefix.state``) of the years asked for
    days: list[date]  #: local days (any year) holding intervals changed since the flow's watermark
    newest: datetime | None  #: the flow's next watermark


def pass_start(conn: psycopg.Connection, ents: list[Enterprise], flow: str = "metrics", *,
               prefix_years: tuple[int, ...] = ()) -> dict[int, PassStart]:
    """The start of a flow's pass over enterprises ``ents``, per enterprise id, in one round trip
    (a pipeline of one transaction) however many they are: :func:`enterprise_state` of each (the
    carried parts of ``prefix_years``), the local days (of any year) holding intervals of any of its
    points changed since its watermark of ``flow`` (metrics or eligibility), and the next watermark.
    An enterprise without a watermark (its first pass) gets every day with intervals (a round trip
    of its own). Changed intervals are found on the (point_id, computed_at) index: an hourly run
    reads only what changed.

    The next watermark is the time just before the rollup lock is taken in shared mode: every
    rollup that began earlier has committed by then and is seen by the next statements (READ
    COMMITTED: each statement its own snapshot, taken after the lock); every later one stamps its
    intervals later (``computed_at`` is its transaction's start)."""
    if not ents:
        return {}
    params = {"e": [e.enterprise_id for e in ents], "years": list(prefix_years),
              "margin": timedelta(seconds=WATERMARK_MARGIN_S)}
    with conn.pipeline(), conn.transaction():
        no_jit(conn)
        head = conn.execute("SELECT clock_timestamp(), pg_advisory_xact_lock_shared(hashtext('greengauge.flows.rollup'))")
        state = conn.execute(
            f"""SELECT x.id, {point_ids('x.id')},
                       (SELECT stamp FROM enterprise_input WHERE enterprise_id = x.id),
                       (SELECT json_agg(json_build_array(year, through, input_stamp, versions))
                        FROM metrics_prefix WHERE enterprise_id = x.id),
                       (SELECT json_object_agg(year, state) FROM metrics_prefix
                        WHERE enterprise_id = x.id AND year = ANY(%(years)s::int[]) AND state IS NOT NULL),
                       (SELECT seen_through FROM {WATERMARKS[flow]} WHERE enterprise_id = x.id)
                FROM unnest(%(e)s::bigint[]) x(id)""", params)
        changed = conn.execute(
            f"""SELECT DISTINCT x.id, (date_trunc('day', i.bucket_start, e.timezone) AT TIME ZONE e.timezone)::date
                FROM unnest(%(e)s::bigint[]) x(id) JOIN enterprise e ON e.enterprise_id = x.id
                JOIN {WATERMARKS[flow]} w ON w.enterprise_id = x.id
                JOIN LATERAL (SELECT p.point_id FROM {ENTERPRISE_POINTS} WHERE s.enterprise_id = x.id) p ON true
                JOIN interval_energy i ON i.point_id = p.point_id AND i.computed_at > w.seen_through - %(margin)s
                ORDER BY 1, 2""", params)
    # the shared lock went with the transaction
    now, _ = head.fetchone()
    days: dict[int, list[date]] = {}
    for eid, day in changed.fetchall():
        days.setdefault(eid, []).append(day)
    out = {}
    for eid, ids, stamp, years, prefixes, seen in state.fetchall():
        out[eid] = PassStart(list(ids), stamp, {y: (datetime.fromisoformat(t), st, v) for y, t, st, v in years or []},
                             {int(y): v for y, v in (prefixes or {}).items()}, days.get(eid, []), now)
        if seen is None:  # no watermark (a first pass): every day with intervals, read under the lock as well
            with conn.transaction():
                first, _ = conn.execute("SELECT clock_timestamp(), "
                                        "pg_advisory_xact_lock_shared(hashtext('greengauge.flows.rollup'))").fetchone()
                tz = next(e.timezone for e in ents if e.enterprise_id == eid)
                out[eid].days = [r[0] for r in days_with_intervals(conn, tz, list(ids))]
                out[eid].newest = first
    return out


def days_with_intervals(conn: psycopg.Connection, tz: str, point_ids: list[int]) -> list[tuple[date]]:
    """Local days holding any interval of ``point_ids``, in order: each local day from the first
    interval's to the last one's probed on the (point_id, bucket_start) key — a few index lookups a
    day instead of reading every interval."""
    return conn.execute(
        """WITH span AS (
               SELECT (min(bucket_start) AT TIME ZONE %(tz)s)::date AS lo, (max(bucket_start) AT TIME ZONE %(tz)s)::date AS hi
               FROM unnest(%(ids)s::bigint[]) p(id)
               CROSS JOIN LATERAL (
                   (SELECT bucket_start FROM interval_energy WHERE point_id = p.id ORDER BY bucket_start LIMIT 1)
                   UNION ALL
                   (SELECT bucket_start FROM interval_energy WHERE point_id = p.id ORDER BY bucket_start DESC LIMIT 1)) b)
           SELECT d::date FROM span, generate_series(span.lo, span.hi, interval '1 day') d
           WHERE EXISTS (SELECT 1 FROM interval_energy WHERE point_id = ANY(%(ids)s)
                         AND bucket_start >= (d::date::timestamp AT TIME ZONE %(tz)s)
                         AND bucket_start < ((d::date + 1)::timestamp AT TIME ZONE %(tz)s))
           ORDER BY 1""", {"tz": tz, "ids": point_ids}).fetchall()


def save_watermarks(conn: psycopg.Connection, seen: dict[int, datetime | None], flow: str = "metrics") -> None:
    """Move ``flow``'s watermark of each enterprise id to its time (never back; None: left alone) in
    one statement, committed asynchronously (:func:`asynchronous_commit`: a watermark lost in a crash
    of the server only makes the next pass look at those days again) when it is a transaction of its
    own; in the caller's transaction when there is one (committed as the caller commits it)."""
    marks = [(eid, t) for eid, t in sorted(seen.items()) if t is not None]
    if not marks:
        return
    own = conn.info.transaction_status == TransactionStatus.IDLE
    with conn.transaction() if own else nullcontext():
        if own:
            asynchronous_commit(conn)
        conn.execute(f"""INSERT INTO {WATERMARKS[flow]} AS w (enterprise_id, seen_through)
                         SELECT * FROM unnest(%s::bigint[], %s::timestamptz[])
                         ON CONFLICT (enterprise_id) DO UPDATE SET
                             seen_through = greatest(w.seen_through, EXCLUDED.seen_through),
                             run_at = now()""", ([m[0] for m in marks], [m[1] for m in marks]))


def asynchronous_commit(conn: psycopg.Connection) -> None:
    """Commit the current transaction without waiting for its WAL to reach the disk
    (``SET LOCAL synchronous_commit = off``): for what the flows derive and can derive again — stored
    metrics, carried parts, watermarks — never for eligibility decisions (versions people cite). A
    crash of the server can lose the last such commits, never part of one, and the WAL keeps their
    order: a lost metrics result takes every later watermark with it, so the next pass recomputes it
    (docs/accounting.md "What a pass recomputes")."""
    conn.execute("SET LOCAL synchronous_commit = off")


def source_changed_at(conn: psycopg.Connection, point_ids: list[int], start: datetime, end: datetime) -> datetime | None:
    return conn.execute(
        """SELECT max(computed_at) FROM interval_energy
           WHERE point_id = ANY(%s) AND bucket_start >= %s AND bucket_start < %s""",
        (point_ids, start, end),
    ).fetchone()[0]


def write_daily_balances(conn: psycopg.Connection, enterprise_id: int,
                         days: dict[date, tuple[BalanceTotals, datetime | None, int | None]]) -> None:
    """Upsert the daily balance of each day: totals, the newest interval change it was built from,
    measured intervals (one statement, sent for all days at once)."""
    if not days:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO daily_balance (enterprise_id, day, import_wh, export_wh, pv_wh, charge_wh, discharge_wh,
                   consumption_wh, pv_self_consumed_wh, green_wh, intervals, estimated_intervals, source_changed_at,
                   measured_intervals)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (enterprise_id, day) DO UPDATE SET
                   import_wh = EXCLUDED.import_wh, export_wh = EXCLUDED.export_wh, pv_wh = EXCLUDED.pv_wh,
                   charge_wh = EXCLUDED.charge_wh, discharge_wh = EXCLUDED.discharge_wh,
                   consumption_wh = EXCLUDED.consumption_wh, pv_self_consumed_wh = EXCLUDED.pv_self_consumed_wh,
                   green_wh = EXCLUDED.green_wh, intervals = EXCLUDED.intervals,
                   estimated_intervals = EXCLUDED.estimated_intervals, source_changed_at = EXCLUDED.source_changed_at,
                   measured_intervals = EXCLUDED.measured_intervals, computed_at = now()""",
            [(enterprise_id, day, t.import_wh, t.export_wh, t.pv_wh, t.charge_wh, t.discharge_wh, t.consumption_wh,
              t.pv_self_consumed_wh, t.green_wh, t.intervals, t.estimated_intervals, source, measured)
             for day, (t, source, measured) in days.items()])


# -- year to date, projection -------------------------------------------------------------------

def write_green_share_ytd(conn: psycopg.Connection, enterprise_id: int, year: int, data_through: datetime,
                          t: BalanceTotals, r, *, measured: tuple[int, int] | None = None) -> None:
    """The year to date's balance totals and its R1 result ``r`` (metrics.green_share.GreenShareResult):
    every figure ``report green-share --format json`` prints at the same ``as_of``, the exact share and
    completeness as 'num/den', the intervals measured for the site, the inputs digest and the
    hourly-matched share (for information)."""
    conn.execute(
        """INSERT INTO green_share_ytd (enterprise_id, year, data_through, green_wh, consumption_wh, share,
               qualifies, intervals, estimated_intervals, onsite_green_wh, trade_wh, certificate_wh,
               completeness, status, missing_wh, certificates_to_buy, measured_intervals, expected_intervals,
               share_exact, completeness_exact, inputs_sha256, hourly_hours, hourly_consumption_wh,
               hourly_onsite_matched_wh, hourly_ledger_matched_wh, hourly_ledger_unmatched_wh, hourly_share_exact)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                   %s, %s, %s, %s, %s, %s)
           ON CONFLICT (enterprise_id, year) DO UPDATE SET data_through = EXCLUDED.data_through,
               green_wh = EXCLUDED.green_wh, consumption_wh = EXCLUDED.consumption_wh, share = EXCLUDED.share,
               qualifies = EXCLUDED.qualifies, intervals = EXCLUDED.intervals,
               estimated_intervals = EXCLUDED.estimated_intervals, onsite_green_wh = EXCLUDED.onsite_green_wh,
               trade_wh = EXCLUDED.trade_wh, certificate_wh = EXCLUDED.certificate_wh,
               completeness = EXCLUDED.completeness, status = EXCLUDED.status, missing_wh = EXCLUDED.missing_wh,
               certificates_to_buy = EXCLUDED.certificates_to_buy, measured_intervals = EXCLUDED.measured_intervals,
               expected_intervals = EXCLUDED.expected_intervals, share_exact = EXCLUDED.share_exact,
               completeness_exact = EXCLUDED.completeness_exact, inputs_sha256 = EXCLUDED.inputs_sha256,
               hourly_hours = EXCLUDED.hourly_hours, hourly_consumption_wh = EXCLUDED.hourly_consumption_wh,
               hourly_onsite_matched_wh = EXCLUDED.hourly_onsite_matched_wh,
               hourly_ledger_matched_wh = EXCLUDED.hourly_ledger_matched_wh,
               hourly_ledger_unmatched_wh = EXCLUDED.hourly_ledger_unmatched_wh,
               hourly_share_exact = EXCLUDED.hourly_share_exact,
               computed_at = now()""",
        (enterprise_id, year, data_through, r.green_wh, r.consumption_wh, _numeric(r.share),
         None if r.status == "unknown" else r.status == "qualifies", t.intervals, t.estimated_intervals,
         r.onsite_green_wh, r.trade_wh, r.certificate_wh, _numeric(r.completeness), r.status, r.missing_wh,
         r.certificates_to_buy, measured[0] if measured else None, measured[1] if measured else None,
         _exact(r.share), _exact(r.completeness), getattr(r.evidence, "inputs_sha256", None),
         *((h.hours, h.consumption_wh, h.onsite_matched_wh, h.ledger_matched_wh, h.ledger_unmatched_wh,
            _exact(h.share)) if (h := r.hourly) is not None else (None,) * 6)),
    )


def projected_green_wh(p) -> int:
    """Green electricity projected to year end: on-site scaled plus the ledger so far, at most the
    projected consumption (what ``green_share_projection.projected_green_wh`` holds) [Wh]."""
    return min(p.onsite_green_wh + p.ledger_green_wh, p.consumption_wh)


def write_projection(conn: psycopg.Connection, enterprise_id: int, year: int, data_through: datetime, p,
                     gap_now_wh: int, basis_days: int) -> None:
    """The year-end projection ``p`` (metrics.green_share.Projection, from ``basis_days`` of the year
    to date) and the gap to 30 % now and at year end."""
    projected_green = projected_green_wh(p)
    conn.execute(
        """INSERT INTO green_share_projection (enterprise_id, year, data_through, basis_days, projected_green_wh,
               projected_consumption_wh, projected_share, projected_qualifies, gap_now_wh, gap_year_end_wh)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (enterprise_id, year) DO UPDATE SET data_through = EXCLUDED.data_through,
               basis_days = EXCLUDED.basis_days, projected_green_wh = EXCLUDED.projected_green_wh,
               projected_consumption_wh = EXCLUDED.projected_consumption_wh,
               projected_share = EXCLUDED.projected_share, projected_qualifies = EXCLUDED.projected_qualifies,
               gap_now_wh = EXCLUDED.gap_now_wh, gap_year_end_wh = EXCLUDED.gap_year_end_wh, computed_at = now()""",
        (enterprise_id, year, data_through, basis_days, projected_green, p.consumption_wh,
         _numeric(p.share), p.qualifies, gap_now_wh, p.missing_wh),
    )


# -- carbon and standard coal, year to date --------------------------------------------------------

CARBON_COLUMNS = (
    "data_through", "status", "note", "region", "factor_year_offset", "grid_import_wh",
    "location_co2_kg", "location_factor", "location_factor_region", "location_factor_year", "location_factor_source",
    "market_co2_kg", "market_factor", "market_factor_region", "market_factor_year", "market_factor_source",
    "market_covered_wh", "green_trade_wh", "certificates",
    "coal_equivalent_kgce", "coal_equal_value_kgce", "equal_value_kgce_per_kwh",
)


def write_carbon_ytd(conn: psycopg.Connection, enterprise_id: int, year: int, row: dict[str, Any]) -> None:
    """Upsert the ``carbon_ytd`` row (``row`` holds :data:`CARBON_COLUMNS`; missing ones are NULL).
    An unchanged row is left alone, ``computed_at`` included: a rerun changes nothing."""
    unknown = set(row) - set(CARBON_COLUMNS)
    if unknown:
        raise ValueError(f"not carbon_ytd columns: {', '.join(sorted(unknown))}")
    _upsert_year_row(conn, "carbon_ytd", CARBON_COLUMNS, enterprise_id, year, [row.get(c) for c in CARBON_COLUMNS])


def _upsert_year_row(conn: psycopg.Connection, table: str, columns: tuple[str, ...], enterprise_id: int, year: int,
                     values: list) -> None:
    """Upsert an (enterprise, year) result row; an unchanged row is left alone, ``computed_at`` included.
    ``table`` and ``columns`` are this module's constants, never input."""
    cols = ", ".join(columns)
    conn.execute(
        f"""INSERT INTO {table} (enterprise_id, year, {cols})
            VALUES (%s, %s, {", ".join(["%s"] * len(columns))})
            ON CONFLICT (enterprise_id, year) DO UPDATE SET
                {", ".join(f"{c} = EXCLUDED.{c}" for c in columns)}, computed_at = now()
            WHERE ({", ".join(f"{table}.{c}" for c in columns)})
                  IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in columns)})""",
        (enterprise_id, year, *values),
    )


# -- energy intensity, year to date ----------------------------------------------------------------

INTENSITY_COLUMNS = (
    "industry", "data_through", "status", "not_ranked", "electricity_method", "energy_kgce", "output_value_yuan",
    "rows_without_output_value", "kgce_per_10k_yuan", "kgce_per_10k_yuan_exact", "rank_in_industry", "ranked_of",
)


def write_intensity_ytd(conn: psycopg.Connection, enterprise_id: int, year: int, e: dict[str, Any]) -> None:
    """Upsert the ``intensity_ytd`` row of one enterprise row ``e`` of
    :func:`accounting.policy_inputs.intensity_year` (what ``report intensity --format json`` prints for
    it). An unchanged row is left alone, ``computed_at`` included."""
    v = e["kgce_per_10k_yuan"]
    row = {"industry": e["industry"], "data_through": e["data_through"], "status": e["status"],
           "not_ranked": e.get("not_ranked"), "electricity_method": e["electricity_method"],
           "energy_kgce": e["energy_kgce"], "output_value_yuan": e["output_value_yuan"],
           "rows_without_output_value": e["rows_without_output_value"],
           "kgce_per_10k_yuan": None if v is None else (Decimal(v.numerator) / Decimal(v.denominator)).quantize(
               Decimal("0.000001")),  # as greengauge.cli_policy._plain prints it
           "kgce_per_10k_yuan_exact": _exact(v), "rank_in_industry": e["rank"], "ranked_of": e["of"]}
    _upsert_year_row(conn, "intensity_ytd", INTENSITY_COLUMNS, enterprise_id, year, [row[c] for c in INTENSITY_COLUMNS])


def _exact(f) -> str | None:
    return None if f is None else f"{f.numerator}/{f.denominator}"


def _numeric(share) -> Decimal | None:
    """A Fraction for display, to 12 places; decisions never use it (they compare integers)."""
    if share is None:
        return None
    return (Decimal(share.numerator) / Decimal(share.denominator)).quantize(Decimal("1e-12"))


# -- eligibility ----------------------------------------------------------------------------------

REASONS = ("first", "new_data", "late_data", "ledger_change", "rule_change")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def evidence_hash(evidence: dict) -> str:
    return hashlib.sha256(canonical_json(evidence).encode()).hexdigest()


@dataclass(frozen=True)
class Decision:
    decision_id: int
    enterprise_id: int
    year: int
    document: str
    clause: str
    rule: str
    subject: str
    version: int
    status: str
    amount: Decimal | None
    evidence: dict
    evidence_hash: str
    reason: str
    supersedes: int | None
    decided_at: datetime


_DECISION_COLS = ("decision_id, enterprise_id, year, document, clause, rule, subject, version, status, amount, evidence, "
                  "evidence_hash, reason, supersedes, decided_at")


def current_decisions(conn: psycopg.Connection, enterprise_id: int, year: int) -> dict[tuple[str, str, str, str], Decision]:
    rows = conn.execute(
        f"SELECT {_DECISION_COLS} FROM eligibility_current WHERE enterprise_id = %s AND year = %s",
        (enterprise_id, year),
    ).fetchall()
    return {(r[3], r[4], r[5], r[6]): Decision(*r) for r in rows}


def insert_decision(conn: psycopg.Connection, enterprise_id: int, year: int, document: str, clause: str, rule: str,
                    subject: str, version: int, status: str, amount: Decimal | None, evidence: dict, reason: str,
                    supersedes: int | None) -> int:
    if reason not in REASONS:
        raise ValueError(f"reason {reason!r} is not one of {', '.join(REASONS)}")
    return conn.execute(
        """INSERT INTO eligibility_decision (enterprise_id, year, document, clause, rule, subject, version, status,
               amount, evidence, evidence_hash, reason, supersedes)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING decision_id""",
        (enterprise_id, year, document, clause, rule, subject, version, status, amount, Jsonb(evidence),
         evidence_hash(evidence), reason, supersedes),
    ).fetchone()[0]


def input_fingerprint(conn: psycopg.Connection, enterprise_id: int, start: datetime, end: datetime,
                      extra: dict[str, Any], *, year: int | None = None) -> tuple[str, str | None]:
    """sha256 over what an evaluation of [start, end) reads: the enterprise's points and the newest
    change of their rolled-up intervals in the period — an insert or update stamps ``computed_at``,
    a removal is recorded in ``interval_energy_removed`` (migration 0830) — the rollup's counter
    findings of [start, end] (what the evidence lists: the bundle reads them up to the end
    inclusive), the enterprise's input stamp (:func:`enterprise_state`: what people record and the
    metering settings) and ``extra`` (code and rule versions, nameplates); with the fingerprint the
    last evaluation of ``year`` stored (:func:`last_fingerprint`). :func:`input_fingerprints` of one."""
    return input_fingerprints(conn, [(enterprise_id, start, end, extra, year)])[0]


def input_fingerprints(conn: psycopg.Connection, items: list[tuple[int, datetime, datetime, dict[str, Any], int | None]]
                       ) -> list[tuple[str, str | None]]:
    """:func:`input_fingerprint` of each (enterprise id, start, end, extra, year), in one round trip
    of index probes, never a count of the period's intervals: a pass over a batch of closed years
    costs what a day does."""
    if not items:
        return []
    # per point: the newest change from the (point_id, computed_at) index read newest first (it
    # stops at the first row in the period), the newest removal from (point_id, removed_at) likewise
    # — the period's bounds come from the batch's rows, unknown when the plan is made, so the
    # planner would guess a narrow range and read the period on the primary key instead (the
    # period's every interval: seconds for a batch of years); "+ '0 s'" keeps the key out of it;
    # the rollup's counter findings the evidence lists (a skipped glitch moves no interval but adds
    # one) by content: the rollup deletes and re-inserts them on every run
    with conn.pipeline(), conn.transaction():
        no_jit(conn)
        cur = conn.execute(
            f"""SELECT x.k, {point_ids('x.e')},
                      c.newest, c.removed,
                      (SELECT md5(string_agg(concat_ws('|', f.point_id, f.kind, f.opened_at, f.data::text), E'\n'
                                             ORDER BY f.point_id, f.opened_at, f.kind, f.data::text))
                       FROM finding f JOIN point p ON p.point_id = f.point_id JOIN device d ON d.device_id = p.device_id
                       JOIN site s ON s.site_id = d.site_id
                       WHERE s.enterprise_id = x.e AND f.origin = 'rollup' AND f.opened_at >= x.s AND f.opened_at <= x.t),
                      (SELECT stamp FROM enterprise_input WHERE enterprise_id = x.e),
                      (SELECT fingerprint FROM eligibility_input WHERE enterprise_id = x.e AND year = x.y)
               FROM unnest(%s::int[], %s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::int[]) x(k, e, s, t, y)
               CROSS JOIN LATERAL (
                   SELECT max(n.newest) AS newest, max(n.removed) AS removed
                   FROM {ENTERPRISE_POINTS}
                   CROSS JOIN LATERAL (
                       SELECT (SELECT i.computed_at FROM interval_energy i WHERE i.point_id = p.point_id
                                 AND i.bucket_start + '0 s'::interval >= x.s AND i.bucket_start + '0 s'::interval < x.t
                               ORDER BY i.computed_at DESC LIMIT 1) AS newest,
                              (SELECT r.removed_at FROM interval_energy_removed r WHERE r.point_id = p.point_id
                                 AND r.bucket_start + '0 s'::interval >= x.s AND r.bucket_start + '0 s'::interval < x.t
                               ORDER BY r.removed_at DESC LIMIT 1) AS removed) n
                   WHERE s.enterprise_id = x.e) c
               ORDER BY x.k""",
            (list(range(len(items))), [i[0] for i in items], [i[1] for i in items], [i[2] for i in items],
             [i[4] for i in items]))
    rows = cur.fetchall()
    out = []
    for (_, points, newest, removed, found, stamp, last), (_, start, end, extra, _) in zip(rows, items):
        out.append((evidence_hash({"start": start, "end": end, "points": points, "newest": newest, "removed": removed,
                                   "findings": found, "recorded": stamp, **extra}), last))
    return out


def enterprise_state(conn: psycopg.Connection, enterprise_id: int, *, prefix_of: int | None = None
                     ) -> tuple[list[int], int | None, dict[int, tuple[datetime, int | None, str | None]], dict | None]:
    """In one round trip: the enterprise's point ids; its input stamp (moved by every write to what
    people record for it and to its metering settings: points, devices, replacements, ledger, facts,
    projects, production, reference values; migration 0840; equal stamps: none of those changed in
    between); the years the metrics flow keeps carried parts of (year -> through, input stamp,
    versions) and, for the year ``prefix_of``, the carried parts themselves (``metrics_prefix.state``,
    None without)."""
    ids, stamp, years, state = conn.execute(
        f"""SELECT {point_ids('%(e)s')},
                  (SELECT stamp FROM enterprise_input WHERE enterprise_id = %(e)s),
                  (SELECT json_agg(json_build_array(year, through, input_stamp, versions))
                   FROM metrics_prefix WHERE enterprise_id = %(e)s),
                  (SELECT state FROM metrics_prefix WHERE enterprise_id = %(e)s AND year = %(y)s)""",
        {"e": enterprise_id, "y": prefix_of}).fetchone()
    stored = {y: (datetime.fromisoformat(t), st, v) for y, t, st, v in years or []}
    return list(ids), stamp, stored, state


def last_fingerprint(conn: psycopg.Connection, enterprise_id: int, year: int) -> str | None:
    row = conn.execute("SELECT fingerprint FROM eligibility_input WHERE enterprise_id = %s AND year = %s",
                       (enterprise_id, year)).fetchone()
    return row[0] if row else None


def save_fingerprint(conn: psycopg.Connection, enterprise_id: int, year: int, fingerprint: str) -> None:
    conn.execute("""INSERT INTO eligibility_input (enterprise_id, year, fingerprint) VALUES (%s, %s, %s)
                    ON CONFLICT (enterprise_id, year) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                        evaluated_at = now()""", (enterprise_id, year, fingerprint))


def decisions_since(conn: psycopg.Connection, decision_id: int, enterprise_id: int | None = None) -> list[dict]:
    """What changed since the caller last pulled: every version newer than ``decision_id``, each
    with the status, amount and evidence it replaced (from the ``eligibility_change`` view)."""
    cur = conn.execute(
        """SELECT * FROM eligibility_change WHERE decision_id > %s AND (%s::bigint IS NULL OR enterprise_id = %s)
           ORDER BY decision_id""",
        (decision_id, enterprise_id, enterprise_id),
    )
    names = [d.name for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]
