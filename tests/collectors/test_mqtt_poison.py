"""Nothing a publisher sends stalls or poisons MQTT intake (issue 10 §1).

Every payload ends as stored readings, bad readings or findings and is acknowledged: known
values through ``Router.parse``, a property test over arbitrary bytes and JSON (parser and the
source's acknowledgement path), and poison published on the real Mosquitto into the real
PostgreSQL, with the collector restarted to show the broker has nothing left to redeliver.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.clock import WallClock
from collectors.mqtt import MAX_ABS_VALUE, MAX_JSON_DEPTH, TIMESTAMP_FLOOR, MqttSource, Router, json_depth_exceeds
from model.quantities import QUANTITIES
from model.readings import Quality
from model.site import SiteConfig
from store.sites import apply_site
from tests.collectors.mqtt_helpers import Publisher, unique
from tests.collectors.test_mqtt import T0, _count, _run, _until, mqtt_site

GOOD_TS = 1750478400  # 2025-06-21 04:00 UTC


def router(**mqtt_extra) -> Router:
    site = mqtt_site("p")
    if mqtt_extra:
        data = site.model_dump(mode="json", exclude_none=True)
        data["mqtt"].update(mqtt_extra)
        site = SiteConfig.model_validate(data)
    names = [n for n, _, _ in site.mqtt_points()]
    return Router(site, {n: i + 1 for i, n in enumerate(names)})  # 1 energy_import, 2 active_power, 3 voltage, 4 pv1


def msg(**fields) -> bytes:
    return json.dumps({"ts": GOOD_TS, "energy": {"import": 1}, "power": [1], "u1": 230, **fields}).encode()


def kinds(parsed) -> set[str]:
    return {f.kind for f in parsed.findings}


# -- known values ----------------------------------------------------------------------------------

@pytest.mark.parametrize("payload, kind", [
    (b"[" * 1_000_000, "oversized_payload"),                 # 1 MB of '[': above max_payload_bytes, never parsed
    (b"[" * 10_000, "malformed_payload"),                    # 10,000 levels: json.loads would recurse that deep
    (b'{"a":' * 40 + b"1" + b"}" * 40, "malformed_payload"),  # 40 levels of objects, beyond MAX_JSON_DEPTH (32)
    (b"\xff\xfe\x00", "malformed_payload"),                  # not UTF-8
    (b'{"energy": {"import": 1' + b"0" * 5000 + b"}}", "malformed_payload"),  # 5,000 digits: Python's int limit
])
def test_payloads_that_broke_the_parser_are_bad_readings_and_findings(payload, kind):
    got = router().parse("p/gw1/state", payload, T0)
    assert kind in kinds(got) and not got.ok
    # every mapped point of the subscription stored BAD, without a value, at the receipt time
    assert [(r.point_id, r.ts, r.value, r.quality) for r in got.readings] == [
        (1, T0, None, Quality.BAD), (2, T0, None, Quality.BAD), (3, T0, None, Quality.BAD)]


def test_the_payload_bound_is_a_site_file_option():
    big = msg(pad="x" * 2000)
    assert router().parse("p/gw1/state", big, T0).ok                                        # 256 KiB by default
    assert kinds(router(max_payload_bytes=1000).parse("p/gw1/state", big, T0)) == {"oversized_payload"}


def test_brackets_inside_strings_do_not_count_as_nesting():
    deep_text = msg(note="[{" * 100 + '\\"[[[')
    assert not json_depth_exceeds(deep_text)
    got = router().parse("p/gw1/state", deep_text, T0)
    assert got.ok and not got.findings
    assert json_depth_exceeds(b"[" * (MAX_JSON_DEPTH + 1)) and not json_depth_exceeds(b"[" * MAX_JSON_DEPTH)


@pytest.mark.parametrize("energy, kind", [
    (int("9" * 400), "not_a_number"),   # a 400-digit integer: no double holds it (float() raised OverflowError)
    (1e306, "out_of_range"),            # 1e306 kWh is 1e309 Wh: infinite after the conversion to Wh
    (1e13, "out_of_range"),             # 1e16 Wh: beyond 2^53, a double no longer counts every Wh
    ("1e400", "not_a_number"),          # a number as text, infinite
    (-5, "negative_counter"),           # an energy counter is never negative
])
def test_values_are_range_checked_after_unit_conversion(energy, kind):
    got = router().parse("p/gw1/state", msg(energy={"import": energy}), T0)
    assert kinds(got) == {kind}
    energy_reading = next(r for r in got.readings if r.point_id == 1)
    assert (energy_reading.value, energy_reading.quality) == (None, Quality.BAD)
    # the other fields of the message are stored as usual
    assert [(r.point_id, r.value, r.quality) for r in got.readings if r.point_id != 1] == [
        (2, 1.0, Quality.GOOD), (3, 230.0, Quality.GOOD)]


def test_negative_power_is_a_direction_not_an_error_and_a_large_counter_is_fine():
    got = router().parse("p/gw1/state", msg(power=[-4321], energy={"import": 9_000_000}), T0)
    assert not got.findings
    assert [(r.value, r.quality) for r in got.readings] == [(9e9, Quality.GOOD), (-4321.0, Quality.GOOD),
                                                           (230.0, Quality.GOOD)]


@pytest.mark.parametrize("ts", [0, 946684799, "1999-12-31T23:59:59Z", -86400])
def test_a_device_time_before_2000_is_not_trusted_stored_at_receipt_as_suspect(ts):
    got = router().parse("p/gw1/state", msg(ts=ts), T0)
    assert kinds(got) == {"past_timestamp"}
    assert [(r.ts, r.quality) for r in got.readings] == [(T0, Quality.SUSPECT)] * 3


@pytest.mark.parametrize("ts", [
    GOOD_TS + 3600,            # an hour ahead of the receipt
    10 ** 15,                  # milliseconds, the year 33658: beyond datetime (raised and was stored GOOD)
    10 ** 30,                  # beyond any calendar
    int("9" * 400),            # beyond a double
    "9999-12-31T23:59:59Z",
])
def test_a_device_time_far_ahead_is_not_trusted_stored_at_receipt_as_suspect(ts):
    # the rule of every source (model.readings.device_time): the Modbus poll's clock register is judged
    # by the same function (tests/collectors/test_modbus_checks.py)
    received = datetime.fromtimestamp(GOOD_TS, timezone.utc)
    got = router().parse("p/gw1/state", msg(ts=ts), received)
    assert kinds(got) == {"future_timestamp"}
    assert [(r.ts, r.quality) for r in got.readings] == [(received, Quality.SUSPECT)] * 3


@pytest.mark.parametrize("ts, kind", [
    ("NaN", "wrong_type"),                 # no number
    ('"yesterday"', "wrong_type"),         # text that is no time
    ("[1750478400]", "wrong_type"),        # a list
    (None, "missing_field"),               # the subscription names a timestamp field the payload lacks
])
def test_a_device_time_that_cannot_be_read_is_reported_and_stored_at_receipt_as_suspect(ts, kind):
    # the subscription says each message carries its time: without one that can be read, the values
    # are kept at the receipt time and not trusted, as a time before 2000 or far ahead is not
    stamp = "" if ts is None else f'"ts": {ts}, '
    got = router().parse("p/gw1/state", f'{{{stamp}"energy": {{"import": 1}}, "power": [1], "u1": 230}}'.encode(), T0)
    assert kinds(got) == {kind}
    assert [(r.ts, r.quality) for r in got.readings] == [(T0, Quality.SUSPECT)] * 3


# -- property: arbitrary bytes and JSON never escape the parser and are always acknowledged ------

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-10 ** 500, max_value=10 ** 500) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["ts", "energy", "import", "power", "u1", "0", "x"]) | st.text(max_size=5), inner, max_size=4),
    max_leaves=30)


def _json_bytes(value) -> bytes:
    try:
        return json.dumps(value).encode()  # NaN and Infinity as Python writes them
    except ValueError:  # an integer too long to print
        return b"[" + b"9" * 6000 + b"]"


payloads = st.one_of(
    st.binary(max_size=300),
    json_values.map(_json_bytes),
    st.fixed_dictionaries({"ts": json_values, "energy": st.fixed_dictionaries({"import": json_values}),
                           "power": st.lists(json_values, max_size=2), "u1": json_values}).map(_json_bytes),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n),
)
topics = st.sampled_from(["p/gw1/state", "p/pv1/state", "p/ghost/state", "p/pv1/x/power", "elsewhere"])
ROUTER = router()
MAPPED = {"p/gw1/state": {1, 2, 3}, "p/pv1/state": {4}, "p/pv1/x/power": {4}}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, payload=payloads)
def test_the_parser_returns_readings_or_findings_for_every_input(topic, payload):
    got = ROUTER.parse(topic, payload, T0)  # never raises
    mapped = MAPPED.get(topic, set())
    assert {r.point_id for r in got.readings} <= mapped
    if not mapped:
        assert not got.readings and got.findings  # unknown topic or device: a finding
    for r in got.readings:
        assert r.quality in (Quality.GOOD, Quality.SUSPECT, Quality.BAD)
        assert r.ts >= TIMESTAMP_FLOOR
        if r.value is None:
            assert r.quality == Quality.BAD
        else:
            assert math.isfinite(r.value) and abs(r.value) <= MAX_ABS_VALUE
            if QUANTITIES["energy_import"].kind == "counter" and r.point_id == 1 and r.quality != Quality.BAD:
                assert r.value >= 0
    # every mapped point not stored has a finding saying why (nothing silently dropped)
    if {r.point_id for r in got.readings} != mapped:
        assert got.findings


class _Acks:
    """Stands in for paho's client in the source: records the PUBACKs it is asked to send."""

    def __init__(self):
        self.acked: list[int] = []

    def ack(self, mid, qos):
        self.acked.append(mid)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(st.tuples(topics, payloads), min_size=1, max_size=8))
def test_every_message_the_source_takes_is_acknowledged_whatever_its_payload(batch):
    site = mqtt_site("p")
    names = [n for n, _, _ in site.mqtt_points()]
    submitted = []

    def submit(readings, on_durable=None, on_lost=None):
        submitted.extend(readings)
        if on_durable is not None:
            on_durable()  # as the writer does once the readings are committed

    src = MqttSource(site, {n: i + 1 for i, n in enumerate(names)}, submit, WallClock())
    src._client = _Acks()
    src._loop = SimpleNamespace(call_soon_threadsafe=lambda f, *a: f(*a))  # the drain runs at once
    for mid, (topic, payload) in enumerate(batch, start=1):
        m = mqtt.MQTTMessage(mid, topic.encode())
        m.payload, m.qos = payload, 1
        src._on_message(None, None, m)
    assert sorted(src._client.acked) == list(range(1, len(batch) + 1))
    assert src.unacked == 0 and src.acked == src.received == len(batch)


# -- on the real broker and database ------------------------------------------------------------

POISON = [
    b"[" * 1_000_000,                                   # 1 MB of '[' (RecursionError in json.loads before)
    b'{"a":' * 5000 + b"1" + b"}" * 5000,               # deep nesting
    b'{"ts": 1750478401, "energy": {"import": ' + b"9" * 400 + b'}, "power": [1], "u1": 1}',  # OverflowError
    b'{"ts": 1750478402, "energy": {"import": 1e306}, "power": [2], "u1": 2}',  # Infinity Wh, GOOD, before
    b'{"ts": 1750478403, "energy": {"import": -3}, "power": [3], "u1": 3}',     # a negative counter
    b'{"ts": 0, "energy": {"import": 4}, "power": [4], "u1": 4}',               # 1970: a clock never set
    b"\xc3\x28 not utf-8",
]


def test_poison_on_the_wire_is_acknowledged_stored_bad_and_never_comes_back(db_url, conn):
    """receive_maximum 3: before, three poison messages held the whole receive window and stopped intake."""
    prefix = unique()
    data = mqtt_site(prefix, client_id=f"gg-poison-{uuid.uuid4().hex[:8]}").model_dump(mode="json", exclude_none=True)
    data["mqtt"]["receive_maximum"] = 3
    site = SiteConfig.model_validate(data)
    ids = apply_site(conn, site)
    pub = Publisher()
    seen = {}

    async def first(parts):
        for p in POISON:
            await asyncio.to_thread(pub.publish, f"{prefix}/gw1/state", p)
        await asyncio.to_thread(pub.publish, f"{prefix}/gw1/state", json.dumps(
            {"ts": 1750478499, "energy": {"import": 5}, "power": [5], "u1": 230}))  # a good one after the poison
        assert await _until(lambda: _count(conn, "ts = to_timestamp(1750478499)") == 3)
        assert await _until(lambda: parts.source.acked == len(POISON) + 1 and parts.source.unacked == 0)
        await asyncio.sleep(0.5)  # findings written
        seen.update(received=parts.source.received)

    asyncio.run(_run(site, ids, db_url, first))
    assert seen["received"] == len(POISON) + 1
    rows = conn.execute("""SELECT p.quantity, r.value, r.quality, r.ts = to_timestamp(0) FROM reading r
                           JOIN point p USING (point_id) WHERE p.quantity = 'energy_import' ORDER BY r.ts""").fetchall()
    values = sorted(((v, q) for _, v, q, _ in rows), key=repr)
    # 1 MB '[', nesting, not UTF-8: BAD, no value (receipt time); 400 digits, 1e306 kWh, -3: BAD, no value;
    # ts 0: stored at the receipt time, suspect; the good one
    assert sorted(values, key=repr) == sorted([(None, Quality.BAD)] * 6 + [(4000.0, Quality.SUSPECT),
                                               (5000.0, Quality.GOOD)], key=repr)
    assert not any(at_epoch for *_, at_epoch in rows)  # nothing at 1970
    assert conn.execute("SELECT count(*) FROM reading WHERE value = 'Infinity'::float8").fetchone() == (0,)
    found = {k for (k,) in conn.execute("SELECT kind FROM collector_finding")}
    assert {"malformed_payload", "not_a_number", "out_of_range", "negative_counter", "past_timestamp"} <= found

    async def second(parts):
        await asyncio.sleep(1.5)
        seen.update(again=parts.source.received)

    asyncio.run(_run(site, ids, db_url, second))
    pub.close()
    assert seen["again"] == 0  # every message was acknowledged: the broker redelivers nothing


def test_a_publisher_inventing_topics_cannot_grow_the_findings_without_bound():
    """Findings are one row per (kind, source): the source is the subscription's pattern, not the topic."""
    r = router()
    sources = {f.source for i in range(50) for f in r.parse(f"p/pv1/x{i}/power", b"seven", T0).findings}
    assert sources == {"p/pv1/+/power:active_power"}
    unknown = {f.source for i in range(50) for f in r.parse(f"p/ghost{i}/state", b"{}", T0).findings}
    assert unknown == {"p/+/state"}
    assert len(r._cache) <= 101
    r.parse("p/" + "x" * 5000 + "/state", b"{}", T0)
    assert len(r._cache) <= 101  # a 5,000-character topic is not cached
