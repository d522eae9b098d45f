"""A site's energy for a period, and what turning a counter's readings into interval energy needs.

- :func:`site_energy`, :func:`green_share_report`: the balance and rule R1 from the *stored*
  interval energy (``interval_energy``), through the one loader (:mod:`store.bundle`) and the one
  function per figure (:mod:`metrics.figures`) the flows use as well.
- :func:`counter_settings`, :func:`settings_intervals`: a counter point's settings and the path
  from its raw readings to intervals, which the rollup (``flows.rollup``) takes to write
  ``interval_energy``. :func:`point_energy` / :func:`point_intervals` run that path on raw
  readings directly: the reference the rollup's tests compare with; no figure reads them.

Thin by design: reads from :mod:`store`, calls the pure functions in :mod:`metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction

import psycopg

from metrics import figures
from metrics.counters import CounterFinding, MeterReplacement
from metrics.evidence import InputDigest
from metrics.figures import BALANCE_ROLES, SiteEnergy  # noqa: F401  (the one list; re-exported)
from metrics.green_share import COMPLETENESS_THRESHOLD, GreenShareResult
from metrics.intervals import (
    INTERVAL_S, CounterEnergy, IntervalEnergy, Resolution, counter_energy, counter_intervals, floor_interval,
)
from model import CODE_VERSION
from model.profile import counter_width_wh
from store.bundle import load_enterprise_period
from store.events import replacements, resolutions
from store.queries import counter_series
from store.sites import PointRow, enterprise_timezone


def point_rollover(conn: psycopg.Connection, points: list[PointRow] | list[int]) -> dict[int, float | None]:
    """Wrap width of each point (a :class:`PointRow` or a point id) [Wh], by the one rule
    :func:`model.profile.counter_width_wh` (the evidence's ``store.bundle`` uses it too)."""
    rows = conn.execute(
        """SELECT p.point_id, d.profile, p.quantity, p.counter_rollover_wh, d.ct_ratio, d.pt_ratio
           FROM point p JOIN device d USING (device_id) WHERE p.point_id = ANY(%s)""",
        ([getattr(p, "point_id", p) for p in points],)).fetchall()
    return {pid: counter_width_wh(profile, quantity, own, ct, pt) for pid, profile, quantity, own, ct, pt in rows}


@dataclass(frozen=True)
class CounterSettings:
    """What turning one counter point's readings into energy needs besides the readings."""

    rollover_wh: float | None = None  #: wrap width [Wh], None when unknown
    replacements: tuple[MeterReplacement, ...] = ()  #: recorded meter replacements, in time order
    rated_power_w: float | None = None  #: [W], None when unknown
    #: readings no further apart than this are measured time: the device's poll interval (MQTT:
    #: interval_s), at least one interval [s]
    max_gap_s: float = INTERVAL_S
    resolutions: tuple[Resolution, ...] = ()  #: ranges stated on import (``import readings --resolution``)


def counter_settings(conn: psycopg.Connection, point_ids: list[int], *,
                     widths: dict[int, float | None] | None = None) -> dict[int, CounterSettings]:
    """Each counter point's settings from the database: wrap width (:func:`point_rollover`),
    recorded replacements (:mod:`store.events`) and rated power. Used by the report
    (:func:`point_energy`) and the stored rollup (``flows.rollup``) alike."""
    ids = list(point_ids)
    rows = conn.execute("""SELECT p.point_id, p.rated_power_w, d.poll_interval_s
                           FROM point p JOIN device d USING (device_id) WHERE p.point_id = ANY(%s)""", (ids,)).fetchall()
    rated = {r[0]: r[1] for r in rows}
    poll = {r[0]: max(float(INTERVAL_S), float(r[2])) for r in rows}
    widths = point_rollover(conn, ids) if widths is None else widths
    events = replacements(conn, ids)
    stated = resolutions(conn, ids)
    return {pid: CounterSettings(widths.get(pid), tuple(events[pid]), rated.get(pid), poll.get(pid, INTERVAL_S),
                                 tuple(stated[pid])) for pid in ids}


def settings_intervals(
    ts: list[datetime], values: list[float], settings: CounterSettings, *, count_suspect: bool = True,
) -> tuple[list[IntervalEnergy], list[CounterFinding]]:
    """One point's raw readings to every interval and the findings, with the point's settings:
    :func:`metrics.intervals.counter_intervals`, the path both the report and the rollup take."""
    return counter_intervals(ts, values, rollover_wh=settings.rollover_wh, replacements=settings.replacements,
                             rated_power_w=settings.rated_power_w, count_suspect=count_suspect,
                             max_gap_s=settings.max_gap_s, resolutions=settings.resolutions)


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
                             "rollover_wh": st.rollover_wh, "max_gap_s": st.max_gap_s,
                             "resolutions": [[r.since, r.until, r.interval_s] for r in st.resolutions],
                             "replacements": [vars_of(r) for r in st.replacements]})
        # counter_energy goes through counter_intervals, as settings_intervals does for the rollup
        out[p.point_id] = counter_energy(
            ts, values, start, end, rollover_wh=st.rollover_wh, replacements=st.replacements,
            rated_power_w=st.rated_power_w, count_suspect=count_suspect, max_gap_s=st.max_gap_s,
            resolutions=st.resolutions)
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
    """The site balance of [start, end) from the stored interval energy: the enterprise's period
    loaded once (:func:`store.bundle.load_enterprise_period`), then :func:`metrics.figures.site_energy`,
    the function the metrics flow uses for its daily balances."""
    data = load_enterprise_period(conn, enterprise, start, end, with_policy=False)
    return figures.site_energy(data, floor_interval(start), floor_interval(end), count_suspect=count_suspect)


def green_share_report(
    conn: psycopg.Connection, enterprise: str, year: int, *, as_of: datetime | None = None,
    count_suspect: bool = True, completeness_threshold: Fraction = COMPLETENESS_THRESHOLD,
) -> GreenShareResult:
    """Rule R1 for an enterprise's local calendar year, or the year to date at ``as_of``, from the
    stored interval energy: :func:`metrics.figures.green_share_figure`, the function the metrics flow
    stores in ``green_share_ytd``. The period ends at ``min(year end, as_of floored to 15 min)``."""
    tz = enterprise_timezone(conn, enterprise)
    now = as_of or datetime.now(timezone.utc)
    ystart, end, _ = figures.year_to_date(year, tz, now)
    data = load_enterprise_period(conn, enterprise, ystart, end, with_policy=False)
    return figures.green_share_figure(data, year, now, count_suspect=count_suspect,
                                      completeness_threshold=completeness_threshold, code_version=CODE_VERSION)


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
