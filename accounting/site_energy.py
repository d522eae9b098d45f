"""A site's energy for a period: readings -> interval energy -> balance -> green share.

Thin by design: reads from :mod:`store`, calls the pure functions in :mod:`metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from fractions import Fraction

import psycopg

from model import CODE_VERSION
from metrics.balance import BalanceTotals, IntervalBalance, site_balance, totals
from metrics.energy import (
    CounterEnergy, CounterFinding, IntervalEnergy, MeterReplacement, counter_energy, counter_intervals,
    floor_interval, rollover_wh, sum_by_interval,
)
from metrics.evidence import Evidence, FindingEvidence, InputDigest, PointEvidence
from metrics.green_share import (
    COMPLETENESS_THRESHOLD, GreenShare, GreenShareResult, assess_green_share, green_share, project_year_end,
)
from metrics.hourly_match import hourly_match
from metrics.ledger import ledger_green
from metrics.periods import local_bounds
from store.events import replacements
from store.ledger import ledger_for
from store.queries import counter_series
from store.sites import PointRow, enterprise_timezone, site_points

BALANCE_ROLES = ("grid_import", "grid_export", "pv_generation", "storage_charge", "storage_discharge")


@dataclass
class SiteEnergy:
    enterprise: str
    start: datetime
    end: datetime
    points: list[PointRow]
    balance: list[IntervalBalance]
    totals: BalanceTotals
    share: GreenShare | None
    findings: list[CounterFinding]
    per_point: dict[int, CounterEnergy] = field(default_factory=dict)
    inputs_sha256: str = ""
    rollover_wh: dict[int, float | None] = field(default_factory=dict)


def point_rollover(conn: psycopg.Connection, points: list[PointRow] | list[int]) -> dict[int, float | None]:
    """Wrap width of each point (a :class:`PointRow` or a point id) [Wh]: the point's own
    ``counter_rollover_wh``, else its device profile's ``counter_rollover_bits`` × the register's
    scale, else None (unknown)."""
    from model.profile import load_profile

    rows = conn.execute(
        """SELECT p.point_id, d.profile, p.quantity, p.counter_rollover_wh
           FROM point p JOIN device d USING (device_id) WHERE p.point_id = ANY(%s)""",
        ([getattr(p, "point_id", p) for p in points],)).fetchall()
    out: dict[int, float | None] = {}
    for pid, profile, quantity, own in rows:
        if own is not None:
            out[pid] = own
            continue
        try:
            prof = load_profile(profile)
            out[pid] = rollover_wh(prof.counter_rollover_bits, float(prof.register(quantity).factor))
        except Exception:  # unknown profile or quantity: width unknown, every drop is a reset
            out[pid] = None
    return out


@dataclass(frozen=True)
class CounterSettings:
    """What turning one counter point's readings into energy needs besides the readings."""

    rollover_wh: float | None = None  #: wrap width [Wh], None when unknown
    replacements: tuple[MeterReplacement, ...] = ()  #: recorded meter replacements, in time order
    rated_power_w: float | None = None  #: [W], None when unknown


def counter_settings(conn: psycopg.Connection, point_ids: list[int], *,
                     widths: dict[int, float | None] | None = None) -> dict[int, CounterSettings]:
    """Each counter point's settings from the database: wrap width (:func:`point_rollover`),
    recorded replacements (:mod:`store.events`) and rated power. Used by the report
    (:func:`point_energy`) and the stored rollup (``flows.rollup``) alike."""
    ids = list(point_ids)
    rated = dict(conn.execute("SELECT point_id, rated_power_w FROM point WHERE point_id = ANY(%s)", (ids,)).fetchall())
    widths = point_rollover(conn, ids) if widths is None else widths
    events = replacements(conn, ids)
    return {pid: CounterSettings(widths.get(pid), tuple(events[pid]), rated.get(pid)) for pid in ids}


def settings_intervals(
    ts: list[datetime], values: list[float], settings: CounterSettings, *, count_suspect: bool = True,
) -> tuple[list[IntervalEnergy], list[CounterFinding]]:
    """One point's raw readings to every interval and the findings, with the point's settings:
    :func:`metrics.energy.counter_intervals`, the path both the report and the rollup take."""
    return counter_intervals(ts, values, rollover_wh=settings.rollover_wh, replacements=settings.replacements,
                             rated_power_w=settings.rated_power_w, count_suspect=count_suspect)


def point_energy(
    conn: psycopg.Connection, points: list[PointRow], start: datetime, end: datetime, *,
    count_suspect: bool = True, digest: InputDigest | None = None, widths: dict[int, float | None] | None = None,
) -> dict[int, CounterEnergy]:
    """Each counter point's energy for the intervals starting in [start, end)."""
    ids = [p.point_id for p in points]
    series = counter_series(conn, ids, start, end)
    settings = counter_settings(conn, ids, widths=widths)
    out: dict[int, CounterEnergy] = {}
    for p in points:
        ts, values = series[p.point_id]
        st = settings[p.point_id]
        if digest is not None:
            digest.add_series(p.name, ts, values)
            digest.add_json({"point": p.name, "role": p.role, "rated_power_w": p.rated_power_w,
                             "rollover_wh": st.rollover_wh,
                             "replacements": [vars_of(r) for r in st.replacements]})
        # counter_energy goes through counter_intervals, as settings_intervals does for the rollup
        out[p.point_id] = counter_energy(
            ts, values, start, end, rollover_wh=st.rollover_wh, replacements=st.replacements,
            rated_power_w=st.rated_power_w, count_suspect=count_suspect)
    return out


def vars_of(r) -> dict:
    return {"ts": r.ts, "old_final_wh": r.old_final_wh, "new_initial_wh": r.new_initial_wh, "reason": r.reason}


def point_intervals(
    conn: psycopg.Connection, points: list[PointRow], start: datetime, end: datetime
) -> tuple[dict[int, list[IntervalEnergy]], list[CounterFinding]]:
    """Interval energy of each counter point, for the intervals starting in [start, end)."""
    per = point_energy(conn, points, start, end)
    return {pid: ce.intervals for pid, ce in per.items()}, [f for ce in per.values() for f in ce.findings]


def site_energy(conn: psycopg.Connection, enterprise: str, start: datetime, end: datetime, *,
                count_suspect: bool = True) -> SiteEnergy:
    points = [p for p in site_points(conn, enterprise) if p.role in BALANCE_ROLES]
    digest = InputDigest()
    digest.add_json({"enterprise": enterprise, "start": start, "end": end, "count_suspect": count_suspect})
    widths = point_rollover(conn, points)
    per_point = point_energy(conn, points, start, end, count_suspect=count_suspect, digest=digest, widths=widths)
    by_role = {
        role: sum_by_interval([per_point[p.point_id].intervals for p in points if p.role == role])
        for role in BALANCE_ROLES
    }
    balance, _ = site_balance(by_role)
    t = totals(balance)
    findings = sorted((f for ce in per_point.values() for f in ce.findings), key=lambda f: f.ts)
    share = None
    if 0 < t.consumption_wh and t.green_wh <= t.consumption_wh:
        share = green_share(t.green_wh, t.consumption_wh)
    elif t.green_wh > t.consumption_wh:
        # the meters disagree (e.g. export metered without the PV that produced it): no share, said so
        findings.append(CounterFinding("balance_inconsistent", start, f"on-site green {t.green_wh} Wh exceeds "
                                       f"consumption {t.consumption_wh} Wh over the period: check the meters"))
    return SiteEnergy(enterprise, start, end, points, balance, t, share, findings, per_point, digest.hexdigest(),
                      widths)


def green_share_report(
    conn: psycopg.Connection, enterprise: str, year: int, *, as_of: datetime | None = None,
    count_suspect: bool = True, completeness_threshold: Fraction = COMPLETENESS_THRESHOLD,
) -> GreenShareResult:
    """Rule R1 for an enterprise's local calendar year, or the year to date at ``as_of``.

    The site balance gives on-site green (PV self-consumed, green discharge) and consumption; the
    ledger adds trades settled and certificates retired in the period; the result carries the
    hourly-matched share, a year-end projection (when the year is not over) and its evidence.
    """
    tz = enterprise_timezone(conn, enterprise)
    ystart, yend = local_bounds("year", date(year, 1, 1), tz)
    now = as_of or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError(f"as_of {now} has no time zone")
    if now <= ystart:
        raise ValueError(f"year {year} has not begun at {now.isoformat()}")
    end = min(yend, floor_interval(now))
    se = site_energy(conn, enterprise, ystart, end, count_suspect=count_suspect)
    # the ledger counts by local dates: the period's local days [first, last]
    from zoneinfo import ZoneInfo
    zone = ZoneInfo(tz)
    lstart = ystart.astimezone(zone).date()
    lend_dt = end.astimezone(zone)
    lend = lend_dt.date() if lend_dt.time() == datetime.min.time() else date.fromordinal(lend_dt.date().toordinal() + 1)
    trades, certs = ledger_for(conn, enterprise)
    led = ledger_green(trades, certs, lstart, lend)
    digest = InputDigest()
    digest.add_json({"site_inputs": se.inputs_sha256, "trades": [vars(t) for t in trades],
                     "certificates": [(str(c.first), str(c.last), c.production_month, c.used_on, c.trade_reference)
                                      for c in certs], "completeness_threshold": completeness_threshold,
                     "ledger_period": [lstart, lend]})
    completeness = min((ce.completeness.share for ce in se.per_point.values()), default=Fraction(0))
    year_intervals = int((yend - ystart).total_seconds()) // 900
    elapsed = int((end - ystart).total_seconds()) // 900
    t = se.totals
    projection = None
    if end < yend and elapsed > 0:
        projection = project_year_end(t.green_wh, t.consumption_wh, led.green_wh, elapsed, year_intervals)
    names = {p.point_id: p for p in se.points}
    evidence = Evidence(
        enterprise=enterprise, period_start=ystart, period_end=end, timezone=tz,
        points=tuple(
            PointEvidence(names[pid].name, names[pid].role, ce.readings, ce.completeness.expected,
                          ce.completeness.measured, ce.completeness.estimated, ce.completeness.missing,
                          ce.suspect_intervals, ce.completeness.share, ce.total_wh,
                          se.rollover_wh.get(pid), names[pid].rated_power_w)
            for pid, ce in se.per_point.items()),
        findings=tuple(sorted((FindingEvidence(names[pid].name, f.kind, f.ts, f.detail)
                               for pid, ce in se.per_point.items() for f in ce.findings),
                              key=lambda f: (f.ts, f.point, f.kind))),
        ledger_entries=tuple(
            [f"trade {x.reference} settled {x.settled_on} {x.settled_wh / 1e6:g} MWh (counted)" for x in led.trades]
            + [f"GEC {c.label} produced {c.production_month:%Y-%m} retired {c.used_on} ({c.count} MWh, counted)"
               for c in led.certificates]
            + [f"GEC {c.label} delivered with trade {c.trade_reference} (bundled, counted in the trade)"
               for c in led.bundled]
            + [f"GEC {c.label} rejected: {why}" for c, why in led.rejected]),
        count_suspect=count_suspect, completeness_threshold=completeness_threshold,
        inputs_sha256=digest.hexdigest(), code_version=CODE_VERSION,
        notes=(f"ledger counted by local dates {lstart} to {lend} (exclusive)",
               "completeness is the lowest over the points used"),
    )
    return assess_green_share(
        t.green_wh, t.consumption_wh, trade_wh=led.trade_wh, certificate_wh=led.certificate_wh,
        completeness=completeness, count_suspect=count_suspect, completeness_threshold=completeness_threshold,
        projection=projection, hourly=hourly_match(se.balance, led, tz), evidence=evidence)


def green_share_json(r: GreenShareResult) -> dict:
    """The R1 result as JSON-ready data, with its evidence (for reports and eligibility decisions)."""
    from metrics.evidence import jsonable

    d = {
        "status": r.status, "share": r.share, "threshold": r.threshold,
        "energy_wh": {"onsite_green": r.onsite_green_wh, "trade": r.trade_wh, "certificates": r.certificate_wh,
                      "green": r.green_wh, "consumption": r.consumption_wh},
        "completeness": r.completeness, "completeness_threshold": r.completeness_threshold,
        "count_suspect": r.count_suspect, "missing_wh": r.missing_wh, "certificates_to_buy": r.certificates_to_buy,
        "projection": None if r.projection is None else vars(r.projection),
        "hourly_matched": None if r.hourly is None else {**vars(r.hourly), "share": r.hourly.share},
        "evidence": r.evidence.to_json() if r.evidence is not None else None,
    }
    return jsonable(d)
