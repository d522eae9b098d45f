"""Writer vs raw COPY: the same rows into the same table (goal: ratio >= 0.8).

Raw: one ``COPY reading (...) FROM STDIN (FORMAT BINARY)`` straight into ``reading``, in batches of
the writer's size. Writer: :class:`collectors.writer.BatchingWriter` (COPY into a staging table,
then INSERT … ON CONFLICT DO NOTHING, one transaction per batch: the price of idempotence).
Both start from an empty ``reading`` table. Prints the figures; asserts nothing.

    python bench/bench_writer.py [--rows 200000] [--points 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from model.readings import Reading  # noqa: E402
from collectors.writer import BatchingWriter  # noqa: E402
from model.site import SiteConfig  # noqa: E402
from store.db import create_database, drop_database, with_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.sites import apply_site  # noqa: E402

ADMIN_URL = os.environ.get("GREENGAUGE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = datetime(2025, 6, 21, tzinfo=timezone.utc)


def make_site(points: int) -> SiteConfig:
    n_dev = max(1, min(247, points // 9))  # nine points per generic meter
    return SiteConfig.model_validate({
        "enterprise": {"code": "bench", "name": "Bench"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": f"d{i}", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": 1502,
                     "unit_id": 1 + i, "poll_interval_s": 1} for i in range(n_dev)],
    })


def raw_copy(url: str, rows: list[Reading], batch: int) -> float:
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        for i in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy("COPY reading (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "timestamptz", "float8", "int2"])
                    for r in rows[i:i + batch]:
                        copy.write_row((r.point_id, r.ts, r.value, int(r.quality)))
        return time.perf_counter() - t0


def writer_run(url: str, rows: list[Reading], batch: int) -> tuple[float, int]:
    async def main():
        w = BatchingWriter(lambda: psycopg.connect(url), batch_size=batch, flush_interval_s=0.05)
        t0 = time.perf_counter()
        task = asyncio.create_task(w.run())
        for i in range(0, len(rows), 1000):  # as sources hand them over: a poll's or a message's worth at a time
            w.submit(rows[i:i + 1000])
            await asyncio.sleep(0)
        await w.close()
        await task
        w.close_connection()
        return time.perf_counter() - t0, w.written

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--points", type=int, default=180)
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    name = f"gg_bench_{uuid.uuid4().hex[:8]}"
    create_database(ADMIN_URL, name)
    url = with_database(ADMIN_URL, name)
    try:
        with psycopg.connect(url) as conn:
            upgrade(conn)
            ids = list(apply_site(conn, make_site(args.points)).values())
        per_point = args.rows // len(ids)
        rows = [Reading(pid, T0 + timedelta(seconds=k), float(k)) for k in range(per_point) for pid in ids]
        results = []
        for _ in range(2):  # alternate, best of two each: the machine is shared
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE reading")
            raw = raw_copy(url, rows, args.batch)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE reading")
            wt, written = writer_run(url, rows, args.batch)
            assert written == len(rows), (written, len(rows))
            results.append((raw, wt))
        raw = min(r for r, _ in results)
        wt = min(w for _, w in results)
        n = len(rows)
        print(f"rows: {n} ({len(ids)} points), batch {args.batch}")
        print(f"raw COPY : {raw:7.2f} s  {n / raw:10.0f} rows/s")
        print(f"writer   : {wt:7.2f} s  {n / wt:10.0f} rows/s")
        print(f"ratio writer/raw: {raw / wt:.2f}  (goal >= 0.8)")
    finally:
        drop_database(ADMIN_URL, name)


if __name__ == "__main__":
    main()
