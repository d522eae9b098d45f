"""Benchmark: rollup of raw counter readings to 15-minute interval energy (flows/rollup.py) against
a bare ``SELECT point_id, ts, value FROM reading ORDER BY point_id, ts`` of the same rows, in the
same run, on the same database, each in a process of its own whose peak RSS is printed. The bare
SELECT streams tuples through a server-side cursor; the rollup streams each point's readings as
packed columns. The ratio is printed, not asserted (goal: at most 2x).

    python bench/bench_rollup.py                     # 10 M readings, 1,000 points
    python bench/bench_rollup.py --readings 200000   # a quick run

Uses a database of its own on GREENGAUGE_TEST_ADMIN_URL's server (default: the local PostgreSQL),
dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.rollup import rollup  # noqa: E402
from store.db import create_database, drop_database, with_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402

ADMIN_URL = os.environ.get("GREENGAUGE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def populate(url: str, readings: int, points: int, step_s: int, glitches: int = 0) -> int:
    per_point = readings // points
    with psycopg.connect(url) as conn:
        upgrade(conn)
        conn.autocommit = False
        conn.execute("INSERT INTO enterprise (code, name) VALUES ('bench', 'Bench Co')")
        conn.execute("INSERT INTO site (enterprise_id, code, name) SELECT enterprise_id, 'main', 'Main' FROM enterprise")
        conn.execute("""INSERT INTO device (site_id, name, profile, transport, poll_interval_s)
                        SELECT site_id, 'meter' || g, 'generic-3ph-meter', '{}'::jsonb, %s
                        FROM site, generate_series(1, %s) g""", (step_s, points))
        conn.execute("""INSERT INTO point (device_id, name, quantity, kind, unit)
                        SELECT device_id, 'bench.' || name || '.energy_import', 'energy_import', 'counter', 'Wh'
                        FROM device""")
        conn.commit()
        # a counter rising by a point-specific rate with a little wobble, one reading per step
        conn.execute("""INSERT INTO reading (point_id, ts, value, quality)
                        SELECT p.point_id, timestamptz '2025-03-01 00:00+08' + g * make_interval(secs => %s),
                               1e6 + g * (200 + p.point_id %% 97) + (g %% 7), 0
                        FROM point p, generate_series(0, %s - 1) g""", (step_s, per_point))
        if glitches:
            # isolated glitches, evenly spread: a zero, then a reading of 4 GWh (counter_outlier findings)
            every = max(per_point // (glitches + 1), 3)
            conn.execute("""UPDATE reading r SET value = CASE WHEN (g / %(every)s) %% 2 = 1 THEN 0 ELSE 4e9 END
                            FROM (SELECT point_id, ts, row_number() OVER (PARTITION BY point_id ORDER BY ts) - 1 AS g
                                  FROM reading) x
                            WHERE r.point_id = x.point_id AND r.ts = x.ts AND x.g > 0 AND x.g %% %(every)s = 0
                              AND x.g / %(every)s <= %(n)s""", {"every": every, "n": glitches})
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE reading")
    return per_point * points


def bare_select(url: str, itersize: int) -> int:
    n = 0
    with psycopg.connect(url) as conn:
        with conn.cursor(name="bare") as cur:
            cur.execute("SELECT point_id, ts, value FROM reading ORDER BY point_id, ts")
            while rows := cur.fetchmany(itersize):
                n += len(rows)
    return n


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0, peak_rss_mb(), _baseline_rss


_baseline_rss = 0.0


def _start() -> None:
    global _baseline_rss
    _baseline_rss = peak_rss_mb()


def in_own_process(fn, *args):
    """``fn(*args)`` in a fresh process (the imports already done, then the run): its result, the
    seconds it took, and that process's peak RSS and its RSS before the run [MiB], so each
    measurement's peak is its own, not the larger of the two."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start) as ex:
        return ex.submit(_timed, fn, *args).result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=10_000_000)
    ap.add_argument("--points", type=int, default=1_000)
    ap.add_argument("--step-s", type=int, default=60, help="seconds between a point's readings")
    ap.add_argument("--itersize", type=int, default=50_000, help="rows per server-side cursor fetch of the bare SELECT")
    ap.add_argument("--glitches", type=int, default=0,
                    help="isolated glitches per point (a zero or a 4 GWh reading: the counter skips them)")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = ap.parse_args()

    name = f"gg_bench_{uuid.uuid4().hex[:8]}"
    create_database(ADMIN_URL, name)
    url = with_database(ADMIN_URL, name)
    try:
        t0 = time.perf_counter()
        n = populate(url, args.readings, args.points, args.step_s, args.glitches)
        print(f"populated {n:,} readings of {args.points:,} points ({args.glitches} glitches each) in "
              f"{time.perf_counter() - t0:.1f} s ({name})")
        rows, t_select, rss_select, rss0 = in_own_process(bare_select, url, args.itersize)
        print(f"bare SELECT ... ORDER BY point_id, ts: {rows:,} rows in {t_select:.2f} s "
              f"({rows / t_select:,.0f} rows/s); peak RSS {rss_select:.0f} MiB (imports: {rss0:.0f} MiB)")

        r, t_rollup, rss_rollup, rss0 = in_own_process(rollup, url)
        print(f"rollup to interval energy:  {r.readings:,} readings -> {r.intervals_written:,} intervals, "
              f"{r.hours_changed:,} hourly + {r.days_changed:,} daily sums in {t_rollup:.2f} s "
              f"({r.readings / t_rollup:,.0f} readings/s), {r.counter_findings:,} findings; peak RSS {rss_rollup:.0f} MiB "
              f"(imports: {rss0:.0f} MiB)")
        print(f"ratio rollup / bare select: {t_rollup / t_select:.2f}x (goal <= 2x)")

        t0 = time.perf_counter()
        again = rollup(url)
        print(f"incremental rerun (trailing window only): {again.readings:,} readings, "
              f"{again.intervals_written} intervals changed, {time.perf_counter() - t0:.2f} s")
    finally:
        if not args.keep:
            drop_database(ADMIN_URL, name)


if __name__ == "__main__":
    main()
