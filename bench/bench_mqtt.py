"""MQTT collector vs a bare paho subscriber: same broker, same messages (goal: ratio >= 0.7, 0 lost).

A private mosquitto (unlimited queue, so nothing is dropped by the broker) on a free port. For
each subscriber: its persistent session is created, N QoS 1 JSON messages are published while it
is away (the broker queues them), then it connects and the time to drain the queue is measured:
bare paho = every message received (auto-acknowledged, nothing else done); collector = every
message parsed, stored in PostgreSQL (COPY) and acknowledged. Both use MQTT 5 with the same
Receive Maximum. Prints the figures; asserts nothing.

    python bench/bench_mqtt.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from collectors.clock import WallClock  # noqa: E402
from collectors.run import collect  # noqa: E402
from model.site import SiteConfig  # noqa: E402
from scratch import scratch_database  # noqa: E402
from store.sites import apply_site  # noqa: E402
from tests.collectors.mqtt_helpers import PrivateBroker, Publisher  # noqa: E402
from tests.conftest import free_port  # noqa: E402

RECEIVE_MAXIMUM = int(os.environ.get("BENCH_RECEIVE_MAXIMUM", "5000"))
T0 = 1_750_000_000


def publish(port: int, topic: str, n: int) -> None:
    pub = Publisher("127.0.0.1", port)
    infos = []
    for i in range(n):
        infos.append(pub.publish(f"{topic}/m{i % 10}", json.dumps({"ts": T0 + i // 10, "e": i, "p": i % 1000}),
                                 wait=False))
        if len(infos) % 2000 == 0:
            pub.wait_all(infos[-2000:], timeout=120)
    pub.wait_all(infos, timeout=120)
    pub.close()


def v5_props() -> Properties:
    p = Properties(PacketTypes.CONNECT)
    p.SessionExpiryInterval = 3600
    p.ReceiveMaximum = RECEIVE_MAXIMUM
    return p


def bare(port: int, topic: str, n: int) -> tuple[float, int]:
    cid = f"bare-{uuid.uuid4().hex[:8]}"
    got = [0]
    done = threading.Event()

    def on_message(c, u, m):
        got[0] += 1
        if got[0] >= n:
            done.set()

    def client():
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
        c.on_message = on_message
        c.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{topic}/+", qos=1)
        c.connect("127.0.0.1", port, clean_start=False, properties=v5_props())
        return c

    c = client()  # create the session and its subscription
    c.loop_start()
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()
    publish(port, topic, n)
    t0 = time.perf_counter()
    c = client()
    c.loop_start()
    done.wait(timeout=300)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return elapsed, got[0]


def collector(port: int, topic: str, n: int) -> tuple[float, int]:
    site = SiteConfig.model_validate({
        "enterprise": {"code": "bench", "name": "Bench"}, "site": {"code": "main", "name": "Main"},
        "mqtt": {"host": "127.0.0.1", "port": port, "client_id": f"gg-bench-{uuid.uuid4().hex[:8]}",
                 "receive_maximum": RECEIVE_MAXIMUM,
                 "devices": [{"name": f"m{i}", "points": [{"quantity": "energy_import"}, {"quantity": "active_power"}]}
                             for i in range(10)],
                 "subscriptions": [{"topic": f"{topic}/{{device}}", "timestamp": "ts",
                                    "fields": {"energy_import": "e", "active_power": "p"}}]},
    })
    with scratch_database() as url:
        with psycopg.connect(url) as conn:
            ids = apply_site(conn, site)

        async def run(body):
            begin = time.perf_counter()
            stop = asyncio.Event()
            started = asyncio.Future()
            task = asyncio.create_task(collect(site, ids, url, WallClock(), stop, flush_interval_s=0.2,
                                               on_start=started.set_result))
            parts = await started
            await parts.source.wait_connected(10)
            result = await body(parts, begin)
            stop.set()
            await task
            return result

        async def settle(parts, begin):
            await asyncio.sleep(0.5)

        asyncio.run(run(settle))  # create the session and its subscription
        publish(port, topic, n)

        async def drain(parts, begin):
            # from the collector's start until every message is stored and acknowledged
            while parts.source.acked < n and time.perf_counter() - begin < 300:
                await asyncio.sleep(0.005)
            return time.perf_counter() - begin

        elapsed = asyncio.run(run(drain))
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM reading JOIN point USING (point_id) "
                                  "WHERE quantity = 'energy_import'").fetchone()[0]
        return elapsed, stored


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    args = ap.parse_args()
    n = args.messages
    broker = PrivateBroker(free_port())
    broker.start()
    bares, colls = [], []
    try:
        for _ in range(args.rounds):  # alternate: the machine is shared, load comes and goes
            bares.append(bare(broker.port, f"bench/{uuid.uuid4().hex[:8]}", n))
            colls.append(collector(broker.port, f"bench/{uuid.uuid4().hex[:8]}", n))
    finally:
        broker.cleanup()
    tb, got_b = min(bares)
    tc, got_c = min(colls)
    lost_b = n * len(bares) - sum(g for _, g in bares)
    lost_c = n * len(colls) - sum(g for _, g in colls)
    print(f"messages: {n} per round, {args.rounds} rounds (QoS 1, MQTT 5, receive maximum {RECEIVE_MAXIMUM}, "
          "queued on the broker while the subscriber was away); best round shown")
    print(f"bare paho : {tb:7.2f} s  {n / tb:8.0f} msg/s  lost {lost_b} (all rounds)")
    print(f"collector : {tc:7.2f} s  {n / tc:8.0f} msg/s  lost {lost_c} (all rounds; parsed, COPY'd, "
          "acknowledged after commit)")
    print(f"ratio collector/bare: {tb / tc:.2f}  (goal >= 0.7)")


if __name__ == "__main__":
    main()
