"""Modbus collector vs a bare pymodbus read loop: same simulated devices, same concurrency (goal >= 0.7).

D simulated generic three-phase meters (unit ids on one pymodbus server, in a process of its own).
Bare: one AsyncModbusTcpClient per device reading the profile's register blocks in a loop, all
devices at once. Collector: one ModbusDevice per device, polled in a loop as fast as it answers,
with everything the collector does per poll — decode, quality gate, health record, writer (COPY
into PostgreSQL). Throughput is polls per second; the ratio is collector / bare. Prints, asserts
nothing.

    python bench/bench_modbus.py [--devices 20] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from collectors.clock import WallClock  # noqa: E402
from collectors.health import HealthRecorder  # noqa: E402
from collectors.run import Intake, QualityGate, build_devices  # noqa: E402
from collectors.writer import BatchingWriter  # noqa: E402
from model.site import SiteConfig  # noqa: E402
from store.db import create_database, drop_database, with_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.sites import apply_site  # noqa: E402
from tests.conftest import free_port  # noqa: E402

ADMIN_URL = os.environ.get("GREENGAUGE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def serve(port: int, devices: int, ports: int = 1) -> None:
    """Serve ``devices`` static meters: unit ids 1..247 per port, on ``ports`` ports from ``port``."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    regs = [0] * 18
    regs[3], regs[7], regs[8], regs[9], regs[10] = 1234, 500, 2300, 2301, 2302

    async def main():
        servers = []
        per_port = -(-devices // ports)
        for k in range(ports):
            units = range(1, min(per_port, devices - k * per_port) + 1)
            sims = [SimDevice(id=u, simdata=[SimData(0, values=list(regs), datatype=DataType.REGISTERS)]) for u in units]
            s = ModbusTcpServer(sims, address=("127.0.0.1", port + k))
            await s.serve_forever(background=True)
            servers.append(s)
        print("serving", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def start_server(port: int, devices: int, ports: int = 1) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(devices), str(ports)],
                            stdout=subprocess.PIPE, text=True)
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
    from model.profile import plan_reads

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


async def collector(site: SiteConfig, ids: dict[str, int], url: str, seconds: float) -> tuple[int, int]:
    clock = WallClock()
    writer = BatchingWriter(lambda: psycopg.connect(url), flush_interval_s=0.5)
    health = HealthRecorder(lambda: psycopg.connect(url), {}, now=clock.now)
    intake = Intake(writer, QualityGate(site, ids, clock, health))
    wtask = asyncio.create_task(writer.run())
    devices = build_devices(site, ids)
    for d in devices:
        health.watch_modbus(d)
    stop_at = time.perf_counter() + seconds
    counts = []

    async def loop(d):
        n = 0
        while time.perf_counter() < stop_at:
            intake.submit(await d.poll(clock))
            n += 1
        await d.close()
        counts.append(n)

    await asyncio.gather(*(loop(d) for d in devices))
    await writer.close()
    await wtask
    writer.close_connection()
    return sum(counts), writer.written


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--shared-endpoint", dest="per_device_port", action="store_false",
                    help="all devices behind one endpoint (unit ids 1..N): the collector then reads them one at a "
                         "time over one connection, as a gateway requires")
    args = ap.parse_args()
    # one endpoint per device: the collector shares one connection among the unit ids behind one
    # endpoint (a gateway: one request at a time), which a bare loop with a connection each would not
    ports = args.devices if args.per_device_port else 1
    port = free_ports(ports)
    server = start_server(port, args.devices, ports)
    site = site_for(port, args.devices, ports)
    name = f"gg_bench_{uuid.uuid4().hex[:8]}"
    create_database(ADMIN_URL, name)
    url = with_database(ADMIN_URL, name)
    try:
        with psycopg.connect(url) as conn:
            upgrade(conn)
            ids = apply_site(conn, site)
        b_best = c_best = d_best = 0.0
        stored = 0
        for _ in range(args.rounds):  # alternate, best of each: the machine is shared
            b_best = max(b_best, asyncio.run(bare(site, args.seconds)) / args.seconds)
            polls, written = asyncio.run(collector(site, ids, url, args.seconds))
            c_best = max(c_best, polls / args.seconds)
            d_best = max(d_best, asyncio.run(decode_only(site, ids, args.seconds)) / args.seconds)
            stored += written
    finally:
        server.terminate()
        server.wait()
        drop_database(ADMIN_URL, name)
    where = "each on its own endpoint" if args.per_device_port else "behind one endpoint"
    print(f"devices: {args.devices} at once, {where}, {args.seconds:.0f} s per run, best of {args.rounds}")
    print(f"bare pymodbus loop : {b_best:8.0f} polls/s")
    print(f"collector          : {c_best:8.0f} polls/s  ({stored} readings stored over all runs)")
    print(f"poll+decode only   : {d_best:8.0f} polls/s  (ModbusDevice.poll without gate, health, writer)")
    print(f"ratio collector/bare: {c_best / b_best:.2f}  (goal >= 0.7); poll+decode alone/bare: {d_best / b_best:.2f}")


if __name__ == "__main__":
    main()
