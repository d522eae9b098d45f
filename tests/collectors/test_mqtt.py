"""The MQTT source against the real Mosquitto (topics unique per test) and a real PostgreSQL."""

import asyncio
import json
import logging
import os
import shutil
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from collectors.clock import WallClock
from collectors.mqtt import Router, parse_timestamp
from model.readings import Quality
from collectors.run import collect
from model.site import SiteConfig
from store.sites import apply_site
from tests.collectors.mqtt_helpers import HOST, PORT, PrivateBroker, Publisher, unique
from tests.conftest import free_port

T0 = datetime(2025, 6, 21, 4, 0, tzinfo=timezone.utc)


def mqtt_site(prefix: str, *, port: int = PORT, client_id: str | None = None, protocol: str = "5") -> SiteConfig:
    return SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"},
        "site": {"code": "main", "name": "Main"},
        "mqtt": {
            "host": HOST, "port": port, "client_id": client_id or f"gg-test-{uuid.uuid4().hex[:10]}",
            "protocol": protocol, "reconnect_min_s": 1, "reconnect_max_s": 2,
            "devices": [
                {"name": "gw1", "points": [{"quantity": "energy_import", "role": "grid_import"},
                                           {"quantity": "active_power"}, {"quantity": "voltage_l1"}]},
                {"name": "pv1", "points": [{"quantity": "active_power"}]},
            ],
            "subscriptions": [
                {"topic": f"{prefix}/{{device}}/state", "format": "json", "timestamp": "ts",
                 "fields": {"energy_import": {"path": "energy.import", "unit": "kWh"},
                            "active_power": "power.0",
                            "voltage_l1": {"path": "u1", "min": 0, "max": 500}}},
                {"topic": f"{prefix}/pv1/+/power", "device": "pv1", "format": "number",
                 "quantity": "active_power", "unit": "kW"},
            ],
        },
    })


def applied(conn, site):
    ids = apply_site(conn, site)
    return ids


# -- routing and parsing, no network --------------------------------------------------------------

def router(prefix="p"):
    site = mqtt_site(prefix)
    names = [n for n, _, _ in site.mqtt_points()]
    return Router(site, {n: i + 1 for i, n in enumerate(names)})


def test_topic_patterns_become_filters_and_name_the_device():
    r = router("plant")
    assert r.filters == ["plant/+/state", "plant/pv1/+/power"]
    got = r.parse("plant/gw1/state", json.dumps(
        {"ts": 1750478400, "energy": {"import": 1234.5}, "power": [-4321, 0], "u1": 600}).encode(), T0)
    assert got.device == "gw1" and got.ok and not got.findings
    ts = datetime.fromtimestamp(1750478400, timezone.utc)
    assert [(x.point_id, x.ts, x.value, x.quality) for x in got.readings] == [
        (1, ts, 1_234_500.0, Quality.GOOD),   # kWh -> Wh, exactly
        (2, ts, -4321.0, Quality.GOOD),
        (3, ts, 600.0, Quality.SUSPECT),      # above the plausible 500 V
    ]
    num = r.parse("plant/pv1/inv7/power", b" 12.5 ", T0)
    assert [(x.point_id, x.ts, x.value) for x in num.readings] == [(4, T0, 12_500.0)]  # kW -> W, receipt time


@pytest.mark.parametrize("payload, kinds, values", [
    (b"{not json", {"malformed_payload"}, [None, None, None]),             # malformed JSON: all BAD
    (b"[1, 2]", {"missing_field"}, []),                                      # JSON, but not the fields
    (b'"a string"', {"malformed_payload"}, [None, None, None]),              # JSON, not an object
    (b'{"energy": {"import": "lots"}, "power": [true], "u1": NaN}',          # wrong types, NaN
     {"wrong_type", "not_a_number", "missing_field"}, [None, None, None]),
    (b'{"energy": {"import": "2.5"}, "power": [1], "u1": 230}',              # a number as text is a number
     {"missing_field"}, [2500.0, 1.0, 230.0]),
    (b"\xff\xfe", {"malformed_payload"}, [None, None, None]),               # not UTF-8
])
def test_garbage_becomes_bad_readings_or_findings_never_an_exception(payload, kinds, values):
    got = router().parse("p/gw1/state", payload, T0)
    assert {f.kind for f in got.findings} == kinds
    assert [x.value for x in got.readings] == values
    assert all(x.quality == Quality.BAD for x in got.readings if x.value is None)


def test_unknown_topics_and_devices_are_findings():
    r = router()
    assert [f.kind for f in r.parse("p/ghost/state", b"{}", T0).findings] == ["unknown_topic"]
    assert [f.kind for f in r.parse("elsewhere/x", b"1", T0).findings] == ["unknown_topic"]
    # pv1 has no energy_import point: the mapped field is reported, the others stored
    got = r.parse("p/pv1/state", b'{"power": [5], "energy": {"import": 1}}', T0)
    assert [f.kind for f in got.findings] == ["unknown_point", "unknown_point", "missing_field"] or \
        {f.kind for f in got.findings} <= {"unknown_point", "missing_field"}
    assert [x.value for x in got.readings] == [5.0]


@pytest.mark.parametrize("raw, expected", [
    (1750478400, datetime(2025, 6, 21, 4, 0, tzinfo=timezone.utc)),            # epoch seconds
    (1750478400123, datetime(2025, 6, 21, 4, 0, 0, 123000, tzinfo=timezone.utc)),  # epoch milliseconds
    ("2025-06-21T12:00:00+08:00", datetime(2025, 6, 21, 4, 0, tzinfo=timezone.utc)),
    ("2025-06-21T12:00:00Z", datetime(2025, 6, 21, 12, 0, tzinfo=timezone.utc)),
    ("2025-06-21 12:00:00", datetime(2025, 6, 21, 4, 0, tzinfo=timezone.utc)),  # no offset: the enterprise's zone
])
def test_device_timestamps(raw, expected):
    assert parse_timestamp(raw, ZoneInfo("Asia/Shanghai")) == expected


def test_site_file_errors_name_the_problem():
    base = mqtt_site("x").model_dump(mode="json", exclude_none=True)
    bad_sub = dict(base["mqtt"]["subscriptions"][1], topic="a/b+/c")
    with pytest.raises(ValueError, match="whole level"):
        SiteConfig.model_validate({**base, "mqtt": {**base["mqtt"], "subscriptions": [bad_sub]}})
    no_point = dict(base["mqtt"]["subscriptions"][1], quantity="energy_export", unit="kWh")
    with pytest.raises(ValueError, match="has no point for energy_export"):
        SiteConfig.model_validate({**base, "mqtt": {**base["mqtt"], "subscriptions": [no_point]}})
    wrong_unit = dict(base["mqtt"]["subscriptions"][1], unit="kWh")
    with pytest.raises(ValueError, match="does not fit"):
        SiteConfig.model_validate({**base, "mqtt": {**base["mqtt"], "subscriptions": [wrong_unit]}})


# -- against the broker and the database ----------------------------------------------------------

async def _until(predicate, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


def _count(conn, where="TRUE"):
    conn.commit()
    return conn.execute(f"SELECT count(*) FROM reading WHERE {where}").fetchone()[0]


async def _run(site, ids, db_url, body, **kw):
    """Run the collector while ``body(parts)`` runs; return the writer."""
    stop = asyncio.Event()
    started = asyncio.Future()
    task = asyncio.create_task(collect(site, ids, db_url, WallClock(), stop, flush_interval_s=0.1,
                                       health_interval_s=0.2, on_start=started.set_result, **kw))
    parts = await started
    assert await parts.source.wait_connected(10)
    await asyncio.sleep(0.2)  # subscribed
    try:
        await body(parts)
    finally:
        stop.set()
        writer = await task
    return writer


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_messages_published_while_the_collector_is_away_arrive_when_it_returns(db_url, conn, protocol):
    prefix = unique()
    site = mqtt_site(prefix, client_id=f"gg-away-{uuid.uuid4().hex[:8]}", protocol=protocol)
    ids = applied(conn, site)
    pub = Publisher()
    start = int(T0.timestamp())

    def send(i):
        pub.publish(f"{prefix}/gw1/state", json.dumps({"ts": start + i, "energy": {"import": i / 1000},
                                                       "power": [i], "u1": 230}))

    async def first(parts):
        for i in range(20):
            send(i)
        assert await _until(lambda: _count(conn) == 60)

    asyncio.run(_run(site, ids, db_url, first))
    for i in range(20, 50):  # the collector is away; its session on the broker keeps these
        send(i)

    async def second(parts):
        assert await _until(lambda: _count(conn) == 150)

    writer = asyncio.run(_run(site, ids, db_url, second))
    pub.close()
    rows = conn.execute(
        """SELECT count(*), count(DISTINCT r.ts), min(r.value), max(r.value) FROM reading r
           JOIN point p USING (point_id) WHERE p.quantity = 'energy_import'""").fetchone()
    assert rows == (50, 50, 0.0, 49.0)
    assert writer.written == 90


def test_power_is_stored_with_the_sign_of_the_devices_role_as_on_modbus(db_url, conn):
    # one convention per role for every device (docs/devices.md "Power sign", model.site.power_sign):
    # the same published power (-4321 W: the device's export counting up) behind each role
    prefix = unique()
    roles = {
        "grid": [{"quantity": "energy_import", "role": "grid_import"}, {"quantity": "energy_export", "role": "grid_export"}],
        "pv": [{"quantity": "energy_export", "role": "pv_generation"}],
        "pvrev": [{"quantity": "energy_import", "role": "pv_generation"}],  # generation counted as import
        "battery": [{"quantity": "energy_import", "role": "storage_charge"},
                    {"quantity": "energy_export", "role": "storage_discharge"}],
        "line": [{"quantity": "energy_import"}],
    }
    site = SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "mqtt": {"host": HOST, "port": PORT, "client_id": f"gg-test-{uuid.uuid4().hex[:10]}",
                 "devices": [{"name": n, "points": [*pts, {"quantity": "active_power"}, {"quantity": "active_power_l1"}]}
                             for n, pts in roles.items()],
                 "subscriptions": [{"topic": f"{prefix}/{{device}}/state", "format": "json",
                                    "fields": {"active_power": "p", "active_power_l1": "p1",
                                               # a plausible range is as published, as a profile's is as
                                               # the meter measures it
                                               "energy_import": {"path": "ei", "min": 0}}}]},
    })
    ids = applied(conn, site)
    pub = Publisher()

    async def body(parts):
        for name in roles:
            pub.publish(f"{prefix}/{name}/state", json.dumps({"p": -4321, "p1": -1000, "ei": 5}))
        assert await _until(lambda: _count(conn) == 2 * len(roles) + 4)  # power of each, energy of 4

    asyncio.run(_run(site, ids, db_url, body))
    pub.close()
    power = {(name, q): (value, quality) for name, q, value, quality in conn.execute(
        "SELECT d.name, p.quantity, r.value, r.quality FROM reading r JOIN point p USING (point_id) "
        "JOIN device d USING (device_id) WHERE p.quantity LIKE 'active_power%'").fetchall()}
    good = Quality.GOOD
    assert power == {
        ("grid", "active_power"): (-4321.0, good), ("grid", "active_power_l1"): (-1000.0, good),   # + import
        ("pv", "active_power"): (4321.0, good), ("pv", "active_power_l1"): (1000.0, good),         # + generation
        ("pvrev", "active_power"): (-4321.0, good), ("pvrev", "active_power_l1"): (-1000.0, good),
        ("battery", "active_power"): (4321.0, good), ("battery", "active_power_l1"): (1000.0, good),  # + discharge
        ("line", "active_power"): (-4321.0, good), ("line", "active_power_l1"): (-1000.0, good),   # no role: + import
    }
    # counters are never signed: stored as published
    assert {v for (v,) in conn.execute("SELECT r.value FROM reading r JOIN point p USING (point_id) "
                                       "WHERE p.quantity = 'energy_import'")} == {5.0}


def test_an_mqtt_device_whose_roles_ask_for_opposite_signs_is_refused():
    with pytest.raises(ValueError, match="opposite signs"):
        SiteConfig.model_validate({
            "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
            "mqtt": {"devices": [{"name": "x", "points": [{"quantity": "energy_import", "role": "grid_import"},
                                                          {"quantity": "energy_export", "role": "pv_generation"}]}],
                     "subscriptions": [{"topic": "t/x", "device": "x", "format": "number",
                                        "quantity": "energy_import"}]},
        })


def test_garbage_on_the_wire_is_stored_bad_or_reported_and_the_collector_keeps_going(db_url, conn):
    prefix = unique()
    site = mqtt_site(prefix)
    ids = applied(conn, site)
    pub = Publisher()
    future = int(time.time()) + 3600

    async def body(parts):
        pub.publish(f"{prefix}/gw1/state", b"{not json")
        pub.publish(f"{prefix}/gw1/state", json.dumps({"ts": 1750478401, "energy": {"import": "x"},
                                                       "power": [None], "u1": 230}))
        pub.publish(f"{prefix}/gw1/state", b'{"ts": 1750478402, "energy": {"import": 1}, "power": [NaN], "u1": 1}')
        pub.publish(f"{prefix}/ghost/state", b"{}")
        pub.publish(f"{prefix}/pv1/a/power", b"seven")
        pub.publish(f"{prefix}/gw1/state", json.dumps({"ts": future, "energy": {"import": 2},
                                                       "power": [5], "u1": 231}))
        pub.publish(f"{prefix}/pv1/a/power", b"1.5")  # still running: a good one after the garbage
        assert await _until(lambda: _count(conn) == 3 + 3 + 3 + 1 + 3 + 1)
        await asyncio.sleep(0.5)  # findings and health written
        conn.commit()
        seen["health"] = dict(conn.execute(  # while it runs (a stopped collector's devices are not collected)
            "SELECT d.name, h.status FROM device_health h JOIN device d USING (device_id)").fetchall())

    seen = {}
    asyncio.run(_run(site, ids, db_url, body))
    pub.close()
    q = {r[0]: r[1] for r in conn.execute("SELECT quality, count(*) FROM reading GROUP BY quality")}
    assert q == {Quality.BAD: 3 + 2 + 1 + 1, Quality.GOOD: 1 + 2 + 1, Quality.SUSPECT: 3}
    # the future timestamp is not trusted: stored at the collector's time, suspect
    ts = conn.execute("SELECT max(ts) FROM reading").fetchone()[0]
    assert ts < datetime.now(timezone.utc) + timedelta(seconds=5)
    kinds = {r[0] for r in conn.execute("SELECT kind FROM collector_finding")}
    assert {"malformed_payload", "wrong_type", "not_a_number", "unknown_topic", "future_timestamp"} <= kinds
    assert seen["health"] == {"gw1": "ok", "pv1": "ok"}
    assert conn.execute("SELECT profile, transport->>'kind' FROM device WHERE name = 'gw1'").fetchone() == (None, "mqtt")


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("mosquitto_passwd")),
                    reason="needs openssl and mosquitto_passwd to make the broker's certificate and password file")
def test_tls_and_password_to_a_private_broker_and_a_wrong_password_reported_not_fatal(db_url, conn, caplog):
    port = free_port()
    broker = PrivateBroker(port, anonymous=False)
    try:
        ca = broker.make_tls()
        passwd = broker.dir / "passwd"
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "gg", "s3cret"], check=True)
        os.chmod(passwd, 0o644)
        broker.conf.write_text(broker.conf.read_text().replace(
            "\n\nallow_anonymous", f"\ncafile {ca}\ncertfile {broker.dir}/server.crt\n"
            f"keyfile {broker.dir}/server.key\npassword_file {passwd}\nallow_anonymous"))
        assert "certfile" in broker.conf.read_text() and "password_file" in broker.conf.read_text()
        broker.start()
        prefix = unique()
        base = mqtt_site(prefix, port=port).model_dump(mode="json", exclude_none=True)
        base["mqtt"].update(tls={"ca_certs": ca}, username="gg", password_env="GG_TEST_MQTT_PASSWORD")
        os.environ["GG_TEST_MQTT_PASSWORD"] = "s3cret"  # (site validation checks that it is set)
        site = SiteConfig.model_validate(base)
        ids = applied(conn, site)
        pub = Publisher("127.0.0.1", port, ca_certs=ca, username="gg", password="s3cret")

        async def body(parts):
            pub.publish(f"{prefix}/pv1/x/power", b"2")
            assert await _until(lambda: _count(conn) == 1)

        asyncio.run(_run(site, ids, db_url, body))
        assert conn.execute("SELECT value FROM reading").fetchone() == (2000.0,)

        # the wrong password: refused, logged once, the collector stays up and keeps trying
        os.environ["GG_TEST_MQTT_PASSWORD"] = "wrong"
        seen = {}

        async def refused():
            stop = asyncio.Event()
            task = asyncio.create_task(collect(site, ids, db_url, WallClock(), stop, flush_interval_s=0.1,
                                               health_interval_s=0.2))
            await asyncio.sleep(2.5)
            assert not task.done()
            conn.commit()  # the devices are away with that reason (greengauge status), while it runs
            seen["health"] = conn.execute("SELECT h.status, h.last_error FROM device_health h JOIN device d "
                                          "USING (device_id) WHERE d.name = 'gw1'").fetchone()
            stop.set()
            await task

        with caplog.at_level(logging.ERROR, logger="collectors.mqtt"):
            asyncio.run(refused())
        assert len([r for r in caplog.records if "refused the connection" in r.getMessage()]) == 1
        assert seen["health"][0] == "away" and "refused the connection" in seen["health"][1]
        pub.close()
    finally:
        os.environ.pop("GG_TEST_MQTT_PASSWORD", None)
        broker.cleanup()


def test_an_mqtt_source_that_stops_publishing_is_found_stale_by_the_quality_flow(db_url, conn):
    from flows.quality import check

    prefix = unique()
    site = mqtt_site(prefix)
    ids = applied(conn, site)
    assert conn.execute("SELECT poll_interval_s FROM device WHERE name = 'gw1'").fetchone() == (60,)
    pub = Publisher()

    async def body(parts):
        pub.publish(f"{prefix}/gw1/state", json.dumps({"ts": int(T0.timestamp()), "energy": {"import": 1},
                                                       "power": [1], "u1": 230}))
        assert await _until(lambda: _count(conn) == 3)

    asyncio.run(_run(site, ids, db_url, body))
    pub.close()
    result = check(db_url, T0 + timedelta(minutes=10), now=T0 + timedelta(minutes=10))  # 10 intervals of silence
    gw1 = conn.execute("SELECT device_id FROM device WHERE name = 'gw1'").fetchone()[0]
    assert ("stale_device", gw1, None, T0) in result.opened


def test_messages_whose_readings_the_writer_dropped_are_never_acknowledged_and_come_again(db_url, conn):
    """No spool, the database slowed by a real ACCESS EXCLUSIVE lock on ``reading``, max_queued 4:
    the writer drops readings of some messages; those are not acknowledged, no longer held as
    unacknowledged, and the broker redelivers them to the next session, which stores them."""
    prefix = unique()
    site = mqtt_site(prefix, client_id=f"gg-drop-{uuid.uuid4().hex[:8]}")
    ids = applied(conn, site)
    conn.commit()
    pub = Publisher()
    start = int(T0.timestamp())

    def send(i):
        pub.publish(f"{prefix}/gw1/state", json.dumps({"ts": start + i, "energy": {"import": i / 1000},
                                                       "power": [i], "u1": 230}))

    async def hold_lock(seconds):
        import psycopg

        locker = await asyncio.to_thread(psycopg.connect, db_url)
        locker.execute("LOCK TABLE reading IN ACCESS EXCLUSIVE MODE")
        await asyncio.sleep(seconds)
        locker.rollback()
        locker.close()

    seen = {}

    async def first(parts):
        w, src = parts.writer, parts.source
        w.max_queued = 4  # one message is 3 readings
        lock = asyncio.create_task(hold_lock(2.0))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(send, 0)
        await asyncio.sleep(0.4)  # message 0 is in flight, waiting for the lock
        for i in range(1, 6):
            await asyncio.to_thread(send, i)
            await asyncio.sleep(0.1)
        await lock
        assert await _until(lambda: w.queued == 0 and src.unacked == 0)
        seen.update(dropped=w.dropped, lost=src.lost, acked=src.acked, received=src.received,
                    finding=parts.health.findings_total.get("readings_dropped"))

    asyncio.run(_run(site, ids, db_url, first))
    assert seen["dropped"] > 0 and seen["finding"] == seen["dropped"]
    assert seen["lost"] >= 1 and seen["acked"] + seen["lost"] == seen["received"] == 6
    # every acknowledged message is stored; of the lost ones at most the readings not dropped
    assert 3 * seen["acked"] <= _count(conn) < 18
    assert conn.execute("""SELECT count(*) FROM (SELECT ts FROM reading GROUP BY ts HAVING count(*) = 3) m
                           """).fetchone()[0] >= seen["acked"]

    async def second(parts):
        assert await _until(lambda: _count(conn) == 18)  # the broker redelivered the unacknowledged ones

    asyncio.run(_run(site, ids, db_url, second))
    pub.close()
    assert conn.execute("SELECT count(DISTINCT ts) FROM reading").fetchone() == (6,)


def test_a_field_published_with_the_other_sign_says_sign_minus_one_as_a_profile_register_does():
    # a gateway publishing its PV inverter's generation as positive (the direction energy_export
    # counts): `sign: -1` brings it to the native sign, then the role's applies — stored + generation,
    # as a profile register with sign -1 (docs/devices.md "Power sign")
    site = SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "mqtt": {"devices": [{"name": "pv", "points": [{"quantity": "energy_export", "role": "pv_generation"},
                                                        {"quantity": "active_power"}]},
                             {"name": "line", "points": [{"quantity": "active_power"}]}],
                 "subscriptions": [
                     {"topic": "t/pv/state", "device": "pv", "format": "json",
                      "fields": {"active_power": {"path": "p", "unit": "kW", "sign": -1, "min": 0}}},
                     {"topic": "t/line/power", "device": "line", "format": "number", "quantity": "active_power",
                      "sign": -1}]},
    })
    r = Router(site, {n: i + 1 for i, (n, _, _) in enumerate(site.mqtt_points())})
    ids = {n: i + 1 for i, (n, _, _) in enumerate(site.mqtt_points())}
    got = r.parse("t/pv/state", b'{"p": 4.321}', T0)
    assert [(x.point_id, x.value, x.quality) for x in got.readings] == [
        (ids["acme.main.pv.active_power"], 4321.0, Quality.GOOD)]  # + generation; min 0 judged as published
    got = r.parse("t/line/power", b"250", T0)
    assert [x.value for x in got.readings] == [-250.0]  # no role: + consumption, published the other way
    base = site.model_dump(mode="json", exclude_none=True)
    bad = dict(base["mqtt"]["subscriptions"][0], fields={"energy_export": {"path": "e", "sign": -1}})
    with pytest.raises(ValueError, match="'sign' is for power"):
        SiteConfig.model_validate({**base, "mqtt": {**base["mqtt"], "subscriptions": [bad]}})
