"""Benchmark: a province's pass — every enterprise's figures and eligibility from stored intervals.

Creates a database of its own on the test PostgreSQL (GREENGAUGE_TEST_ADMIN_URL, default
postgresql://postgres@127.0.0.1:5432/postgres) with ENTERPRISES enterprises × 6 counter points
(grid import/export, PV, battery charge/discharge, a recycling sub-project) and a full local
year (2025, Asia/Shanghai) of 15-minute intervals written straight into ``interval_energy`` with
COPY (the rollup is benchmarked by bench/bench_rollup.py), then times

* **bare**: one ordered ``SELECT`` of the same intervals, fetched to Python;
* **full**: the metrics pass (``flows.metrics.enterprises_pass``: daily balances, year to date,
  R1, projection, carbon) and the eligibility pass (``flows.eligibility.enterprises_decisions``)
  for every enterprise, in the batches the flows map (``flows.tasks.batches``; plain functions,
  one process: one batch after the other, or with ``--workers N`` on N threads as the flows' task
  runner does), then
  the industry's intensity ranking once (``flows.metrics.intensity_pass``, as ``metrics_flow``);
* **incremental**: in a fresh process, a pass with nothing new (the process's first, with its
  one-time costs: imports, psycopg's adapters, prepared statements), then one more hour of
  intervals for every enterprise and the same two passes an hour later in the same process — the
  steady state of a worker serving hourly passes (``prefect task serve``, docs/flows.md); both are
  printed, the second is the goal's.

and prints the times, the ratios full/bare and incremental/full, and the peak RSS of a pass over
a fifth of the enterprises and over all of them (each pass in a fresh process; it must not grow
with the number of enterprises). Ratios are printed, never asserted.

    .venv/bin/python bench/bench_province.py                      # 100 enterprises, full year
    .venv/bin/python bench/bench_province.py --enterprises 10 --days 30   # a quick look
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import queue
import resource
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from metrics.periods import local_bounds  # noqa: E402
from scratch import scratch_database  # noqa: E402

#: role -> (energy per quarter hour at the daily peak [Wh], hour of the peak)
ROLES = {"grid_import": (50_000, 10), "grid_export": (2_000, 13), "pv_generation": (25_000, 12),
         "storage_charge": (6_000, 11), "storage_discharge": (5_500, 19), "subproject": (8_000, 15)}
STEP = timedelta(minutes=15)


def quarter_wh(role: str, k: int, seed: int) -> int:
    """A deterministic daily profile: peak at the role's hour, zero twelve hours away."""
    peak, hour = ROLES[role]
    q = k % 96
    d = abs(q - hour * 4)
    d = min(d, 96 - d)
    return max(0, peak * (48 - d) // 48 + (seed % 7) * 10)


def fill(url: str, enterprises: int, start: datetime, end: datetime) -> int:
    with psycopg.connect(url) as conn, conn.transaction():
        ids: list[tuple[int, str, int]] = []
        for e in range(enterprises):
            eid = conn.execute("INSERT INTO enterprise (code, name, industry) VALUES (%s, %s, 'footwear') "
                               "RETURNING enterprise_id", (f"e{e:04d}", f"Enterprise {e}")).fetchone()[0]
            sid = conn.execute("INSERT INTO site (enterprise_id, code, name) VALUES (%s, 'main', 'Main') "
                               "RETURNING site_id", (eid,)).fetchone()[0]
            for role in ROLES:
                did = conn.execute(
                    """INSERT INTO device (site_id, name, profile, transport, poll_interval_s)
                       VALUES (%s, %s, 'generic-3ph-meter', '{}', 60) RETURNING device_id""", (sid, role)).fetchone()[0]
                pid = conn.execute(
                    """INSERT INTO point (device_id, name, quantity, kind, unit, role, subproject)
                       VALUES (%s, %s, 'energy_import', 'counter', 'Wh', %s, %s) RETURNING point_id""",
                    (did, f"e{e:04d}.{role}", role, "recycling" if role == "subproject" else None)).fetchone()[0]
                ids.append((pid, role, e))
        n = write_intervals(conn, ids, start, end)
        for pid, _, _ in ids:
            conn.execute("INSERT INTO rollup_watermark (point_id, last_reading_ts) VALUES (%s, %s)", (pid, end))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE interval_energy")
    return n


def write_intervals(conn: psycopg.Connection, ids, start: datetime, end: datetime) -> int:
    """COPY the intervals of [start, end) of every point straight into interval_energy."""
    n = 0
    k0 = int((start - datetime(2024, 12, 31, 16, tzinfo=timezone.utc)).total_seconds()) // 900
    count = int((end - start).total_seconds()) // 900
    with conn.cursor().copy("COPY interval_energy (point_id, bucket_start, energy_wh, estimated, suspect) "
                            "FROM STDIN") as cp:
        for pid, role, e in ids:
            buf = io.StringIO()
            for i in range(count):
                t = start + i * STEP
                buf.write(f"{pid}\t{t.isoformat()}\t{quarter_wh(role, k0 + i, pid)}\tf\tf\n")
            cp.write(buf.getvalue())
            n += count
    return n


def bare_select(url: str, start: datetime, end: datetime) -> int:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("""SELECT point_id, bucket_start, energy_wh, estimated, suspect FROM interval_energy
                       WHERE bucket_start >= %s AND bucket_start < %s ORDER BY point_id, bucket_start""", (start, end))
        n = 0
        while rows := cur.fetchmany(50_000):
            n += len(rows)
    return n


def full_pass(url: str, as_of: datetime, limit: int | None = None, workers: int = 1) -> tuple[float, int]:
    """Metrics and eligibility for every enterprise (the first ``limit``); (seconds, peak RSS kB).
    ``workers`` > 1: the enterprises on a pool of that many threads, as the flows' task runner runs
    their mapped tasks (``GREENGAUGE_FLOW_WORKERS``); 1: one after the other."""
    from flows.eligibility import enterprises_decisions
    from flows.metrics import enterprises_pass, intensity_pass, touched_years
    from flows.tasks import batches
    from store.results import enterprises

    from model.profile import known_profiles, load_profile
    from model.tables import load_coal_factors, load_documents, load_factors

    with psycopg.connect(url) as conn:
        ents = enterprises(conn)[:limit]
    # a serving worker parses the policy documents, factor tables and device profiles once per
    # process, not per pass
    load_documents(), load_factors(), load_coal_factors(), [load_profile(p) for p in known_profiles()]

    def one(batch):
        out = [t for ms in enterprises_pass(url, batch, as_of) for t in touched_years(ms)]
        enterprises_decisions(url, batch, as_of, None)
        return out

    t = time.perf_counter()
    work = batches(ents, workers)  # as the flows map them: GREENGAUGE_FLOW_BATCH, spread over the workers
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            touched = [x for part in pool.map(one, work) for x in part]
    else:
        touched = [x for b in work for x in one(b)]
    intensity_pass(url, touched)  # once per industry-year, after every enterprise (as metrics_flow does)
    return time.perf_counter() - t, peak_rss_kb()


def peak_rss_kb() -> int:
    """Peak RSS of this process [kB]: VmHWM of /proc/self/status (reset by exec, unlike ru_maxrss,
    which Linux carries over from the parent a spawned child was forked from)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(q, url, as_of, limit, workers, more):
    if more is None:
        q.put(full_pass(url, as_of, limit, workers))
        return
    idle, _ = full_pass(url, as_of, limit, workers)
    one_more_hour(url, more)
    inc, rss = full_pass(url, as_of + timedelta(hours=1), limit, workers)
    q.put(((idle, inc), rss))


def one_more_hour(url: str, end: datetime) -> None:
    """One more hour of intervals after ``end`` for every point, rolled up (the watermarks moved)."""
    with psycopg.connect(url) as conn, conn.transaction():
        ids = conn.execute("SELECT point_id, role, 0 FROM point ORDER BY point_id").fetchall()
        write_intervals(conn, ids, end, end + timedelta(hours=1))
        conn.execute("UPDATE rollup_watermark SET last_reading_ts = %s", (end + timedelta(hours=1),))


def in_child(url: str, as_of: datetime, limit: int | None = None, workers: int = 1, more: datetime | None = None
             ) -> tuple:
    """:func:`full_pass` in a fresh process (its own peak RSS): (seconds, peak RSS kB). With ``more``
    (the end of the stored intervals): a pass, then :func:`one_more_hour` and a pass an hour later
    in the same process, as a serving worker takes hourly passes: ((seconds, seconds), peak RSS)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, url, as_of, limit, workers, more))
    p.start()
    while True:  # a pass that raised ends its process without putting anything: say so, don't wait forever
        try:
            out = q.get(timeout=1)
            break
        except queue.Empty:
            if not p.is_alive():
                raise RuntimeError(f"the pass's process ended with exit code {p.exitcode} (its traceback is above)")
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enterprises", type=int, default=100)
    ap.add_argument("--days", type=int, default=365, help="days of 2025 with intervals (365: the full year)")
    ap.add_argument("--keep", action="store_true", help="keep the database (prints its name)")
    ap.add_argument("--workers", type=int, default=1,
                    help="enterprises at once, as the flows' thread pool runs them (GREENGAUGE_FLOW_WORKERS; "
                         "default 1: one after the other)")
    args = ap.parse_args()
    start, _ = local_bounds("year", datetime(2025, 1, 1).date(), "Asia/Shanghai")
    end = start + timedelta(days=args.days)
    as_of = end + timedelta(hours=1, minutes=1)  # the day after the data: complete days for eligibility
    with scratch_database("gg_bench_province", keep=args.keep) as url:
        t = time.perf_counter()
        n = fill(url, args.enterprises, start, end)
        print(f"{args.enterprises} enterprises × {len(ROLES)} points × {args.days} days: {n:,} intervals "
              f"written by COPY in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        rows = bare_select(url, start, end)
        bare = time.perf_counter() - t
        print(f"bare ordered SELECT of the intervals: {rows:,} rows in {bare:.2f} s")
        full, rss_full = in_child(url, as_of, None, args.workers)
        print(f"full pass (metrics + eligibility, {args.enterprises} enterprises, {args.workers} at once): {full:.2f} s "
              f"= {full / bare:.2f}× the bare SELECT (goal ≤ 2×)")
        # in a fresh process: a pass with nothing new (its first: the process's one-time costs too),
        # then one more hour of intervals for every enterprise and the incremental pass
        (idle, inc), rss_inc = in_child(url, as_of, None, args.workers, more=end)
        print(f"pass with nothing new, the first of a fresh process: {idle:.2f} s = {100 * idle / full:.1f} % "
              "of the full pass")
        print(f"incremental pass after one more hour, the same process: {inc:.2f} s = {100 * inc / full:.1f} % "
              "of the full pass (goal ≤ 2 %)")
        # the same kind of pass (nothing new) over a fifth of the enterprises, in a fresh process
        small = max(1, args.enterprises // 5)
        _, rss_small = in_child(url, as_of + timedelta(hours=1), small, args.workers)
        print(f"peak RSS: full pass {rss_full / 1024:.0f} MB; repeat pass over all {args.enterprises} "
              f"{rss_inc / 1024:.0f} MB vs over {small}: {rss_small / 1024:.0f} MB "
              f"(ratio {rss_inc / rss_small:.2f}; one enterprise-year in memory at a time)")


if __name__ == "__main__":
    main()
