"""Benchmark: the yearly-figures endpoint beside a bare query of the same stored row.

Creates a database of its own on the test PostgreSQL (GREENGAUGE_TEST_ADMIN_URL, default
postgresql://postgres@127.0.0.1:5432/postgres), seeds two parks × two enterprises
(tests/store/tenancy_seed.py) with a bureau token, starts `greengauge api serve` (uvicorn) on a
free loopback port, then times, one request after the other for ``--seconds`` each,

* the bare query: ``SELECT * FROM green_share_ytd WHERE enterprise_id = … AND year = 2025`` over
  one open connection (the stored row the endpoint's figures start from), and
* the endpoint: ``GET /v1/enterprises/EA1/years/2025`` with the bearer token over one keep-alive
  httpx connection (token lookup, SET LOCAL ROLE, every figure through the reader views, JSON),

and prints requests per second, p50 and p99 latency of each and their ratios (printed, never
asserted).

    .venv/bin/python bench/bench_api.py               # 5 s each
    .venv/bin/python bench/bench_api.py --seconds 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from store.db import create_database, drop_database, with_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.tenancy import drop_roles  # noqa: E402
from store.tokens import create_token  # noqa: E402

ADMIN_URL = os.environ.get("GREENGAUGE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def timed(fn, seconds: float) -> list[float]:
    out = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def summary(name: str, lat: list[float]) -> tuple[float, float]:
    lat = sorted(lat)
    rps = len(lat) / sum(lat)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    print(f"{name:<34} {len(lat):>7} requests  {rps:>9.0f} req/s  p50 {p50:7.3f} ms  p99 {p99:7.3f} ms")
    return rps, p99


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    from tests.conftest import free_port
    from tests.store.tenancy_seed import seed
    from api.signing import generate_key

    name = f"gg_bench_{uuid.uuid4().hex[:10]}"
    create_database(ADMIN_URL, name)
    url = with_database(ADMIN_URL, name)
    proc = None
    try:
        with psycopg.connect(url) as conn:
            upgrade(conn)
        with psycopg.connect(url, autocommit=True) as conn:
            ents, _ = seed(conn)
        with psycopg.connect(url) as conn:
            _, secret = create_token(conn, "bench", bureau=True)
        tmp = Path(tempfile.mkdtemp())
        generate_key(tmp / "key.pem")
        port = free_port()
        env = {**os.environ, "GREENGAUGE_DATABASE_URL": url, "GREENGAUGE_SIGNING_KEY_FILE": str(tmp / "key.pem")}
        proc = subprocess.Popen([sys.executable, "-m", "greengauge", "api", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        eid = ents["EA1"]
        with psycopg.connect(url, autocommit=True) as conn:
            q = "SELECT * FROM green_share_ytd WHERE enterprise_id = %s AND year = 2025"
            conn.execute(q, (eid,)).fetchone()
            bare = timed(lambda: conn.execute(q, (eid,)).fetchone(), args.seconds)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}) as c:
            assert c.get("/v1/enterprises/EA1/years/2025").status_code == 200
            api = timed(lambda: c.get("/v1/enterprises/EA1/years/2025").raise_for_status(), args.seconds)
        print(f"one client, sequential, {args.seconds:g} s each (PostgreSQL on loopback, 2 cores shared)")
        b_rps, b_p99 = summary("bare query of the stored row", bare)
        a_rps, a_p99 = summary("GET /v1/enterprises/EA1/years/2025", api)
        print(f"ratio: the endpoint serves 1/{b_rps / a_rps:.1f} of the bare query's rate; p99 {a_p99 / b_p99:.1f}x")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
        drop_database(ADMIN_URL, name)
        drop_roles(ADMIN_URL, name)


if __name__ == "__main__":
    main()
