"""Benchmark: every dashboard panel's and alert rule's query on the province benchmark's data, as the
organization's reader role, beside a bare scan of the rows it needs.

Creates a database of its own on the test PostgreSQL (GREENGAUGE_TEST_ADMIN_URL, default
postgresql://postgres@127.0.0.1:5432/postgres) holding bench/bench_province.py's data: ENTERPRISES
enterprises × 6 counter points and DAYS days of 2025 (Asia/Shanghai; 365: the full local year) of
15-minute intervals COPYed into ``interval_energy`` (``bench_province.fill``), then, each step timed
and printed:

* **parks**: the enterprises in parks of PARK_SIZE (``park-00``, ``park-01``, …; SQL after ``fill``,
  which puts them in none), and a year of output value per enterprise (a ``production`` row, so
  that the intensity ranking has ranks);
* **hourly**: ``energy_hourly`` over every interval (TimescaleDB: the rollup's refresh of the
  continuous aggregate over the data's range; plain PostgreSQL: the rows the rollup's
  ``refresh_sums`` writes, by one SQL ``INSERT … GROUP BY`` — refresh_sums itself, handed a year
  of buckets, is planned quadratically: see :func:`fill_hourly`);
* **power**: an ``active_power`` point on each enterprise's grid-import, PV, battery-charge and
  recycling devices and a minute reading of each over the data's last local day, for every
  enterprise (the live panels' time range; ``--power-days D``: the last D days; the recycling line's
  meter of every third enterprise stops two hours early: a stale device). The ``reading`` table holds
  only those days: a live site keeps a year of minute readings, which this machine cannot hold for a
  province;
* **results**: the real flows' plain functions, as their mapped tasks run them, JOBS processes at a
  time, for the first K enterprises (below): ``flows.metrics.enterprise_pass`` (daily_balance, green_share_ytd, projection, carbon_ytd,
  intensity_ytd) and ``flows.eligibility.enterprise_decisions`` per enterprise, then
  ``flows.quality.check`` (findings) as of the data's end;
* **health**: the collectors' view of each device (``store.health.upsert_health``): every battery
  away, the others answering; a device-error finding per battery.

The flows run for the first K enterprises (``--flow-enterprises``, default 4; 0: all), the others
out of the industry meanwhile; the other enterprises' result rows are copies of theirs, made by SQL
(:func:`copy_results`; printed as such): rows of the right number and shape for timing the panels,
not those enterprises' own figures. A year's pass takes tens of seconds per enterprise, and where
each enterprise's metrics pass re-ranks its whole industry (flows.metrics.store_intensity reading
every member's year, under one lock per industry) the flows for all are quadratic: 20 enterprises
of one industry took about 9 minutes per enterprise on this shared machine. Where the flow ranks
each industry once after the passes (flows.metrics.intensity_pass), the bench calls it once too. By SQL also:
the parks, the output values and (plain PostgreSQL) energy_hourly. A park's reader role (``park-00``)
and the bureau's are created (store/tenancy.py, docs/tenancy.md). For each panel it then prints

* the panel: its SQL with Grafana's macros expanded (dashboards/macros.py; time range: the data's
  last local day for the live panels, the local year up to the data's end for the others, both for
  the hourly panel), run as the park's reader (the bureau's for Bureau panels) through the
  ``reader`` views, and
* the bare scan: the rows it needs fetched as the owner from the public tables with no join, view
  or aggregate, their ids listed (for the live panels: the power readings of the day of the
  enterprise or the park; for the hourly panel: those hourly rows; for result panels: the
  scope's rows of the year, or of the day or month for the balance panels),

median of 5 runs each, and their ratio; then each alert rule's query as the park's and as the
bureau's reader beside the rows it reads (printed, never asserted).

    .venv/bin/python bench/bench_dashboards.py                       # 20 enterprises, full year, flows for 4
    .venv/bin/python bench/bench_dashboards.py --enterprises 100     # bench_province's default
    .venv/bin/python bench/bench_dashboards.py --enterprises 20 --flow-enterprises 0    # the flows for all
    .venv/bin/python bench/bench_dashboards.py --enterprises 4 --days 30 --explain park_live_load
    .venv/bin/python bench/bench_dashboards.py --also main   # and main's SQL of each panel changed since
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import statistics
import subprocess
import sys
import types
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402

from bench_province import ROLES, fill, quarter_wh  # noqa: E402
from dashboards.alerts import rules  # noqa: E402
from dashboards.macros import TimeRange, Variable, expand  # noqa: E402
from dashboards.panels import DASHBOARDS  # noqa: E402
from metrics.periods import local_bounds  # noqa: E402
from store.db import storage_mode  # noqa: E402
from scratch import scratch_database  # noqa: E402
from store.tenancy import add_reader, reader_url  # noqa: E402

TZ = "Asia/Shanghai"
#: devices with a live power point: the power of each kind the live panels draw (grid, PV, battery),
#: and the recycling line's (no kind: not drawn, still read)
POWER_ROLES = ("grid_import", "pv_generation", "storage_charge", "subproject")
RUNS = 5


# -- the data ------------------------------------------------------------------------------------

def timed(label: str):
    class _T:
        def __enter__(self):
            self.t = time.perf_counter()
            print(f"  {label} …", end="", flush=True)

        def __exit__(self, *exc):
            if exc[0] is None:
                print(f" {time.perf_counter() - self.t:.1f} s", flush=True)
    return _T()


def add_parks(conn: psycopg.Connection, park_size: int) -> list[str]:
    """Parks of ``park_size`` enterprises in code order, and a year's output value of each."""
    ents = [r[0] for r in conn.execute("SELECT enterprise_id FROM enterprise ORDER BY code")]
    parks = []
    for i in range(0, len(ents), park_size):
        code = f"park-{i // park_size:02d}"
        pid = conn.execute("INSERT INTO park (code, name) VALUES (%s, %s) RETURNING park_id",
                           (code, f"Park {i // park_size}")).fetchone()[0]
        conn.execute("UPDATE enterprise SET park_id = %s WHERE enterprise_id = ANY(%s)", (pid, ents[i:i + park_size]))
        parks.append(code)
    conn.execute("""INSERT INTO production (enterprise_id, product, period_start, period_end, quantity, unit,
                                            output_value_yuan)
                    SELECT enterprise_id, 'shoes', '2025-01-01', '2025-12-31', 100 + enterprise_id, '万双',
                           (40000000 + 100000 * enterprise_id)::numeric(18, 2)
                    FROM enterprise""")
    return parks


def fill_hourly(url: str, start: datetime, end: datetime) -> int:
    """energy_hourly of every interval: TimescaleDB, the continuous aggregate refreshed over the
    data's range (store.rollups.refresh_continuous_aggregate); plain PostgreSQL, the rows
    store.rollups.refresh_sums would write (sum, intervals, estimated and suspect intervals per UTC
    hour), by one SQL ``INSERT … GROUP BY``: refresh_sums itself, handed every bucket of a year,
    is planned as a merge join on the point alone (hours × intervals per point), far too slow here."""
    from store.rollups import EPOCH_SQL, refresh_continuous_aggregate

    with psycopg.connect(url) as conn:
        plain = storage_mode(conn) == "postgresql"
        if plain:
            conn.execute(f"""
                INSERT INTO energy_hourly (point_id, bucket_start, energy_wh, intervals, estimated_intervals,
                                           suspect_intervals)
                SELECT point_id, date_bin('1 hour', bucket_start, {EPOCH_SQL}), sum(energy_wh), count(*),
                       count(*) FILTER (WHERE estimated), count(*) FILTER (WHERE suspect)
                FROM interval_energy GROUP BY 1, 2""")
    if not plain:
        refresh_continuous_aggregate(url, start, end)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE energy_hourly")
        return conn.execute("SELECT count(*) FROM energy_hourly").fetchone()[0]


def write_power(url: str, day_start: datetime, day_end: datetime) -> int:
    """An active_power point on each POWER_ROLES device and its minute readings over [day_start,
    day_end): the role's quarter-hour profile as watts; the recycling meter of every third
    enterprise stops two hours before the end."""
    k0 = int((day_start - local_bounds("year", date(2025, 1, 1), TZ)[0]).total_seconds()) // 900
    n = 0
    with psycopg.connect(url) as conn:
        devs = conn.execute(
            """SELECT d.device_id, d.name, e.code FROM device d JOIN site s USING (site_id) JOIN enterprise e
               USING (enterprise_id) WHERE d.name = ANY(%s) ORDER BY d.device_id""", (list(POWER_ROLES),)).fetchall()
        points = [(conn.execute(
            """INSERT INTO point (device_id, name, quantity, kind, unit)
               VALUES (%s, %s, 'active_power', 'gauge', 'W') RETURNING point_id""",
            (did, f"{code}.{role}.power")).fetchone()[0], role, code) for did, role, code in devs]
        with conn.cursor().copy("COPY reading (point_id, ts, value, quality, received_at) FROM STDIN") as cp:
            for pid, role, code in points:
                stop = day_end - timedelta(hours=2) if role == "subproject" and int(code[1:]) % 3 == 0 else day_end
                buf = io.StringIO()
                t, i = day_start, 0
                while t < stop:
                    w = quarter_wh(role, k0 + i // 15, pid) * 4
                    buf.write(f"{pid}\t{t.isoformat()}\t{w}\t0\t{(t + timedelta(seconds=2)).isoformat()}\n")
                    t += timedelta(minutes=1)
                    i += 1
                    n += 1
                cp.write(buf.getvalue())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE reading")
    return n


def _one_enterprise(args) -> tuple[str, float, float, int, list]:
    from flows.eligibility import enterprise_decisions
    from flows.metrics import enterprise_pass
    from store.results import enterprises

    import flows.metrics

    url, code, as_of = args
    with psycopg.connect(url) as conn:
        (e,) = enterprises(conn, code)
    t = time.perf_counter()
    ms = enterprise_pass(url, e, as_of)
    # where the metrics flow ranks each industry once after every enterprise (flows.metrics.intensity_pass)
    touched = flows.metrics.touched_years(ms)
    m = time.perf_counter() - t
    t = time.perf_counter()
    n = len(enterprise_decisions(url, e, as_of, None))
    return code, m, time.perf_counter() - t, n, touched


def fill_results(url: str, as_of: datetime, jobs: int, limit: int | None = None) -> tuple[float, float, int]:
    """The metrics and eligibility passes of every enterprise (the first ``limit`` in code order),
    ``jobs`` processes at a time; (sum of metrics seconds, sum of eligibility seconds, decisions recorded)."""
    with psycopg.connect(url) as conn:
        codes = [r[0] for r in conn.execute("SELECT code FROM enterprise ORDER BY code")][:limit]
        # the others out of the industry meanwhile: each pass ranks its whole industry (store_intensity
        # reads every member's year), which would make these K passes cost K × N enterprise-years
        conn.execute("UPDATE enterprise SET industry = NULL WHERE code <> ALL(%s)", (codes,))
    work = [(url, c, as_of) for c in codes]
    if jobs <= 1:
        out = [_one_enterprise(w) for w in work]
    else:
        with mp.get_context("spawn").Pool(jobs) as pool:
            out = pool.map(_one_enterprise, work, chunksize=1)
    touched = [t for o in out for t in o[4]]
    if touched:
        from flows.metrics import intensity_pass

        intensity_pass(url, touched)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE enterprise SET industry = 'footwear' WHERE industry IS NULL")
    return sum(o[1] for o in out), sum(o[2] for o in out), sum(o[3] for o in out)


#: the result tables the panels read, copied by :func:`copy_results`
COPIED = ("daily_balance", "green_share_ytd", "green_share_projection", "carbon_ytd", "intensity_ytd",
          "eligibility_decision")


def copy_results(url: str, limit: int) -> dict[str, int]:
    """The results of each enterprise past the first ``limit`` (code order), copied by SQL from
    enterprise number i mod ``limit`` (the same profile: bench_province.quarter_wh differs by the
    seed's few Wh); first decision versions only, as a first evaluation records; intensity_ytd
    rows too (their ranks then repeat: the K ranked among themselves). Rows of the right number and shape for timing; not these enterprises' figures."""
    out = {}
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT enterprise_id FROM enterprise ORDER BY code")]
        conn.execute("CREATE TEMP TABLE copy_map (src bigint, dst bigint)")
        with conn.cursor().copy("COPY copy_map FROM STDIN") as cp:
            for i, dst in enumerate(ids[limit:], start=limit):
                cp.write_row((ids[i % limit], dst))
        for t in COPIED:
            cols = [r[0] for r in conn.execute(
                """SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s
                   AND coalesce(column_default, '') NOT LIKE 'nextval%%' ORDER BY ordinal_position""", (t,))]
            sel = ", ".join("m.dst" if c == "enterprise_id" else f"t.{c}" for c in cols)
            where = " AND t.version = 1" if t == "eligibility_decision" else ""
            out[t] = conn.execute(
                f"""INSERT INTO {t} ({', '.join(cols)}) SELECT {sel} FROM {t} t JOIN copy_map m ON m.src = t.enterprise_id
                    WHERE true{where} ON CONFLICT DO NOTHING""").rowcount
    return out


def add_health(url: str, as_of: datetime) -> None:
    """Every battery device away for 20 minutes with a Modbus error finding, every other device ok
    (what collectors/health.py upserts)."""
    from model.findings import Finding, FindingKind, Subject
    from store.health import HealthRow, add_findings, upsert_health

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT device_id, name FROM device ORDER BY device_id").fetchall()
        away = {"storage_charge", "storage_discharge"}
        add_findings(conn, [Finding(FindingKind.DEVICE_ERROR, Subject(did, None, f"device {did}"),
                                    as_of - timedelta(hours=3), data={"text": "Modbus exception 4"}, count=3,
                                    last_seen=as_of - timedelta(hours=1))
                            for did, name in rows if name in away])
        upsert_health(conn, [
            HealthRow(did, "away", as_of - timedelta(minutes=20), as_of, as_of - timedelta(minutes=20), 20, None,
                      "timed out") if name in away else
            HealthRow(did, "ok", as_of - timedelta(days=1), as_of, as_of, 0, 12.5, None) for did, name in rows])
        conn.commit()


# -- the bare scans ------------------------------------------------------------------------------

class Scope:
    """The ids of an organization's enterprises, sites, devices and points (listed by the owner)."""

    def __init__(self, owner: psycopg.Connection, where: str, params: tuple = ()):
        rows = owner.execute(
            f"""SELECT e.enterprise_id, s.site_id, d.device_id, p.point_id, p.quantity, p.role,
                       EXISTS (SELECT 1 FROM point q WHERE q.device_id = d.device_id AND q.role <> 'subproject')
                FROM enterprise e LEFT JOIN park k USING (park_id) JOIN site s USING (enterprise_id)
                JOIN device d USING (site_id) JOIN point p USING (device_id) WHERE {where}""", params).fetchall()
        self.enterprises = sorted({r[0] for r in rows})
        self.sites = sorted({r[1] for r in rows})
        self.devices = sorted({r[2] for r in rows})
        self.points = sorted({r[3] for r in rows})
        # the power points the live panels draw: of devices with a grid, PV or battery counter
        self.power = sorted({r[3] for r in rows if r[4] == "active_power" and r[6]})
        self.subproject = sorted({r[3] for r in rows if r[5] == "subproject"})


def table_scan(table: str, scope: Scope, year: int, tr: TimeRange, day: date) -> tuple[str, dict]:
    """The rows of ``table`` a panel of ``scope`` needs, by their keys (no join, view or aggregate)."""
    p = {"e": scope.enterprises, "s": scope.sites, "d": scope.devices, "p": scope.points, "y": year,
         "t0": tr.start, "t1": tr.end, "day": day, "month": day.replace(day=1)}
    by_year = "SELECT * FROM public.{t} WHERE enterprise_id = ANY(%(e)s) AND year = %(y)s"
    sql = {
        "daily_balance": "SELECT * FROM public.daily_balance WHERE enterprise_id = ANY(%(e)s) AND day = %(day)s",
        "site": "SELECT * FROM public.site WHERE enterprise_id = ANY(%(e)s)",
        "device": "SELECT * FROM public.device WHERE site_id = ANY(%(s)s)",
        "point": "SELECT * FROM public.point WHERE device_id = ANY(%(d)s)",
        "device_health": "SELECT * FROM public.device_health WHERE device_id = ANY(%(d)s)",
        "dq_finding": "SELECT * FROM public.finding WHERE origin = 'quality' AND device_id = ANY(%(d)s) "
                      "AND closed_at IS NULL",
        "collector_finding": "SELECT * FROM public.finding WHERE origin = 'collector' AND device_id = ANY(%(d)s) "
                             "AND last_seen BETWEEN %(t0)s AND %(t1)s",
        "reading": "SELECT * FROM public.reading WHERE point_id = ANY(%(pw)s) AND ts BETWEEN %(t0)s AND %(t1)s",
        "energy_hourly": "SELECT * FROM public.energy_hourly WHERE point_id = ANY(%(sp)s) "
                         "AND bucket_start BETWEEN %(t0)s AND %(t1)s",
    }.get(table, by_year.format(t=table))
    return sql, {**p, "pw": scope.power, "sp": scope.subproject}


def panel_scans(panel, scope: Scope, year: int, tr: TimeRange, day: date) -> list[tuple[str, dict]]:
    reads = list(panel.reads)
    if panel.key in ("plant_live_power", "park_live_load"):
        reads = ["point", "reading"]  # the devices' kinds come from their points
    elif panel.key == "plant_recycling_hourly":
        reads = ["energy_hourly"]
    out = [table_scan(t, scope, year, tr, day) for t in reads]
    if panel.key == "plant_month_balance":
        out = [("SELECT * FROM public.daily_balance WHERE enterprise_id = ANY(%(e)s) "
                "AND day BETWEEN %(month)s AND %(day)s", out[0][1])]
    return out


ALERT_SCANS = {
    "device-stale": ["SELECT * FROM public.device_health WHERE device_id = ANY(%(d)s) AND status = 'away'",
                     "SELECT * FROM public.device WHERE site_id = ANY(%(s)s)"],
    "data-gap": ["SELECT * FROM public.finding WHERE origin = 'quality' AND device_id = ANY(%(d)s) "
                 "AND closed_at IS NULL AND kind IN ('stale_device', 'gap')",
                 "SELECT * FROM public.device WHERE site_id = ANY(%(s)s)"],
    "completeness": ["SELECT * FROM public.green_share_ytd WHERE enterprise_id = ANY(%(e)s)"],
    "projection": ["SELECT * FROM public.green_share_projection WHERE enterprise_id = ANY(%(e)s)"],
}


def panels_at(rev: str) -> dict[str, object]:
    """The panels of dashboards/panels.py as of git revision ``rev`` (to time a panel's old SQL)."""
    root = Path(__file__).resolve().parent.parent
    src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:dashboards/panels.py"], capture_output=True,
                         text=True, check=True).stdout
    mod = types.ModuleType(f"_panels_at_{uuid.uuid4().hex[:6]}")
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    exec(compile(src, f"{rev}:dashboards/panels.py", "exec"), mod.__dict__)
    return {p.key: p for ps in mod.DASHBOARDS.values() for p in ps}


def median_s(conn: psycopg.Connection, sqls: list[tuple[str, dict | None]], runs: int = RUNS) -> tuple[float, int]:
    """Median seconds of fetching every row of the statements (in order, one run), and the rows."""
    times, n = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        n = 0
        for sql, params in sqls:
            n += len(conn.execute(sql.encode() if params is None else sql, params).fetchall())
        times.append(time.perf_counter() - t)
        conn.rollback()
    return statistics.median(times), n


def explain(conn: psycopg.Connection, sql: str) -> str:
    plan = "\n".join(r[0] for r in conn.execute(("EXPLAIN (ANALYZE, BUFFERS) " + sql).encode()))
    conn.rollback()
    return plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enterprises", type=int, default=20)
    ap.add_argument("--days", type=int, default=365, help="days of 2025 with intervals (365: the full year)")
    ap.add_argument("--park-size", type=int, default=10, help="enterprises per park")
    ap.add_argument("--jobs", type=int, default=2, help="processes running the metrics and eligibility passes")
    ap.add_argument("--flow-enterprises", type=int, metavar="K", default=4,
                    help="run the flows for the first K enterprises only and copy their results to the others "
                         "by SQL (default 4; 0: the flows for all, which costs N² enterprise-years: each "
                         "pass ranks the whole industry)")
    ap.add_argument("--power-days", type=int, default=1, metavar="D",
                    help="minute power readings of the last D days (default 1: the live panels' day only)")
    ap.add_argument("--explain", metavar="PANEL", help="also print EXPLAIN ANALYZE of this panel's query "
                    "(PANEL@REV: of REV's, with --also)")
    ap.add_argument("--also", metavar="REV", help="also time each panel whose SQL differs at git revision REV "
                    "(a row PANEL@REV)")
    ap.add_argument("--keep", action="store_true", help="keep the database (prints its name)")
    args = ap.parse_args()
    other = panels_at(args.also) if args.also else {}
    year_start, _ = local_bounds("year", date(2025, 1, 1), TZ)
    end = year_start + timedelta(days=args.days)
    as_of = end + timedelta(hours=1, minutes=1)  # as bench_province: complete days for eligibility
    last_day = (end - timedelta(seconds=1)).astimezone(ZoneInfo(TZ)).date()
    day_start, day_end = local_bounds("day", last_day, TZ)
    year = last_day.year
    with scratch_database("gg_bench_dash", keep=args.keep, roles=True) as url:
        with psycopg.connect(url) as conn:
            mode = storage_mode(conn)
        print(f"{args.enterprises} enterprises × {len(ROLES)} counter points × {args.days} days of 2025, "
              f"parks of {args.park_size}, storage {mode}; filling:", flush=True)
        t_all = time.perf_counter()
        with timed("intervals (bench_province.fill, COPY)"):
            n_int = fill(url, args.enterprises, year_start, end)
        with timed("parks and output values (SQL)"), psycopg.connect(url) as conn:
            parks = add_parks(conn, args.park_size)
        with timed("energy_hourly (" + ("SQL INSERT … GROUP BY hour" if mode == "postgresql" else
                                      "refresh of the continuous aggregate") + ")"):
            n_hourly = fill_hourly(url, year_start, end)
        power_from = day_start - timedelta(days=args.power_days - 1)
        with timed(f"power readings of {args.power_days} day(s) to {last_day} (COPY)"):
            n_power = write_power(url, power_from, day_end)
        t = time.perf_counter()
        real = min(args.flow_enterprises or args.enterprises, args.enterprises)  # 0: all
        print(f"  metrics + eligibility passes of {real} enterprises ({args.jobs} processes) …", end="", flush=True)
        m_s, e_s, n_dec = fill_results(url, as_of, args.jobs, real)
        print(f" {time.perf_counter() - t:.1f} s (per enterprise: metrics {m_s / real:.1f} s, "
              f"eligibility {e_s / real:.1f} s; {n_dec} decisions)", flush=True)
        if real < args.enterprises:
            with timed(f"results of the other {args.enterprises - real} copied by SQL (NOT the flows)"):
                copied = copy_results(url, real)
            print("    copied: " + ", ".join(f"{t} {n:,}" for t, n in copied.items()), flush=True)
        with timed("data-quality check (flows.quality.check)"):
            from flows.quality import check

            q = check(url, day_end)
        with timed("device health (store.health)"):
            add_health(url, day_end)
        with psycopg.connect(url) as conn:
            park_reader = reader_url(url, add_reader(conn, park=parks[0]))
            bureau_reader = reader_url(url, add_reader(conn, bureau=True))
            conn.commit()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")  # what autovacuum does on a live database
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (
                "daily_balance", "green_share_ytd", "green_share_projection", "carbon_ytd", "intensity_ytd",
                "eligibility_decision", "finding")}
        print(f"filled in {time.perf_counter() - t_all:.1f} s: {n_int:,} intervals, {n_hourly:,} hourly rows, "
              f"{n_power:,} power readings, {len(q.opened)} quality findings opened; "
              + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + "\n", flush=True)

        day = TimeRange(day_start, day_end - timedelta(milliseconds=1))
        whole = TimeRange(year_start, day_end - timedelta(milliseconds=1), interval=timedelta(hours=1))
        with psycopg.connect(url) as owner:
            codes = [r[0] for r in owner.execute("SELECT code FROM enterprise ORDER BY code")]
            park_codes = [r[0] for r in owner.execute(
                "SELECT e.code FROM enterprise e JOIN park k USING (park_id) WHERE k.code = %s ORDER BY e.code",
                (parks[0],))]
            scopes = {"plant": Scope(owner, "e.code = %s", (park_codes[0],)),
                      "park": Scope(owner, "k.code = %s", (parks[0],)), "bureau": Scope(owner, "true")}
        print(f"plant: {park_codes[0]}; park: {parks[0]} ({len(park_codes)} enterprises); "
              f"bureau: {len(parks)} parks, {len(codes)} enterprises; year {year}, day {last_day}\n")
        print(f"{'panel':28} {'range':5} {'rows':>6} {'panel ms':>9} {'scan rows':>10} {'scan ms':>8} {'ratio':>7}")
        explained = None
        with psycopg.connect(park_reader) as pconn, psycopg.connect(bureau_reader) as bconn, \
                psycopg.connect(url) as owner:
            for dash, panels in DASHBOARDS.items():
                if dash == "bureau":
                    conn = bconn
                    vars = {"park": Variable("$__all", multi=True, include_all=True, options=tuple(parks)),
                            "enterprise": Variable("$__all", multi=True, include_all=True, options=tuple(codes)),
                            "year": Variable(str(year))}
                else:
                    conn = pconn
                    vars = {"park": Variable(parks[0]), "enterprise": Variable(park_codes[0]),
                            "year": Variable(str(year))}
                for panel in panels:
                    live = "reading" in panel.reads
                    ranges = [("day", day), ("year", whole)] if panel.key == "plant_recycling_hourly" else \
                        [("day", day)] if live else [("year", whole)]
                    versions = [(panel.key, panel.sql)]
                    if panel.key in other and other[panel.key].sql != panel.sql:
                        versions.append((f"{panel.key}@{args.also}", other[panel.key].sql))
                    for rname, tr in ranges:
                        ssec, sn = median_s(owner, panel_scans(panel, scopes[dash], year, tr, last_day))
                        for label, text in versions:
                            sql = expand(text, tr, vars)
                            sec, n = median_s(conn, [(sql, None)])
                            if label == args.explain:
                                explained = explain(conn, sql)
                            print(f"{label:28} {rname:5} {n:6d} {sec * 1e3:9.1f} {sn:10d} {ssec * 1e3:8.1f} "
                                  f"{sec / ssec if ssec else float('nan'):7.2f}", flush=True)
            print(f"\n{'alert rule':28} {'org':6} {'rows':>5} {'rule ms':>9} {'scan rows':>10} {'scan ms':>8} "
                  f"{'ratio':>7}")
            for org, conn, scope in (("park", pconn, scopes["park"]), ("bureau", bconn, scopes["bureau"])):
                for rule in rules():
                    sql = expand(rule.sql, day)
                    sec, n = median_s(conn, [(sql, None)])
                    p = {"e": scope.enterprises, "s": scope.sites, "d": scope.devices}
                    ssec, sn = median_s(owner, [(s, p) for s in ALERT_SCANS[rule.key]])
                    print(f"{rule.key:28} {org:6} {n:5d} {sec * 1e3:9.1f} {sn:10d} {ssec * 1e3:8.1f} "
                          f"{sec / ssec if ssec else float('nan'):7.2f}", flush=True)
        if args.explain:
            print(f"\nEXPLAIN ANALYZE {args.explain}:\n{explained or '(no such panel)'}\n")


if __name__ == "__main__":
    main()
