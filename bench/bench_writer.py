"""Writer vs raw COPY: the same rows into the same table (goal: ratio >= 0.8).

Raw: ``COPY reading (...) FROM STDIN (FORMAT BINARY)`` straight into ``reading`` (``set_types``, a
tuple per row), in batches of the writer's size, a transaction each, on one connection. The rows
are plain ``(point_id, ts, value, quality)`` tuples for both ways, as the Modbus poll loop hands
them to the writer (``--readings``: :class:`model.readings.Reading` objects, as MQTT does). Writer:
:class:`collectors.writer.BatchingWriter` running as in the collector, the readings handed over a
thousand at a time as sources do; its batches go through ``store.ingest.write_rows`` (a straight
COPY into ``reading`` plus the late-data check, a transaction each; the merge only for a batch with
a stored row). Each way writes the same rows for points of its own (two sets of 180 points, the
same timestamps and values) into one ``reading`` table.

The machine is shared (and so is the database server's WAL), and a run of a few seconds is at the
mercy of whatever else runs then: the rows are cut into slices of a few batches and the two ways
take turns slice by slice (raw, writer, writer, raw, ...), in one process, the writer running
throughout, so both see the same moments and the same growing table. The result is the ratio of
the total times and the median of the slice pairs' ratios (goal: both >= 0.8); CPU time of this
process and of the server process behind each way's connection (read from /proc when the server
is local) is printed too, and the load average at the start and the end. Asserts only that the
writer stored every row.

    python bench/bench_writer.py [--rows 200000] [--points 180] [--slices 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from model.readings import Reading, ReadingRow  # noqa: E402
from collectors.writer import BatchingWriter  # noqa: E402
from model.site import SiteConfig  # noqa: E402
from scratch import scratch_database  # noqa: E402
from store.sites import apply_site  # noqa: E402

T0 = datetime(2025, 6, 21, tzinfo=timezone.utc)


def make_site(points: int) -> SiteConfig:
    """Two sets of ``points`` points (nine per generic meter): d0.. for raw COPY, then as many for the writer."""
    n_dev = max(1, min(123, points // 9))
    return SiteConfig.model_validate({
        "enterprise": {"code": "bench", "name": "Bench"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": f"d{i}", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": 1502,
                     "unit_id": 1 + i, "poll_interval_s": 1} for i in range(2 * n_dev)],
    }), n_dev


def server_cpu(conn: psycopg.Connection) -> float | None:
    """CPU seconds of the server process behind ``conn`` so far (None: not on this machine)."""
    try:
        with open(f"/proc/{conn.info.backend_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


async def compare(url: str, raw_rows: list[ReadingRow], writer_rows: list[ReadingRow], batch: int,
                  slices: int) -> dict[str, list[tuple[float, float, float | None]]]:
    """Each way's slices: (seconds, CPU seconds of this process, CPU seconds of its server process)."""
    conns: list[psycopg.Connection] = []

    def connect() -> psycopg.Connection:
        conns.append(psycopg.connect(url))
        return conns[-1]

    raw_conn = psycopg.connect(url)
    writer = BatchingWriter(connect, batch_size=batch, flush_interval_s=0.05)
    task = asyncio.create_task(writer.run())

    def raw(rows: list[ReadingRow]) -> None:
        for i in range(0, len(rows), batch):
            with raw_conn.transaction(), raw_conn.cursor() as cur:
                with cur.copy("COPY reading (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "timestamptz", "float8", "int2"])
                    for r in rows[i:i + batch]:
                        copy.write_row(r)

    async def write(rows: list[ReadingRow]) -> None:
        done = asyncio.get_running_loop().create_future()
        for i in range(0, len(rows), 1000):  # as sources hand them over: a poll's or a message's worth at a time
            last = i + 1000 >= len(rows)
            writer.submit(rows[i:i + 1000], (lambda: done.set_result(None)) if last else None)
            await asyncio.sleep(0)
        await done  # committed

    def backend() -> psycopg.Connection | None:
        return conns[-1] if conns else None

    out: dict[str, list[tuple[float, float, float | None]]] = {"raw": [], "writer": []}
    size = -(-len(raw_rows) // slices)
    for k in range(slices):
        part = slice(k * size, (k + 1) * size)
        for way in (("raw", "writer") if k % 2 == 0 else ("writer", "raw")):
            conn = raw_conn if way == "raw" else backend()
            s0 = server_cpu(conn) if conn is not None else 0.0
            t0, c0 = time.perf_counter(), time.process_time()
            if way == "raw":
                await asyncio.to_thread(raw, raw_rows[part])
            else:
                await write(writer_rows[part])
            t, c = time.perf_counter() - t0, time.process_time() - c0
            conn = raw_conn if way == "raw" else backend()
            s1 = server_cpu(conn) if conn is not None else None
            out[way].append((t, c, None if s0 is None or s1 is None else s1 - s0))
    await writer.close()
    await task
    writer.close_connection()
    raw_conn.close()
    assert writer.written == len(writer_rows), (writer.written, len(writer_rows))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--points", type=int, default=180)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--slices", type=int, default=8)
    ap.add_argument("--readings", action="store_true", help="Reading objects (as MQTT hands them over), not plain tuples")
    args = ap.parse_args()
    print(f"start: {load()}", flush=True)
    with scratch_database() as url:
        site, n_dev = make_site(args.points)
        with psycopg.connect(url) as conn:
            ids = apply_site(conn, site)
        sets = [[pid for key, pid in ids.items() if (int(key.split(".")[2][1:]) < n_dev) == first]
                for first in (True, False)]
        per_point = args.rows // len(sets[0])
        row = Reading if args.readings else (lambda pid, ts, value: (pid, ts, value, 0))
        raw_rows, writer_rows = ([row(pid, T0 + timedelta(seconds=k), float(k)) for k in range(per_point) for pid in points]
                                 for points in sets)
        got = asyncio.run(compare(url, raw_rows, writer_rows, args.batch, args.slices))
        for k, ((rt, _, _), (wt, _, _)) in enumerate(zip(got["raw"], got["writer"])):
            print(f"slice {k + 1}: raw COPY {rt:5.2f} s, writer {wt:5.2f} s: ratio {rt / wt:.2f}", flush=True)
        ratios = [r[0] / w[0] for r, w in zip(got["raw"], got["writer"])]
        raw_t, writer_t = (sum(x[0] for x in got[way]) for way in ("raw", "writer"))
        n = len(raw_rows)
        print(f"rows: {n} each way ({len(sets[0])} points each, {'Reading objects' if args.readings else 'plain tuples'}), "
              f"batch {args.batch}, {args.slices} slices; end: {load()}")
        print(f"raw COPY : {raw_t:7.2f} s  {n / raw_t:10.0f} rows/s")
        print(f"writer   : {writer_t:7.2f} s  {n / writer_t:10.0f} rows/s")
        cpu = {way: (sum(x[1] for x in got[way]), None if any(x[2] is None for x in got[way])
                     else sum(x[2] for x in got[way])) for way in got}
        if all(c[1] is not None for c in cpu.values()):
            print("CPU      : raw COPY {:.2f} s here + {:.2f} s in the server, writer {:.2f} s + {:.2f} s: ratio {:.2f}".format(
                *cpu["raw"], *cpu["writer"], sum(cpu["raw"]) / sum(cpu["writer"])))
        median = statistics.median(ratios)
        print(f"ratio writer/raw: total time {raw_t / writer_t:.2f}, median of slices {median:.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}); goal >= 0.8: "
              f"{'met' if median >= 0.8 and raw_t / writer_t >= 0.8 else 'NOT met'} in this run")


if __name__ == "__main__":
    main()
