"""Benchmark: a year of 15-minute counter readings, raw readings to annual green shares.

Creates a database of its own on the test PostgreSQL (GREENGAUGE_TEST_ADMIN_URL, default
postgresql://postgres@127.0.0.1:5432/postgres), fills it with one reading per point per quarter
hour for 2025 (Asia/Shanghai), then times

* the bare scan: every one of those readings fetched to Python (the same rows, the same
  ``counter_series`` query), and
* the full path: ``accounting.site_energy.green_share_report`` for every enterprise (counters ->
  interval energy -> balance -> ledger -> share, hourly match, projection, evidence digest),

and prints both and their ratio (printed, never asserted). Five counter points per enterprise
(grid import, grid export, PV, battery charge, battery discharge).

    .venv/bin/python bench/bench_green_share.py              # 50 points (10 enterprises)
    .venv/bin/python bench/bench_green_share.py --full       # 1 000 points (200 enterprises)
    .venv/bin/python bench/bench_green_share.py --points 200
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from accounting.site_energy import green_share_report  # noqa: E402
from metrics.periods import local_bounds  # noqa: E402
from scratch import scratch_database  # noqa: E402
from store.queries import counter_series  # noqa: E402

#: role -> (mean power [W], phase [rad]); power = mean × (1 + sin(ωt + phase)), never negative
ROLES = {
    "grid_import": (200_000, 0.0), "grid_export": (10_000, 3.0), "pv_generation": (60_000, -1.6),
    "storage_charge": (20_000, -1.0), "storage_discharge": (18_000, 2.0),
}


def fill(conn: psycopg.Connection, enterprises: int, start: datetime, end: datetime) -> int:
    with conn.transaction():
        for e in range(enterprises):
            eid = conn.execute("INSERT INTO enterprise (code, name) VALUES (%s, %s) RETURNING enterprise_id",
                               (f"e{e:04d}", f"Enterprise {e}")).fetchone()[0]
            sid = conn.execute("INSERT INTO site (enterprise_id, code, name) VALUES (%s, 'main', 'Main') RETURNING site_id",
                               (eid,)).fetchone()[0]
            for role in ROLES:
                did = conn.execute(
                    """INSERT INTO device (site_id, name, profile, transport, poll_interval_s)
                       VALUES (%s, %s, 'generic-3ph-meter', '{}', 60) RETURNING device_id""", (sid, role)).fetchone()[0]
                conn.execute("""INSERT INTO point (device_id, name, quantity, kind, unit, role)
                                VALUES (%s, %s, 'energy_import', 'counter', 'Wh', %s)""",
                             (did, f"e{e:04d}.{role}", role))
        # counters: value(t) = mean/3600 × (t − cos(ωt+φ)/ω + cos φ/ω) [Wh], t in seconds; a little
        # more per enterprise so the shares differ; wrapped at 2**32 Wh like the meter profile
        values = " ".join(f"WHEN '{r}' THEN {p}" for r, (p, _) in ROLES.items())
        phases = " ".join(f"WHEN '{r}' THEN {ph}" for r, (_, ph) in ROLES.items())
        conn.execute(f"""
            INSERT INTO reading (point_id, ts, value, quality)
            SELECT p.point_id, g.ts,
                   mod(((CASE p.role {values} END) * (1 + (p.point_id %% 7) / 10.0) / 3600.0
                       * (s - cos(2 * pi() * s / 86400 + (CASE p.role {phases} END)) * 86400 / (2 * pi())
                          + cos(CASE p.role {phases} END) * 86400 / (2 * pi()))
                       + p.point_id * 1000)::numeric, 4294967296)::float8,
                   0
            FROM point p
            CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz, interval '15 minutes') AS g(ts)
            CROSS JOIN LATERAL (SELECT extract(epoch FROM g.ts - %s::timestamptz)::float8 AS s) x""",
                     (start, end, start))
    conn.execute("ANALYZE reading")
    return conn.execute("SELECT count(*) FROM reading").fetchone()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=50, help="counter points (5 per enterprise); default 50")
    ap.add_argument("--full", action="store_true", help="the full size: 1 000 points")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args()
    points = 1000 if args.full else args.points
    enterprises = max(1, points // len(ROLES))
    ystart, yend = local_bounds("year", datetime(2025, 1, 1).date(), "Asia/Shanghai")
    with scratch_database(keep=args.keep) as url:
        with psycopg.connect(url) as conn:
            t = time.perf_counter()
            rows = fill(conn, enterprises, ystart, yend)
            print(f"loaded {rows:,} readings for {enterprises * len(ROLES)} points in {time.perf_counter() - t:.1f} s "
                  "(setup, not timed below)")
            ids = [r[0] for r in conn.execute("SELECT point_id FROM point ORDER BY point_id")]

            def bare_scan() -> tuple[int, float]:
                t = time.perf_counter()
                n = 0
                for k in range(0, len(ids), len(ROLES)):
                    for ts, vals in counter_series(conn, ids[k:k + len(ROLES)], ystart, yend).values():
                        n += len(vals)
                conn.rollback()
                return n, time.perf_counter() - t

            # scan before and after the full path: the first pass may read a cold cache
            scanned, scan_cold_s = bare_scan()
            t = time.perf_counter()
            status: dict[str, int] = {}
            as_of = datetime(2026, 1, 1, tzinfo=timezone.utc)
            for e in range(enterprises):
                r = green_share_report(conn, f"e{e:04d}", 2025, as_of=as_of)
                status[r.status] = status.get(r.status, 0) + 1
            full_s = time.perf_counter() - t
            _, scan_s = bare_scan()
        print(f"bare scan of the same rows:      {scanned:,} rows in {scan_s:.2f} s (first, colder pass {scan_cold_s:.2f} s)")
        print(f"raw readings -> annual shares:   {enterprises} enterprises in {full_s:.2f} s "
              f"({full_s / enterprises:.3f} s each; {status})")
        print(f"ratio full path / bare scan:     {full_s / scan_s:.1f}")


if __name__ == "__main__":
    main()
