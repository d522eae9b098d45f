"""Modbus collector vs the fair baseline: a bare pipeline doing the same reads, decoding and COPY.

D simulated generic three-phase meters (unit ids on a pymodbus server in a process of its own, one
port per device by default). Each way polls them all at once, each device as fast as it answers:

- bare pipeline: the same reads, the same decoding (each value's offset, struct unpacker and exact
  rational factor worked out once, as ModbusDevice does; the device clock judged as
  model.readings.device_time does, on the raw seconds; the profile's plausible range within
  model.readings.value_bounds: quality 0, 1 or 2) and a batched COPY of the same rows
  (store/ingest.py's ``write_rows``, the writer's own write, in a thread, at the writer's cadence:
  everything every 0.5 s, full batches of 5,000 rows as soon as they wait, a transaction each), with
  no health, findings, quality gate or spool: the fair baseline;
- collector: ModbusDevice polls through the shared connection pool with everything
  collectors/run.py ``collect`` does: each device's readings to ``Intake.sink_for(device)`` (the
  quality gate where it has something to judge, else the writer directly: these meters have no
  counter with a rating), health recording with its findings (rows and findings written every
  second here, five times as often as ``collect``), the batching writer with its disk spool, COPY
  into PostgreSQL, the start-up frozen for the garbage collector;
- for reference, twice (first and last round): the bare read loop (one AsyncModbusTcpClient per
  device reading the profile's register blocks, nothing else: the ceiling of pymodbus here) and
  poll+decode only (ModbusDevice.poll alone).

The simulated meters' clocks are set (three days back when the server starts) and advance one
second at every read of them, as a meter's does that has measured anew at each poll: every poll's
readings are new and stored at the device's time, GOOD (the normal path of a meter with a clock).
``--clock-unset``: the clocks read 0, never set, as in runs of this benchmark before 2026-12-07 —
each such reading is stored at the poll's time with its own quality and each poll counts a
``past_timestamp`` finding (docs/collectors.md, "Checks every reading passes"); the bare pipeline
stores the same rows at the poll's time and keeps no findings.

The machine is shared, so the two ways run back to back in each round, the order alternating, and
each round's ratio is printed; the result of a run is the median of the rounds' ratios and the ratio
of all polls (goal: both >= 0.8). Throughput is polls per second over each run's seconds; CPU per
poll is this process's CPU time (every thread) from the first poll to the last row written, divided
by the polls (set-up and tear-down are not counted for either way). The load average is printed at
the start and the end. Prints, asserts nothing.

    python bench/bench_modbus.py [--devices 20] [--seconds 3] [--rounds 10]

Instructions per poll, which unlike time do not move with the machine's load: ``--count-polls N
--way pipeline|collector`` runs N polls of each device on an in-process fake pymodbus client (an
answer from the same register image after one turn of the event loop; no server, no timed flushes:
full batches and the rest at the end), so under callgrind the difference of two runs is N2 - N1
polls of everything but the network and the server::

    for n in 100 400; do valgrind --tool=callgrind --callgrind-out-file=cg.$n \\
        python bench/bench_modbus.py --count-polls $n --way collector; done   # "Collected : ..." each
    # (collected(400) - collected(100)) / (300 * 20 devices) = instructions per poll
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from collectors.clock import WallClock  # noqa: E402
from collectors.health import HealthRecorder  # noqa: E402
from collectors.run import Intake, QualityGate, build_devices, freeze_startup, thaw  # noqa: E402
from collectors.spool import Spool  # noqa: E402
from collectors.writer import BatchingWriter  # noqa: E402
from model.profile import _STRUCT, plan_reads  # noqa: E402
from model.readings import FUTURE_TOLERANCE, TIMESTAMP_FLOOR, impossible_value, value_bounds  # noqa: E402
from model.site import SiteConfig  # noqa: E402
from store import ingest  # noqa: E402
from store.health import device_ids as lookup_device_ids  # noqa: E402
from store.sites import apply_site  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from scratch import scratch_database  # noqa: E402

FLUSH_INTERVAL_S = 0.5
HEALTH_INTERVAL_S = 1.0  # collect()'s is 5 s: rows written five times as often, so that rounds of a few seconds hold them
BATCH_SIZE = 5000  # BatchingWriter's default: a flush when this many wait, one transaction per batch


def meter_registers() -> list[int]:
    """The register image every simulated meter serves: clock 0 (never set; see :class:`Ticking`),
    energy 1234 Wh, 50 W, 230.0-230.2 V."""
    regs = [0] * 18
    regs[3], regs[7], regs[8], regs[9], regs[10] = 1234, 500, 2300, 2301, 2302
    return regs


class Ticking:
    """A meter's clock (registers 0..1, seconds since 1970): set three days back, one second later at
    every read that includes it, so each poll finds a new measurement at a time in the past."""

    def __init__(self) -> None:
        self.seconds = int(time.time()) - 3 * 86400

    def tick(self, registers: list[int], offset: int = 0) -> None:
        self.seconds += 1
        registers[offset:offset + 2] = [self.seconds >> 16, self.seconds & 0xFFFF]

    async def action(self, function_code, start_address, address, count, registers, set_values):
        """pymodbus's SimDevice action, called on every request (``registers`` from ``start_address``)."""
        if address == 0 and start_address == 0:
            self.tick(registers)
        return None


class _Answer:
    __slots__ = ("registers",)

    def __init__(self, registers: list[int]) -> None:
        self.registers = registers

    def isError(self) -> bool:  # noqa: N802 (pymodbus's name)
        return False


class FakeClient:
    """Stands in for pymodbus's client for ``--count-polls``: answers from :func:`meter_registers`
    after one turn of the event loop (as a network answer would), so instruction counts leave out
    the network and the server, the same for both ways."""

    connected = True
    clock_unset = False  # (--clock-unset)

    def __init__(self, *args, **kwargs) -> None:
        self._regs = meter_registers()
        self._clock = None if self.clock_unset else Ticking()

    async def connect(self) -> bool:
        return True

    async def read_holding_registers(self, address: int, *, count: int = 1, device_id: int = 1) -> _Answer:
        await asyncio.sleep(0)
        if address == 0 and self._clock is not None:
            self._clock.tick(self._regs)
        return _Answer(self._regs[address:address + count])

    def close(self) -> None:
        pass


def serve(port: int, devices: int, ports: int = 1, clock_unset: bool = False) -> None:
    """Serve ``devices`` meters, static but for their clocks (:class:`Ticking`, or 0 with
    ``clock_unset``): unit ids 1..247 per port, on ``ports`` ports from ``port``."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    regs = meter_registers()

    async def main():
        servers = []
        per_port = -(-devices // ports)
        for k in range(ports):
            units = range(1, min(per_port, devices - k * per_port) + 1)
            sims = [SimDevice(id=u, simdata=[SimData(0, values=list(regs), datatype=DataType.REGISTERS)],
                              action=None if clock_unset else Ticking().action) for u in units]
            s = ModbusTcpServer(sims, address=("127.0.0.1", port + k))
            await s.serve_forever(background=True)
            servers.append(s)
        print("serving", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def start_server(port: int, devices: int, ports: int = 1, clock_unset: bool = False) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(devices), str(ports),
                             *(["--clock-unset"] if clock_unset else [])], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "serving"
    return proc


def site_for(port: int, devices: int, ports: int = 1) -> SiteConfig:
    """``devices`` meters: unit ids 1.. on each of ``ports`` consecutive ports from ``port``."""
    per_port = -(-devices // ports)
    return SiteConfig.model_validate({
        "enterprise": {"code": "bench", "name": "Bench"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": f"m{i}", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port + i // per_port,
                     "unit_id": 1 + i % per_port, "poll_interval_s": 1} for i in range(devices)],
    })


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive free ports."""
    import socket

    while True:
        base = free_port()
        if base + n < 65536 and all(_free(base + k, socket) for k in range(n)):
            return base


def _free(port: int, socket) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


async def bare(site: SiteConfig, seconds: float) -> int:
    """Reads only."""
    profile = site.devices[0].profile_model  # the same read plan as the collector's
    plan = plan_reads([*profile.registers, profile.clock])
    stop_at = time.perf_counter() + seconds
    counts = []

    async def loop(d):
        c = AsyncModbusTcpClient(d.host, port=d.port, timeout=3, retries=0)
        await c.connect()
        n = 0
        while time.perf_counter() < stop_at:
            for b in plan:
                rr = await c.read_holding_registers(b.address, count=b.count, device_id=d.unit_id)
                assert not rr.isError()
            n += 1
        c.close()
        counts.append(n)

    await asyncio.gather(*(loop(d) for d in site.devices))
    return sum(counts)


def _copy_rows(conn: psycopg.Connection, rows: list[tuple]) -> int:
    """store/ingest.py's write (the one the collector's writer uses), on plain tuples, in batches of
    the writer's size, one transaction each."""
    return sum(ingest.write_rows(conn, rows[i:i + BATCH_SIZE]) for i in range(0, len(rows), BATCH_SIZE))


async def bare_pipeline(site: SiteConfig, ids: dict[str, int], url: str, seconds: float, *,
                        polls: int | None = None, client=AsyncModbusTcpClient) -> tuple[int, int, float]:
    """The same reads, the same decoding, a batched COPY of the same rows; nothing else. Returns the
    polls, the rows written and the CPU seconds from the start of polling to the last row written.
    ``polls``: that many polls of each device instead of ``seconds``, full batches only until the end
    (``--count-polls``); ``client``: pymodbus's client class, or :class:`FakeClient`."""
    profile = site.devices[0].profile_model
    plan = plan_reads([*profile.registers, profile.clock])
    conn = psycopg.connect(url)
    cpu = time.process_time()
    stop_at = time.perf_counter() + seconds
    counts = []
    rows: list[tuple] = []
    written = 0
    wake = asyncio.Event()  # as the writer: everything every FLUSH_INTERVAL_S, full batches as soon as they wait
    interval = FLUSH_INTERVAL_S if polls is None else 1e9
    polling = len(site.devices)

    async def flusher():
        nonlocal rows, written
        whole_at = time.perf_counter() + interval
        while True:
            done = not polling
            if not done:
                try:
                    await asyncio.wait_for(wake.wait(), max(0.0, whole_at - time.perf_counter()))
                except asyncio.TimeoutError:
                    pass
                wake.clear()
            now = time.perf_counter()
            if done or now >= whole_at:
                whole_at = now + interval
                batch, rows = rows, []
            else:  # woken by a full batch: full batches only, the rest waits as in the writer
                k = len(rows) - len(rows) % BATCH_SIZE
                batch, rows = rows[:k], rows[k:]
            if batch:
                written += await asyncio.to_thread(_copy_rows, conn, batch)
            if done and not rows:
                return

    def located(spec):
        """(block index, byte offset, big-endian unpacker): the decoding worked out once, as the
        collector does (ModbusDevice._compile)."""
        for i, b in enumerate(plan):
            if b.function == spec.function and b.address <= spec.address < b.address + b.count:
                assert spec.word_order == "big" and not spec.type.startswith("float")
                return i, 2 * (spec.address - b.address), _STRUCT[spec.type].unpack_from
        raise AssertionError(spec)

    clock_at = located(profile.clock)

    # the device clock judged on its raw seconds, as model.readings.device_time does: before the
    # floor (a clock never set reads 0) or too far ahead, the poll's time (the values keep their quality)
    floor, tolerance = TIMESTAMP_FLOOR.timestamp(), FUTURE_TOLERANCE
    calendar_end = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    # each block with its packer (registers -> the bytes they came as), made once as the collector does
    reads = [(b, struct.Struct(f">{b.count}H").pack) for b in plan]

    async def loop(d):
        nonlocal polling
        c = client(d.host, port=d.port, timeout=3, retries=0)
        await c.connect()
        specs = []
        for p in d.point_configs():
            spec = profile.register(p.quantity)
            # the profile's plausible range within the bounds any value must keep, as the collector
            # applies them (no CT/PT ratio or power sign on these meters): outside, quality 1, or 2
            # without a value when impossible (model.readings.impossible_value)
            lo, hi = value_bounds(spec.quantity)
            lo = lo if spec.min is None else max(lo, float(spec.min))
            hi = hi if spec.max is None else min(hi, float(spec.max))
            specs.append((ids[site.point_name(d, p)], *located(spec), *spec.factor.as_integer_ratio(), lo, hi,
                          spec.quantity))
        unit = d.unit_id
        last = None
        n = 0
        while (n < polls) if polls is not None else (time.perf_counter() < stop_at):
            n += 1
            ts = datetime.now(timezone.utc)
            data = []
            for b, pack in reads:
                rr = await c.read_holding_registers(b.address, count=b.count, device_id=unit)
                data.append(None if rr.isError() else pack(*rr.registers))
            bi, off, unpack = clock_at
            if data[bi] is not None:
                seconds = unpack(data[bi], off)[0]
                if seconds == last:
                    continue  # not measured anew since the last poll
                device = datetime.fromtimestamp(seconds, timezone.utc) if floor <= seconds <= calendar_end else None
                if device is not None and device - ts <= tolerance:
                    ts, last = device, seconds
                # else: the poll's time, the values keep their quality (the collector keeps a finding)
            for pid, bi, off, unpack, num, den, lo, hi, quantity in specs:
                block = data[bi]
                if block is None:
                    rows.append((pid, ts, None, 2))
                else:
                    value = unpack(block, off)[0] * num / den
                    if lo <= value <= hi:
                        rows.append((pid, ts, value, 0))
                    elif impossible_value(value, quantity) is None:
                        rows.append((pid, ts, value, 1))
                    else:
                        rows.append((pid, ts, None, 2))
            if len(rows) >= BATCH_SIZE:
                wake.set()
        c.close()
        counts.append(n)
        polling -= 1
        if not polling:
            wake.set()

    flushing = asyncio.create_task(flusher())
    await asyncio.gather(*(loop(d) for d in site.devices))
    await flushing
    cpu = time.process_time() - cpu
    conn.close()
    return sum(counts), written, cpu


async def decode_only(site: SiteConfig, ids: dict[str, int], seconds: float) -> int:
    """The collector's poll and decode alone (no gate, health or writer): where the time goes."""
    clock = WallClock()
    devices = build_devices(site, ids)
    stop_at = time.perf_counter() + seconds
    counts = []

    async def loop(d):
        n = 0
        while time.perf_counter() < stop_at:
            await d.poll(clock)
            n += 1
        await d.close()
        counts.append(n)

    await asyncio.gather(*(loop(d) for d in devices))
    return sum(counts)


async def collector(site: SiteConfig, ids: dict[str, int], url: str, seconds: float, spool_dir: Path, *,
                    polls: int | None = None, client=None) -> tuple[int, int, float]:
    """As collectors/run.py ``collect`` builds it (spool, health with its rows and findings, each
    device's sink: the gate where it judges, else the writer), each device polled as fast as it
    answers. Returns the polls, the rows written and the CPU seconds from the start of polling to
    the last row written (health rows are written every second here, five times as often as
    ``collect`` does, so that they fall in that time). ``polls``/``client`` as for
    :func:`bare_pipeline` (health and whole flushes then only at the end)."""
    clock = WallClock()

    def connect():
        return psycopg.connect(url)

    with connect() as conn:
        device_ids = lookup_device_ids(conn, site.enterprise.code, site.site.code)
    spool = Spool(spool_dir)
    timed_out = polls is not None
    writer = BatchingWriter(connect, spool=spool, flush_interval_s=1e9 if timed_out else FLUSH_INTERVAL_S)
    health = HealthRecorder(connect, device_ids, interval_s=1e9 if timed_out else HEALTH_INTERVAL_S, now=clock.now)
    writer.on_drop = lambda n, detail: health.finding("readings_dropped", "writer", detail, count=n)
    intake = Intake(writer, QualityGate(site, ids, clock, health))
    writing = asyncio.create_task(writer.run())
    health_stop = asyncio.Event()
    recording = asyncio.create_task(health.run(health_stop))
    devices = build_devices(site, ids)
    for d in devices:
        health.watch_modbus(d)
        if client is not None:
            d._connection().client = client()
    freeze_startup()  # as collect() does once it has started
    cpu = time.process_time()
    stop_at = time.perf_counter() + seconds
    counts = []

    async def loop(d):
        submit = intake.sink_for(d)  # as collect() hands each device its sink (run_devices)
        n = 0
        while (n < polls) if polls is not None else (time.perf_counter() < stop_at):
            submit(await d.poll(clock))
            n += 1
        await d.close()
        counts.append(n)

    await asyncio.gather(*(loop(d) for d in devices))
    await writer.close()
    await writing
    cpu = time.process_time() - cpu
    writer.close_connection()
    health_stop.set()
    await recording
    await health.flush()
    health.close()
    spool.close()
    thaw()
    return sum(counts), writer.written, cpu


def timed(coro) -> tuple:
    """Run ``coro``; its result and the CPU seconds this process (all threads) spent on it."""
    cpu = time.process_time()
    result = asyncio.run(coro)
    return result, time.process_time() - cpu


def count_polls(devices: int, polls: int, way: str) -> None:
    """``polls`` polls of each of ``devices`` meters one way, on :class:`FakeClient` (no server, no
    timed flushes): run under callgrind twice with different ``polls``, the difference of the two
    counts is that many polls' instructions, set-up and tear-down cancelled out."""
    site = site_for(1502, devices, devices)  # (nothing is contacted)
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(url) as conn:
            ids = apply_site(conn, site)
        if way == "pipeline":
            n, written, _ = asyncio.run(bare_pipeline(site, ids, url, 0, polls=polls, client=FakeClient))
        else:
            n, written, _ = asyncio.run(collector(site, ids, url, 0, Path(tmp) / "spool", polls=polls,
                                                  client=FakeClient))
    print(f"{way}: {n} polls of {devices} devices on a fake client, {written} rows written")


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), "--clock-unset" in sys.argv[5:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each way's run in a round")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--count-polls", type=int, metavar="N",
                    help="N polls of each device on a fake client, one way (--way), for callgrind; prints and exits")
    ap.add_argument("--way", choices=("pipeline", "collector"), default="collector")
    ap.add_argument("--clock-unset", action="store_true",
                    help="the meters' clocks read 0 (never set): every reading suspect, a finding per poll")
    ap.add_argument("--shared-endpoint", dest="per_device_port", action="store_false",
                    help="all devices behind one endpoint (unit ids 1..N): the collector then reads them one at a "
                         "time over one connection, as a gateway requires")
    args = ap.parse_args()
    # --clock-unset: each device's past_timestamp finding would be logged once a run (by the health
    # recorder, or the device without one); the findings are counted all the same
    logging.getLogger("collectors").setLevel(logging.ERROR)
    FakeClient.clock_unset = args.clock_unset
    if args.count_polls is not None:
        count_polls(args.devices, args.count_polls, args.way)
        return
    # one endpoint per device: the collector shares one connection among the unit ids behind one
    # endpoint (a gateway: one request at a time), which a bare loop with a connection each would not
    ports = args.devices if args.per_device_port else 1
    port = free_ports(ports)
    server = start_server(port, args.devices, ports, args.clock_unset)
    site = site_for(port, args.devices, ports)
    points = len(site.devices[0].point_configs())
    best = dict.fromkeys(("read", "decode"), 0.0)
    polls_of = {"pipeline": 0, "collector": 0}
    stored = 0
    ratios: list[float] = []
    cpu_ratios: list[float] = []  # bare pipeline's CPU per poll / collector's: the ratio a CPU-bound run would see
    print(f"start: {load()}", flush=True)
    try:
        with scratch_database() as url:
            with psycopg.connect(url) as conn:
                ids = apply_site(conn, site)
            with tempfile.TemporaryDirectory() as tmp:

                def run(way: str, seconds: float, k: int) -> tuple[float, float]:
                    """Polls per second and CPU microseconds per poll of one way's run."""
                    nonlocal stored
                    if way == "pipeline":
                        polls, written, cpu = asyncio.run(bare_pipeline(site, ids, url, seconds))
                    else:
                        polls, written, cpu = asyncio.run(collector(site, ids, url, seconds, Path(tmp) / f"spool{k}"))
                    stored += written
                    polls_of[way] += polls
                    if written != polls * points:  # every poll stores every point: nothing lost, nothing twice
                        print(f"warning: {way} stored {written} rows for {polls} polls of {points} points", flush=True)
                    return polls / seconds, cpu / polls * 1e6

                # a short warm-up of both (imports, connections, the server's first answers), not counted
                asyncio.run(bare_pipeline(site, ids, url, 0.5))
                asyncio.run(collector(site, ids, url, 0.5, Path(tmp) / "warmup"))
                for k in range(args.rounds):
                    # the two ways back to back, the order alternating (the machine is shared: a burst of
                    # load elsewhere falls on both ways of a round, not on one way of every round)
                    order = ("pipeline", "collector") if k % 2 == 0 else ("collector", "pipeline")
                    got = {way: run(way, args.seconds, k) for way in order}
                    (p, p_cpu), (c, c_cpu) = got["pipeline"], got["collector"]
                    ratios.append(c / p)
                    cpu_ratios.append(p_cpu / c_cpu)
                    print(f"round {k + 1:2d}: bare pipeline {p:6.0f} polls/s ({p_cpu:4.0f} us CPU each), collector {c:6.0f} "
                          f"polls/s ({c_cpu:4.0f} us CPU each): ratio {c / p:.2f}, by CPU {p_cpu / c_cpu:.2f}", flush=True)
                    if k in (0, args.rounds - 1):  # the two ceilings, for reference: at the start and at the end
                        polls, _ = timed(bare(site, args.seconds))
                        best["read"] = max(best["read"], polls / args.seconds)
                        polls, _ = timed(decode_only(site, ids, args.seconds))
                        best["decode"] = max(best["decode"], polls / args.seconds)
    finally:
        server.terminate()
        server.wait()
    where = "each on its own endpoint" if args.per_device_port else "behind one endpoint"
    seconds = args.rounds * args.seconds
    pooled = polls_of["collector"] / polls_of["pipeline"]
    print(f"devices: {args.devices} at once, {where}; {args.rounds} rounds of {args.seconds:g} s each way; end: {load()}")
    print(f"bare read loop     : {best['read']:8.0f} polls/s  (reads only; best of 2)")
    print(f"bare pipeline      : {polls_of['pipeline'] / seconds:8.0f} polls/s  (the same reads, decoding, batched COPY; "
          f"mean of the rounds)")
    print(f"collector          : {polls_of['collector'] / seconds:8.0f} polls/s  ({stored} readings stored over all runs)")
    print(f"poll+decode only   : {best['decode']:8.0f} polls/s  (ModbusDevice.poll without gate, health, writer; best of 2)")
    print(f"ratio collector/bare pipeline: median of rounds {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}-"
          f"{max(ratios):.2f}, {sum(r >= 0.8 for r in ratios)} of {len(ratios)} >= 0.8), all polls {pooled:.2f}; by CPU "
          f"per poll median {statistics.median(cpu_ratios):.2f} ({min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}); goal >= 0.8: "
          f"{'met' if statistics.median(ratios) >= 0.8 and pooled >= 0.8 else 'NOT met'} in this run")


if __name__ == "__main__":
    main()
