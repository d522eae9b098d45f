"""Per enterprise: daily balance, year-to-date green share, year-end projection and gap to 30 %,
year-to-date carbon and standard coal, and the industry's energy intensity (``intensity_ytd``, what
``report intensity`` gives: :func:`industry_intensity`, once per industry after every enterprise)
— from one bundle of stored data per enterprise-year.

One path (docs/accounting.md): :func:`read_year` loads the enterprise's year once
(:func:`store.bundle.load_enterprise_period`: the stored ``interval_energy``, ledger, points);
:func:`compute_metrics` calls the functions ``greengauge report …`` calls
(:func:`metrics.figures.day_balance`, :func:`metrics.figures.green_share_figure`,
:func:`accounting.policy_inputs.carbon_year` on the same bundle); :func:`store_metrics` writes every
result of an enterprise in one transaction. :func:`enterprise_pass` finds the local days whose
intervals changed since the enterprise's watermark (any age) and recomputes every year they fall
in; the flow maps it over the enterprises.

Carbon: the factor year is ``year + factor_year_offset`` (default 0); with ``factor_fallback``
(default on) a year without a published factor takes the latest earlier one and the row says so
(status ``factor_fallback``, the factors used in ``note``). Without a factor the row has status
``no_factor``, the reason in ``note`` and no CO2 figure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
from prefect import flow, get_run_logger

from accounting.policy_inputs import carbon_year, coal_of, energy_year, intensity_year
from flows.tasks import BatchError, batch_name, batches, io_task, metric_task, resolve_url, task_runner
from metrics import figures
from metrics.balance import BalanceTotals
from metrics.bundle import EnterprisePeriod  # noqa: F401  (YearData.bundle)
from metrics.figures import BALANCE_ROLES
from metrics.green_share import GreenShareResult, Projection, percent_text
from metrics.periods import local_bounds
from model import CODE_VERSION
from model.tables import factors_digest
from store.bundle import day_sources, load_enterprise_period, save_prefix
from store.db import session
from store.results import (Enterprise, PassStart, asynchronous_commit, dirty_days, enterprise_state, enterprises, lock,
                           pass_start, save_watermarks, write_carbon_ytd, write_daily_balances, write_green_share_ytd,
                           write_intensity_ytd, write_projection)
#: how long after New Year the metrics flow still rebalances the year before
LATE_YEAR_GRACE = timedelta(days=3)


@dataclass(frozen=True)
class CarbonOptions:
    """How the metrics flow picks the CO2 factors and converts electricity to standard coal."""

    region: str = "national"  #: region of the location-based factor (falls back to national)
    factor_year_offset: int = 0  #: factor year = accounting year + offset (-2: two years back)
    factor_fallback: bool = True  #: no factor for that year: the latest earlier one, said in the note
    equal_value_kgce_per_kwh: Decimal | None = None  #: also electricity at this equal value (等价值)


@dataclass
class YearData:
    """An enterprise's stored data for a local year up to ``as_of`` (one bundle), and the days to rebalance."""

    enterprise: Enterprise
    year: int
    start: datetime
    end: datetime  # end of the local year
    as_of: datetime
    bundle: EnterprisePeriod
    dirty: list[date] = field(default_factory=list)
    day_sources: dict[date, datetime | None] = field(default_factory=dict)
    stamp: int | None = None  #: the enterprise's input stamp, read before the bundle (store.results.enterprise_state)


@dataclass
class EnterpriseMetrics:
    enterprise: Enterprise
    year: int
    data_through: datetime | None
    daily: dict[date, tuple[BalanceTotals, datetime | None, int]]  #: totals, source, measured intervals
    ytd: BalanceTotals
    share: GreenShareResult | None  #: rule R1 for the year to date, with the ledger
    projection: Projection | None
    carbon: dict[str, Any] | None = None  #: the carbon_ytd row written (columns of store.results.CARBON_COLUMNS)
    measured: tuple[int, int] = (0, 0)  #: intervals measured for the site, intervals in the period
    prefix: Any = None  #: metrics.figures.Segment up to the last local midnight, for the next run
    #: (grid import [Wh] or None, fuels by carrier) of the year to date, as accounting.policy_inputs.energy_year
    #: gives them: what the industry's intensity reads of this enterprise when nothing is stored after ``data_through``
    energy: tuple[int | None, dict[str, int]] | None = None
    stamp: int | None = None  #: the input stamp the bundle was read at (kept with the carried parts)


def year_of(e: Enterprise, as_of: datetime) -> int:
    return as_of.astimezone(_zone(e.timezone)).year


def _zone(tz: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


@io_task(task_run_name="list-enterprises")
def list_enterprises(url: str, code: str | None) -> list[Enterprise]:
    with session(url) as conn:
        return enterprises(conn, code)


def read_year(url: str, e: Enterprise, year: int, as_of: datetime, days: list[date] | None = None, *,
              carried: bool = False, begun: PassStart | None = None) -> YearData:
    """The enterprise's year up to ``as_of`` in one bundle (:func:`store.bundle.load_enterprise_period`),
    and the local days whose intervals changed since their balance was computed.

    With ``carried`` (the flow's own runs, ``days`` being every changed day since the last run): the
    parts of the year up to the last local midnight the previous run kept (``metrics_prefix``) are
    carried and only the days after them are read — unless one of ``days`` is before that midnight
    or the points changed, then the whole year is read (the result is the same either way:
    metrics.figures.span cuts every period the same way). ``begun``: what the pass read first
    (:func:`store.results.pass_start`: points, input stamp, carried parts), not read again."""
    start, end = local_bounds("year", date(year, 1, 1), e.timezone)
    upto = max(start, min(as_of, end))
    with session(url, autocommit=True) as conn:  # reads only: READ COMMITTED gives each its own snapshot anyway
        # the stamp before the bundle: a write in between moves it again
        if begun is not None and not (carried and year in begun.stored and year not in begun.prefixes):
            ids_now, stamp, state = begun.ids, begun.stamp, begun.prefixes.get(year) if carried else None
        else:  # (the carried parts of a year the pass did not read at its start)
            ids_now, stamp, _, state = enterprise_state(conn, e.enterprise_id, prefix_of=year if carried else None)
        prefix = None
        if carried and days is not None:
            if state is not None:
                prefix = figures.Segment.from_json(state)
                first_changed = min((local_bounds("day", d, e.timezone)[0] for d in days), default=None)
                if (prefix.start != start or prefix.end > upto or set(prefix.per_point) != set(ids_now)
                        or (first_changed is not None and first_changed < prefix.end)):
                    prefix = None
        expect = (e.enterprise_id, ids_now) if begun is not None else None
        if prefix is not None:
            bundle = load_enterprise_period(conn, e.code, prefix.end, upto, with_policy=False, findings_from=start,
                                            expect=expect)
            bundle.prefix = prefix
        else:
            bundle = load_enterprise_period(conn, e.code, start, upto, with_policy=False, expect=expect)
        ids = [p.point_id for p in bundle.with_role(*BALANCE_ROLES)]
        dirty = days if days is not None else dirty_days(conn, e, ids, start)
        dirty = [d for d in dirty if d.year == year and local_bounds("day", d, e.timezone)[0] < upto]
        sources = day_sources(bundle, ids, dirty)
    return YearData(e, year, start, end, upto, bundle, dirty, {d: sources.get(d) for d in dirty}, stamp)


load_year = io_task(read_year, task_run_name="load-year")


def compute_metrics(data: YearData, carbon: "CarbonOptions | None" = None) -> EnterpriseMetrics:
    """Balance per dirty day (an empty battery pool each day, as ``report balance --day`` gives),
    the year to date and rule R1 (:func:`metrics.figures.green_share_figure`, what ``report
    green-share`` gives at the same ``as_of``), its projection and gap, carbon and standard coal."""
    e, b = data.enterprise, data.bundle
    daily = {d: (t, data.day_sources.get(d), measured) for d, (t, measured) in figures.day_balances(b, data.dirty).items()}
    # the carried parts are data too: a pass with nothing new since the last local midnight (just after
    # it, or a closed year) computes from them, and keeps them for the next pass instead of dropping them
    has_data = b.prefix is not None or b.has_intervals([p.point_id for p in b.with_role(*BALANCE_ROLES)])
    if not has_data or data.as_of <= data.start:
        ytd = figures.site_energy(b, data.start, max(data.start, figures.floor_interval(data.as_of)))
        return EnterpriseMetrics(e, data.year, None, daily, ytd.totals, None, None, stamp=data.stamp)
    share = figures.green_share_figure(b, data.year, data.as_of, code_version=CODE_VERSION)
    through = share.evidence.period_end
    ytd = figures.site_energy(b, data.start, through)
    m = EnterpriseMetrics(e, data.year, through, daily, ytd.totals, share, share.projection, stamp=data.stamp)
    m.prefix = figures.head_of(b, data.start, through)  # carried by the next run
    m.carbon = carbon_row(b, e, data.year, through, carbon or CarbonOptions())
    ey = energy_year(b, e.code, data.year, until=through)  # the same site balance (computed once per bundle)
    m.energy = (ey.grid_import_wh, dict(ey.fuels))
    m.measured = (ytd.measured_intervals, ytd.expected_intervals)
    return m


compute = metric_task(compute_metrics, task_run_name="compute-metrics")


def _is_factor_missing(exc: ValueError) -> bool:
    return " factor for region " in str(exc)  # metrics.carbon.FactorTable.factor's message


def carbon_row(conn: "psycopg.Connection | EnterprisePeriod", e: Enterprise, year: int, through: datetime,
               opts: CarbonOptions = CarbonOptions()) -> dict[str, Any]:
    """The ``carbon_ytd`` row of an enterprise's year to date ``through`` (the period end).

    CO2 and standard coal as :func:`accounting.policy_inputs.carbon_year` gives them with
    ``until=through``. No factor for the year: status ``no_factor``, the lookup's message in
    ``note``, no CO2 figure (standard coal still given). No metered grid import: status
    ``no_grid_import`` and no figure at all.
    """
    base: dict[str, Any] = {"data_through": through, "region": opts.region,
                            "factor_year_offset": opts.factor_year_offset,
                            "equal_value_kgce_per_kwh": opts.equal_value_kgce_per_kwh}
    try:
        c = carbon_year(conn, e.code, year, region=opts.region, year_offset=opts.factor_year_offset,
                        latest_available=opts.factor_fallback,
                        equal_value_kgce_per_kwh=opts.equal_value_kgce_per_kwh, until=through)
    except ValueError as exc:
        energy = energy_year(conn, e.code, year, until=through)
        if energy.grid_import_wh is None:
            return {**base, "status": "no_grid_import", "note": str(exc)}
        if not _is_factor_missing(exc):
            raise
        coal = coal_of(energy, opts.equal_value_kgce_per_kwh)
        note = str(exc) + ("" if opts.factor_fallback else "; factor_fallback is off")
        return {**base, "status": "no_factor", "note": note, "grid_import_wh": energy.grid_import_wh,
                "coal_equivalent_kgce": coal["equivalent"].total_kgce,
                "coal_equal_value_kgce": coal["equal_value"].total_kgce if "equal_value" in coal else None}
    lb, mb = c["location_based"], c["market_based"]
    coal = c["standard_coal"]
    return {
        **base,
        "status": c["status"], "note": c["note"],  # (accounting.policy_inputs.carbon_year: the report's own)
        "grid_import_wh": c["grid_import_wh"],
        "location_co2_kg": lb["co2_kg"], "location_factor": lb["factor"]["value"],
        "location_factor_region": lb["factor"]["region"], "location_factor_year": lb["factor"]["year"],
        "location_factor_source": lb["factor"]["source"],
        "market_co2_kg": mb["co2_kg"], "market_factor": mb["factor"]["value"],
        "market_factor_region": mb["factor"]["region"], "market_factor_year": mb["factor"]["year"],
        "market_factor_source": mb["factor"]["source"],
        "market_covered_wh": mb["covered_wh"], "green_trade_wh": mb["instruments"]["green_trade_wh"],
        "certificates": mb["instruments"]["certificates"],
        "coal_equivalent_kgce": coal["equivalent"]["total_kgce"],
        "coal_equal_value_kgce": coal["equal_value"]["total_kgce"] if "equal_value" in coal else None,
    }


def store_metrics(url: str, m: EnterpriseMetrics, carbon: CarbonOptions = CarbonOptions(), *,
                  intensity: bool = True) -> dict[str, Any] | None:
    """All of an enterprise's results in one transaction: all visible, or none. Carbon is read
    and computed inside that transaction, up to the period end of the green share; returns the
    ``carbon_ytd`` row written (None when there is no data yet). With ``intensity`` also the
    industry's ``intensity_ytd`` rows (the flow does them once per industry instead:
    :func:`intensity_pass`)."""
    # sent in one round trip (a pipeline), committed asynchronously: derived results a pass computes again
    with session(url) as conn, conn.pipeline(), conn.transaction():
        asynchronous_commit(conn)
        lock(conn, f"greengauge.flows.metrics.{m.enterprise.enterprise_id}")
        return write_results(conn, m, carbon, intensity=intensity)


def store_batch(url: str, ms: list[EnterpriseMetrics], carbon: CarbonOptions, watermarks: dict[int, datetime | None]
                ) -> None:
    """The results of a batch's enterprises and their watermarks (:func:`enterprises_pass`) in one
    transaction, sent in one round trip (a pipeline) and committed asynchronously
    (:func:`store.results.asynchronous_commit`): the watermarks move with the results they stand
    for, or neither does."""
    with session(url) as conn, conn.pipeline(), conn.transaction():
        asynchronous_commit(conn)
        for eid in sorted({m.enterprise.enterprise_id for m in ms} | set(watermarks)):  # one order: no deadlock
            lock(conn, f"greengauge.flows.metrics.{eid}")
        for m in ms:
            m.carbon = write_results(conn, m, carbon, intensity=False)
        save_watermarks(conn, watermarks)


def write_results(conn: psycopg.Connection, m: EnterpriseMetrics, carbon: CarbonOptions, *, intensity: bool
                  ) -> dict[str, Any] | None:
    """Every result of one enterprise-year (:func:`store_metrics`), in the caller's transaction."""
    row = None
    write_daily_balances(conn, m.enterprise.enterprise_id, m.daily)
    if m.data_through is not None:
        write_green_share_ytd(conn, m.enterprise.enterprise_id, m.year, m.data_through, m.ytd, m.share,
                              measured=m.measured)
        if m.projection is not None:
            ystart, _ = local_bounds("year", date(m.year, 1, 1), m.enterprise.timezone)
            write_projection(conn, m.enterprise.enterprise_id, m.year, m.data_through, m.projection,
                             m.share.missing_wh, (m.data_through - ystart).days)
        row = m.carbon if m.carbon is not None else carbon_row(conn, m.enterprise, m.year, m.data_through, carbon)
        write_carbon_ytd(conn, m.enterprise.enterprise_id, m.year, row)
        if intensity:
            store_intensity(conn, m.enterprise, m.year)
    save_prefix(conn, m.enterprise.enterprise_id, m.year, m.prefix.end if m.prefix else m.data_through or
                datetime.now(timezone.utc), m.prefix.to_json() if m.prefix else None,
                input_stamp=m.stamp, versions=metrics_versions(carbon))
    return row


def metrics_versions(carbon: CarbonOptions) -> str:
    """The code, the factor files and the carbon options a year's stored metrics were computed with."""
    return f"{CODE_VERSION} {factors_digest()} {carbon!r}"


def store_intensity(conn: psycopg.Connection, e: Enterprise, year: int) -> None:
    """The ``intensity_ytd`` rows of every enterprise of ``e``'s industry for ``year`` (none for an
    enterprise with no industry): :func:`industry_intensity`, unconditionally."""
    (industry,) = conn.execute("SELECT industry FROM enterprise WHERE enterprise_id = %s",
                               (e.enterprise_id,)).fetchone()
    if industry is not None:
        industry_intensity(conn, industry, year, force=True)


def recorded_intensity_inputs(conn: psycopg.Connection, industry: str, year: int) -> str:
    """Digest of what an industry's intensity reads besides interval energy: its members (code,
    time zone), their production rows overlapping the year and the reference values of those
    products, and the code version."""
    import hashlib
    import json

    rows = conn.execute(
        """SELECT e.code, e.timezone, p.product, p.period_start, p.period_end, p.quantity, p.unit,
                  p.output_value_yuan, r.unit, r.limit_kgce, r.access_kgce, r.advanced_kgce,
                  r.industry_average_kgce, r.standard
           FROM enterprise e
           LEFT JOIN production p ON p.enterprise_id = e.enterprise_id
                AND p.period_start <= make_date(%(y)s, 12, 31) AND p.period_end >= make_date(%(y)s, 1, 1)
           LEFT JOIN product_reference r ON r.product = p.product
           WHERE e.industry = %(i)s ORDER BY 1, 3, 4, 5""", {"i": industry, "y": year}).fetchall()
    return hashlib.sha256(json.dumps([CODE_VERSION, rows], default=str).encode()).hexdigest()


def industry_intensity(conn: psycopg.Connection, industry: str, year: int, *, force: bool = False,
                       energies: dict[str, tuple] | None = None) -> bool:
    """The ``intensity_ytd`` rows of every enterprise of ``industry`` for ``year``: what
    ``greengauge report intensity --industry … --year … --format json`` gives (the same
    :func:`accounting.policy_inputs.intensity_year`, equivalent value, no bottom fraction; unchanged
    rows left alone). Without ``force`` skipped when the recorded inputs' digest and the members
    are those of the rows stored (the caller forces it when intervals of the year changed).
    Returns whether it computed. 晋政规〔2024〕2号 §四(五)."""
    lock(conn, f"greengauge.flows.metrics.intensity.{industry}")  # one writer of an industry's ranking
    digest = recorded_intensity_inputs(conn, industry, year)
    ids = dict(conn.execute("SELECT code, enterprise_id FROM enterprise WHERE industry = %s", (industry,)).fetchall())
    if not force:
        stored = conn.execute("""SELECT count(*), count(*) FILTER (WHERE inputs_sha256 = %s AND industry = %s)
                                 FROM intensity_ytd WHERE year = %s AND enterprise_id = ANY(%s)""",
                              (digest, industry, year, list(ids.values()))).fetchone()
        if stored == (len(ids), len(ids)):
            return False
    out = intensity_year(conn, industry, year, energies=energies)
    for row in out["enterprises"]:
        write_intensity_ytd(conn, ids[row["enterprise"]], year, row)
    conn.execute("UPDATE intensity_ytd SET inputs_sha256 = %s WHERE year = %s AND enterprise_id = ANY(%s) "
                 "AND inputs_sha256 IS DISTINCT FROM %s", (digest, year, list(ids.values()), digest))
    return True


Touched = tuple[int, int, bool, datetime | None, tuple[int | None, dict[str, int]] | None]


def touched_years(ms: list["EnterpriseMetrics"]) -> list[Touched]:
    """(enterprise id, year, whether intervals of the year changed, period end, energy of the year
    to date) of one enterprise's pass: what :func:`intensity_pass` needs of it."""
    return [(m.enterprise.enterprise_id, m.year, bool(m.daily), m.data_through, m.energy)
            for m in ms if m.data_through is not None]


def intensity_pass(url: str, touched: list[Touched]) -> list[tuple[str, int]]:
    """After every enterprise's metrics (:func:`touched_years` of each): each industry-year the pass
    touched, once — forced where an enterprise of the industry had changed intervals in that year,
    otherwise only if its recorded inputs changed. The energy each enterprise's pass computed is
    passed on (:func:`accounting.policy_inputs.intensity_year` takes it where no interval is stored
    after that pass's period end, so the year is not read again). Returns the industry-years computed."""
    by_key: dict[tuple[str, int], bool] = {}
    energies: dict[tuple[str, int], dict[str, tuple]] = {}
    with session(url) as conn:
        rows = conn.execute("SELECT enterprise_id, industry, code FROM enterprise WHERE industry IS NOT NULL").fetchall()
    industry = {eid: (ind, code) for eid, ind, code in rows}
    for eid, year, changed, through, energy in touched:
        if eid not in industry:
            continue
        ind, code = industry[eid]
        by_key[(ind, year)] = by_key.get((ind, year), False) or changed
        if energy is not None and through is not None:
            energies.setdefault((ind, year), {})[code] = (through, *energy)
    done = []
    for (ind, year), changed in sorted(by_key.items()):
        with session(url) as conn, conn.transaction():
            if industry_intensity(conn, ind, year, force=changed, energies=energies.get((ind, year))):
                done.append((ind, year))
    return done


intensity_task = io_task(intensity_pass, task_run_name="intensity")


write_metrics = io_task(store_metrics, task_run_name="write-metrics")


def enterprise_metrics(url: str, e: Enterprise, as_of: datetime, *, year: int | None = None,
                       days: list[date] | None = None,
                       carbon: CarbonOptions = CarbonOptions(), carried: bool = False,
                       intensity: bool = True) -> EnterpriseMetrics:
    """Plain-function form of one enterprise's metrics run (backfill and tests use it; with
    ``intensity`` the industry's ranking is rewritten too)."""
    m = compute_metrics(read_year(url, e, year or year_of(e, as_of), as_of, days, carried=carried), carbon)
    m.carbon = store_metrics(url, m, carbon, intensity=intensity)
    return m


def enterprise_pass(url: str, e: Enterprise, as_of: datetime, carbon: CarbonOptions = CarbonOptions()
                    ) -> list[EnterpriseMetrics]:
    """One enterprise's metrics: :func:`enterprises_pass` of it alone."""
    return enterprises_pass(url, [e], as_of, carbon)[0]


def enterprises_pass(url: str, ents: list[Enterprise], as_of: datetime, carbon: CarbonOptions = CarbonOptions()
                     ) -> list[list[EnterpriseMetrics]]:
    """A batch of enterprises' metrics (a list per enterprise). For each: every local year holding
    intervals changed since its last pass (late data of any age: a year-old import re-opens that
    year), plus this year (and, early in January, the last), plus every closed year stored before
    whose enterprise input stamp or versions moved since (a certificate or a rating entered late),
    each from one bundle; the changed days rebalanced. A closed year with nothing changed is not
    read at all. What the batch reads first (:func:`store.results.pass_start`) and what it writes
    (:func:`store_batch`: results and watermarks in one transaction) cost a round trip each for the
    whole batch. An enterprise whose pass fails keeps its watermark (it is redone in full next
    time); the others are stored, then the first failure is raised with the enterprises it hit.
    The industry's intensity is left to :func:`intensity_pass` (once per industry, after every
    enterprise)."""
    this_year = {e.enterprise_id: year_of(e, as_of) for e in ents}
    with session(url) as conn:
        # every counter point: a fuel counter's change moves carbon, coal and intensity too
        # the carried parts of the current year (another year's, when it is computed: read_year)
        begun = pass_start(conn, ents, prefix_years=tuple(sorted(set(this_year.values()))))
    versions = metrics_versions(carbon)
    out: list[list[EnterpriseMetrics]] = []
    failed: list[tuple[Enterprise, BaseException]] = []
    for e in ents:
        try:
            out.append(_years_of(url, e, as_of, carbon, begun[e.enterprise_id], this_year[e.enterprise_id], versions))
        except Exception as exc:  # the others are still stored; raised below
            failed.append((e, exc))
            out.append([])
    done = {e.enterprise_id for e in ents} - {e.enterprise_id for e, _ in failed}
    store_batch(url, [m for ms in out for m in ms], carbon, {eid: begun[eid].newest for eid in done})
    for ms in out:
        for m in ms:
            m.prefix = None  # stored in metrics_prefix; not carried back to the flow
    if failed:
        raise BatchError(failed)
    return out


def _years_of(url: str, e: Enterprise, as_of: datetime, carbon: CarbonOptions, begun: PassStart, this_year: int,
              versions: str) -> list[EnterpriseMetrics]:
    """The years of one enterprise's pass (:func:`enterprises_pass`), computed, not stored."""
    days = begun.days
    changed = {d.year for d in days}
    # early in January, late readings can still change the last days of the year before; a closed
    # year stored earlier is looked at again too (a certificate entered late moves its stamp)
    years = {year_of(e, as_of - LATE_YEAR_GRACE), this_year} | {y for y in changed | set(begun.stored) if y <= this_year}
    out = []
    for year in sorted(years):
        if year < this_year and year not in changed and year in begun.stored:
            # a closed year stored whole at this input stamp and these versions, no interval of it
            # changed since: the same results again (docs/accounting.md "What a pass recomputes")
            through, at_stamp, at_versions = begun.stored[year]
            if (through >= local_bounds("year", date(year, 1, 1), e.timezone)[1] and begun.stamp is not None
                    and at_stamp == begun.stamp and at_versions == versions):
                continue
        data = read_year(url, e, year, as_of, [d for d in days if d.year == year], carried=True, begun=begun)
        m = compute_metrics(data, carbon)
        if m.prefix is not None:  # what is carried, not the intervals' columns: a batch holds many years
            m.prefix = dataclasses.replace(m.prefix, chunks=[])
        out.append(m)
    return out


enterprise_task = io_task(enterprises_pass, task_run_name=batch_name("metrics"))


@flow(name="metrics", task_runner=task_runner())
def metrics_flow(database_url: str | None = None, enterprise: str | None = None, as_of: datetime | None = None,
                 region: str = CarbonOptions.region,
                 factor_year_offset: int = CarbonOptions.factor_year_offset,
                 factor_fallback: bool = CarbonOptions.factor_fallback,
                 equal_value_kgce_per_kwh: Decimal | None = None,
                 deferred: bool = False) -> list[EnterpriseMetrics]:
    """Daily balance, year-to-date green share, projection and gap to 30 %, carbon and standard coal
    for every enterprise, fanned out per enterprise (``deferred``: to the task workers
    ``prefect task serve`` runs, on any machine; docs/flows.md) (``enterprise_task.map``: the flow's task
    runner runs them concurrently; docs/flows.md says how to spread a pass over machines).
    ``region``, ``factor_year_offset``, ``factor_fallback`` and ``equal_value_kgce_per_kwh``
    choose the CO2 factors and the equal value (see CarbonOptions)."""
    from prefect import unmapped

    url = resolve_url(database_url)
    carbon = CarbonOptions(region, factor_year_offset, factor_fallback, equal_value_kgce_per_kwh)
    now = as_of or datetime.now(timezone.utc)
    log = get_run_logger()
    out = []
    futures = enterprise_task.map(unmapped(url), batches(list_enterprises(url, enterprise)), unmapped(now),
                                  unmapped(carbon), deferred=deferred)
    passes = [ms for batch in futures.result() for ms in batch]
    for ind, year in intensity_task(url, [t for ms in passes for t in touched_years(ms)]):
        log.info("intensity of %s %d recomputed", ind, year)
    for ms in passes:
        for m in ms:
            pct = (f"{percent_text(m.share.share, threshold=m.share.threshold)} ({m.share.status})"
                   if m.share and m.share.share is not None else "n/a")
            log.info("%s %d: %d days rebalanced, year-to-date green share %s, carbon %s", m.enterprise.code,
                     m.year, len(m.daily), pct, m.carbon["status"] if m.carbon else "n/a")
            if m.carbon and m.carbon.get("note"):
                log.warning("%s %d carbon: %s", m.enterprise.code, m.year, m.carbon["note"])
            out.append(m)
    return out
