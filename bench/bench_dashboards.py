"""Benchmark: every dashboard panel's and alert rule's query, as the organization's reader role,
beside a bare scan of the rows it needs.

Creates a database of its own on the test PostgreSQL (GREENGAUGE_TEST_ADMIN_URL, default
postgresql://postgres@127.0.0.1:5432/postgres) holding PARKS parks of ENTERPRISES demo plants
each (the bundled demo site under other codes, one simulated day of minute readings, the rollup,
metrics, eligibility and data-quality flows run once), a reader role per park and one for the
bureau. For each panel it prints

* the panel: its SQL with Grafana's macros expanded (the simulated day, dashboards/macros.py),
  run as the park's reader (the bureau's for Bureau panels) through the ``reader`` views, and
* the bare scan: the rows it needs fetched as the owner from the public tables with no join, view or
  aggregate (for the live panels: the power readings of the day of the enterprise or the park; for
  the hourly panel: those hourly rows; for the small result tables: the whole tables it reads),

median of 5 runs each, and their ratio (printed, never asserted).

    .venv/bin/python bench/bench_dashboards.py                 # 2 parks x 3 enterprises
    .venv/bin/python bench/bench_dashboards.py --parks 5 --enterprises 10
    .venv/bin/python bench/bench_dashboards.py --explain plant_live_power
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from dashboards.alerts import rules  # noqa: E402
from dashboards.macros import TimeRange, Variable, expand  # noqa: E402
from dashboards.panels import DASHBOARDS  # noqa: E402
from greengauge.demo import DEMO_SITE  # noqa: E402
from metrics.periods import local_bounds  # noqa: E402
from store.db import create_database, drop_database, with_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.tenancy import add_reader, drop_roles, reader_url  # noqa: E402
from tests.dashboards.conftest import add_health, fill_results, write_site_day  # noqa: E402
from tests.flows.conftest import DAY  # noqa: E402

ADMIN_URL = os.environ.get("GREENGAUGE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# the rows a panel needs, read bare: its points' ids listed, no view, join or aggregate
POINTS = """SELECT p.point_id FROM point p JOIN device d USING (device_id) JOIN site s USING (site_id)
            JOIN enterprise e USING (enterprise_id) JOIN park k USING (park_id) WHERE {where}"""
SCANS = {
    "plant_live_power": ("SELECT * FROM reading WHERE point_id = ANY(%(points)s) AND ts BETWEEN %(t0)s AND %(t1)s",
                         "p.quantity = 'active_power' AND e.code = 'e-00-000'"),
    "park_live_load": ("SELECT * FROM reading WHERE point_id = ANY(%(points)s) AND ts BETWEEN %(t0)s AND %(t1)s",
                       "p.quantity = 'active_power' AND k.code = 'park-00'"),
    "plant_recycling_hourly": ("SELECT * FROM energy_hourly WHERE point_id = ANY(%(points)s) "
                               "AND bucket_start BETWEEN %(t0)s AND %(t1)s", "p.role = 'subproject' AND e.code = 'e-00-000'"),
}


def bare_scan(owner: psycopg.Connection, panel, tr: TimeRange) -> str:
    if panel.key in SCANS:
        sql, where = SCANS[panel.key]
        points = [r[0] for r in owner.execute(POINTS.format(where=where))]
        return psycopg.ClientCursor(owner).mogrify(sql, {"points": points, "t0": tr.start, "t1": tr.end})
    return " UNION ALL ".join(f"SELECT 1 FROM (SELECT * FROM public.{t}) x" for t in panel.reads)


def median_s(conn: psycopg.Connection, sql: str, runs: int = 5) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        n = len(conn.execute(sql.encode()).fetchall())
        times.append(time.perf_counter() - t)
        conn.rollback()
    return statistics.median(times), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parks", type=int, default=2)
    ap.add_argument("--enterprises", type=int, default=3, help="per park")
    ap.add_argument("--explain", metavar="PANEL", help="also print EXPLAIN ANALYZE of this panel's query")
    args = ap.parse_args()
    name = f"gg_bench_{uuid.uuid4().hex[:10]}"
    create_database(ADMIN_URL, name)
    url = with_database(ADMIN_URL, name)
    try:
        demo = Path(DEMO_SITE).read_text(encoding="utf-8")
        t0 = time.perf_counter()
        with psycopg.connect(url) as conn, tempfile.TemporaryDirectory() as tmp:
            upgrade(conn)
            for p in range(args.parks):
                for e in range(args.enterprises):
                    text = demo.replace("jinjiang-eco", f"park-{p:02d}").replace("jj-shoes", f"e-{p:02d}-{e:03d}")
                    f = Path(tmp) / f"site-{p}-{e}.yaml"
                    f.write_text(text, encoding="utf-8")
                    write_site_day(conn, f, seed=p * 1000 + e, recycling_stops=timedelta(hours=1 + e % 3))
        start, end = local_bounds("day", DAY, "Asia/Shanghai")
        as_of = end + timedelta(minutes=30)
        fill_results(url, as_of)
        with psycopg.connect(url) as conn:
            add_health(conn, as_of)
            park_reader = reader_url(url, add_reader(conn, park="park-00"))
            bureau_reader = reader_url(url, add_reader(conn, bureau=True))
            conn.commit()
            conn.execute("ANALYZE")  # what autovacuum does on a live database
            conn.commit()
            readings = conn.execute("SELECT count(*) FROM reading").fetchone()[0]
        print(f"{args.parks} parks x {args.enterprises} enterprises, {readings} readings; "
              f"filled in {time.perf_counter() - t0:.1f} s\n")
        tr = TimeRange(start, end - timedelta(milliseconds=1))
        parks = tuple(f"park-{p:02d}" for p in range(args.parks))
        codes = tuple(f"e-{p:02d}-{e:03d}" for p in range(args.parks) for e in range(args.enterprises))
        print(f"{'panel':28} {'rows':>6} {'panel ms':>10} {'scan rows':>10} {'scan ms':>9} {'ratio':>7}")
        with psycopg.connect(park_reader) as pconn, psycopg.connect(bureau_reader) as bconn, \
                psycopg.connect(url) as owner:
            for dash, panels in DASHBOARDS.items():
                if dash == "bureau":
                    conn = bconn
                    vars = {"park": Variable("$__all", multi=True, include_all=True, options=parks),
                            "enterprise": Variable("$__all", multi=True, include_all=True, options=codes),
                            "year": Variable(str(DAY.year))}
                else:
                    conn = pconn
                    vars = {"park": Variable("park-00"), "enterprise": Variable("e-00-000"),
                            "year": Variable(str(DAY.year))}
                for panel in panels:
                    sec, n = median_s(conn, expand(panel.sql, tr, vars))
                    if panel.key == args.explain:
                        plan = conn.execute(("EXPLAIN (ANALYZE, BUFFERS) " + expand(panel.sql, tr, vars)).encode())
                        explained = "\n".join(r[0] for r in plan)
                        conn.rollback()
                    ssec, sn = median_s(owner, bare_scan(owner, panel, tr))
                    print(f"{panel.key:28} {n:6d} {sec * 1e3:10.1f} {sn:10d} {ssec * 1e3:9.1f} "
                          f"{sec / ssec if ssec else float('nan'):7.2f}")
            if args.explain:
                print(f"\nEXPLAIN ANALYZE {args.explain}:\n{explained}\n")
            for rule in rules():
                sec, n = median_s(bconn, expand(rule.sql, tr))
                print(f"{'alert ' + rule.key:28} {n:6d} {sec * 1e3:10.1f}")
    finally:
        drop_database(ADMIN_URL, name)
        drop_roles(ADMIN_URL, name)


if __name__ == "__main__":
    main()
