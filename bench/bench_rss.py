"""Collector memory with 1,000 simulated devices (goal: RSS <= 200 MB).

1,000 generic meters are served by pymodbus in a process of their own (200 unit ids on each of 5
ports); ``greengauge collect`` runs as a process of its own against a fresh database and polls
them all (one connection per device, every ``--interval`` seconds) for ``--seconds``. Its RSS is
sampled from /proc; the peak (VmHWM) is printed, with the readings stored. Asserts nothing.

    python bench/bench_rss.py [--devices 1000] [--seconds 40] [--interval 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402

from bench.bench_modbus import start_server  # noqa: E402
from store.db import create_database, drop_database, with_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from tests.conftest import free_port  # noqa: E402

ADMIN_URL = os.environ.get("GREENGAUGE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PER_PORT = 200


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--interval", type=float, default=5)
    args = ap.parse_args()
    ports = -(-args.devices // PER_PORT)
    base = free_port()
    while any(_busy(base + k) for k in range(ports)):
        base = free_port()
    server = start_server(base, args.devices, ports)
    name = f"gg_bench_{uuid.uuid4().hex[:8]}"
    create_database(ADMIN_URL, name)
    url = with_database(ADMIN_URL, name)
    work = Path(tempfile.mkdtemp(prefix="gg-rss-"))
    site = {
        "enterprise": {"code": "bench", "name": "Bench"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": f"m{i}", "profile": "generic-3ph-meter", "host": "127.0.0.1",
                     "port": base + i // PER_PORT, "unit_id": 1 + i % PER_PORT, "poll_interval_s": args.interval,
                     "points": [{"quantity": "energy_import"}, {"quantity": "active_power"},
                                {"quantity": "voltage_l1"}]}
                    for i in range(args.devices)],
    }
    YAML().dump(site, work / "site.yaml")
    proc = None
    try:
        with psycopg.connect(url) as conn:
            upgrade(conn)
        env = {**os.environ, "GREENGAUGE_DATABASE_URL": url, "GREENGAUGE_WORKDIR": str(work)}
        proc = subprocess.Popen([sys.executable, "-m", "greengauge", "collect", str(work / "site.yaml")],
                                env=env, stdout=subprocess.DEVNULL, stderr=open(work / "log", "w"))
        t0 = time.monotonic()
        samples = []
        while time.monotonic() - t0 < args.seconds and proc.poll() is None:
            time.sleep(1)
            samples.append(status_kb(proc.pid, "VmRSS"))
        peak = status_kb(proc.pid, "VmHWM")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM reading").fetchone()[0]
            healthy = conn.execute("SELECT count(*) FROM device_health WHERE status = 'ok'").fetchone()[0]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        server.terminate()
        server.wait()
        drop_database(ADMIN_URL, name)
    print(f"devices: {args.devices} (3 points each), polled every {args.interval:.0f} s for {args.seconds:.0f} s")
    print(f"collector RSS: peak {peak / 1024:.0f} MB, last {samples[-1] / 1024 if samples else 0:.0f} MB "
          f"(goal <= 200 MB)")
    print(f"readings stored: {stored}; devices healthy at the end: {healthy}")


def _busy(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
