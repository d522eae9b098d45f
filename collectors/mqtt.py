"""The MQTT provider: subscriptions from the site file, payloads to readings, acknowledged once durable.

The site file's ``mqtt:`` section names the broker, the MQTT sources (devices without a profile)
and the subscriptions: topic patterns with ``+``/``#`` wildcards and an optional ``{device}``
level, each mapped to points — JSON field paths (with an optional device-timestamp field) or a
bare number.

Never lose, never double count:

- the session is persistent (MQTT 5: Clean Start 0 and a Session Expiry Interval; MQTT 3.1.1:
  clean_session=False), subscriptions are QoS 1, so the broker keeps what is published while the
  collector is away and delivers it when it returns;
- messages are acknowledged manually (paho ``manual_ack=True``, ``client.ack(mid, 1)``) only when
  the writer reports their readings durable (committed, or fsync'd to the spool), so ``kill -9``
  loses nothing: the broker redelivers what was not acknowledged;
- a redelivery of a message still held (same packet id, not yet acknowledged: the broker cannot
  reuse the id before the PUBACK) or just acknowledged (same id, topic and payload, DUP set) is
  recognised and not stored twice; anything else that comes twice carries the same device
  timestamp and is absorbed by the idempotent ingest. (A payload *without* a device timestamp
  that is redelivered after a crash between the commit and the PUBACK is stored at its new
  receipt time: use device timestamps where the gateway has them.)
- MQTT 5 is the default because it lets the collector announce ``receive_maximum`` (how many
  unacknowledged messages the broker may send); with 3.1.1 the broker's own limit applies
  (mosquitto: 20), which throttles throughput while acknowledgements wait for the database.

Garbage never stops the collector: malformed JSON on a known topic stores every mapped point as
BAD (no value) at the receipt time; a value of the wrong type or NaN is stored BAD; a missing
field, an unknown topic or device, a bad timestamp are findings (``collector_finding``). paho
runs its network loop in its own thread; parsing happens there and the readings are handed to
the event loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from collectors.clock import Clock
from model.quantities import QUANTITIES, unit_factor
from model.readings import Quality, Reading
from model.site import MqttConfig, MqttField, MqttSubscription, SiteConfig

log = logging.getLogger(__name__)

Submit = Callable[..., None]  # submit(readings, on_durable=None, on_lost=None)


@dataclass(frozen=True)
class Finding:
    kind: str
    source: str
    detail: str
    device: str | None = None


@dataclass
class Parsed:
    device: str | None
    readings: list[Reading] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    ok: bool = True  # False: the message as a whole was unusable (health failure of its device)


@dataclass(frozen=True)
class _Route:
    sub: MqttSubscription
    filter: str  # the subscription filter sent to the broker
    device_level: int | None  # index of the {device} level
    fields: dict[str, tuple[MqttField, Decimal]]  # quantity -> (field, factor to canonical)


def _lookup(doc, path: str):
    node = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


def _number(value) -> float | None:
    """A JSON value as a float; None when it is not a number (bool, object, text that is no number)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def parse_timestamp(value, tz: ZoneInfo) -> datetime:
    """Epoch seconds or milliseconds, or ISO 8601 (a time without offset is local to the enterprise)."""
    if isinstance(value, bool):
        raise ValueError(f"timestamp {value!r} is not a time")
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(f"timestamp {value!r} is not a time")
        if seconds > 1e11:  # milliseconds (1e11 s is the year 5138)
            seconds /= 1000
        return datetime.fromtimestamp(seconds, timezone.utc)
    if isinstance(value, str):
        ts = datetime.fromisoformat(value.strip())
        return (ts if ts.tzinfo else ts.replace(tzinfo=tz)).astimezone(timezone.utc)
    raise ValueError(f"timestamp {value!r} is not a time")


class Router:
    """Topic patterns to devices and points; pure (no network), so it is tested on its own."""

    def __init__(self, site: SiteConfig, point_ids: dict[str, int]) -> None:
        assert site.mqtt is not None
        self.site = site
        self.cfg: MqttConfig = site.mqtt
        self.tz = ZoneInfo(site.enterprise.timezone)
        self.point_ids = point_ids
        self.routes: list[_Route] = []
        for sub in self.cfg.subscriptions:
            levels = sub.topic.split("/")
            dev_level = levels.index("{device}") if "{device}" in levels else None
            filt = "/".join("+" if lv == "{device}" else lv for lv in levels)
            fields = {q: (f, unit_factor(f.unit or QUANTITIES[q].unit, q)) for q, f in sub.field_specs().items()}
            self.routes.append(_Route(sub, filt, dev_level, fields))
        # (device name, quantity) -> point id
        self.points = {(d.name, p.quantity): point_ids[site.point_name(d, p)]
                       for d in self.cfg.devices for p in d.points}
        self._devices = {d.name for d in self.cfg.devices}
        self._cache: dict[str, tuple] = {}

    @property
    def filters(self) -> list[str]:
        return list(dict.fromkeys(r.filter for r in self.routes))

    def _resolve(self, topic: str):
        """(route, device, targets, findings) for a topic; cached, topics repeat."""
        hit = self._cache.get(topic)
        if hit is not None:
            return hit
        for route in self.routes:
            if mqtt.topic_matches_sub(route.filter, topic):
                break
        else:
            hit = (None, None, [], [Finding("unknown_topic", topic, "no subscription maps this topic")])
            return self._remember(topic, hit)
        device = route.sub.device if route.device_level is None else topic.split("/")[route.device_level]
        if device not in self._devices:
            hit = (None, None, [], [Finding("unknown_topic", topic, f"no mqtt device {device!r} in the site file")])
            return self._remember(topic, hit)
        targets, findings = [], []  # targets: (quantity, field, factor, point id)
        for q, (f, factor) in route.fields.items():
            pid = self.points.get((device, q))
            if pid is None:
                findings.append(Finding("unknown_point", f"{topic}:{q}", f"device {device!r} has no point for {q!r}",
                                        device))
                continue
            targets.append((q, f, factor, pid))
        return self._remember(topic, (route, device, targets, findings))

    def _remember(self, topic: str, hit):
        if len(self._cache) >= 100_000:  # topics from a misbehaving publisher must not grow memory
            self._cache.clear()
        self._cache[topic] = hit
        return hit

    def parse(self, topic: str, payload: bytes, received: datetime) -> Parsed:
        route, device, targets, findings = self._resolve(topic)
        if route is None:
            return Parsed(None, findings=list(findings), ok=False)
        sub = route.sub
        out = Parsed(device, findings=list(findings))
        try:
            text = payload.decode("utf-8")
            doc = json.loads(text) if sub.format == "json" else text
        except (UnicodeDecodeError, ValueError) as exc:
            out.ok = False
            out.findings.append(Finding("malformed_payload", topic, f"{exc}; payload {payload[:200]!r}", device))
            out.readings = [Reading(pid, received, None, Quality.BAD) for _, _, _, pid in targets]
            return out
        if sub.format == "json" and not isinstance(doc, (dict, list)):
            out.ok = False
            out.findings.append(Finding("malformed_payload", topic, f"JSON {type(doc).__name__}, not an object: "
                                        f"{payload[:200]!r}", device))
            out.readings = [Reading(pid, received, None, Quality.BAD) for _, _, _, pid in targets]
            return out
        ts = received
        if sub.timestamp:
            try:
                ts = parse_timestamp(_lookup(doc, sub.timestamp), self.tz)
            except KeyError:
                out.findings.append(Finding("missing_field", f"{topic}:{sub.timestamp}",
                                            "timestamp field missing; stored at the receipt time", device))
            except (ValueError, TypeError, OverflowError, OSError) as exc:
                out.findings.append(Finding("wrong_type", f"{topic}:{sub.timestamp}",
                                            f"timestamp unreadable ({exc}); stored at the receipt time", device))
        bad = 0
        for q, f, factor, pid in targets:
            if sub.format == "json":
                try:
                    raw = _lookup(doc, f.path)
                except KeyError:
                    out.findings.append(Finding("missing_field", f"{topic}:{f.path}", f"field {f.path!r} missing", device))
                    continue
            else:
                raw = doc
            value = _number(raw)
            if value is None or not math.isfinite(value):
                bad += 1
                kind = "wrong_type" if value is None else "not_a_number"
                out.findings.append(Finding(kind, f"{topic}:{f.path or q}", f"{q}: {str(raw)[:100]!r}", device))
                out.readings.append(Reading(pid, ts, None, Quality.BAD))
                continue
            if factor != 1:
                value = float(Decimal(repr(value)) * factor)
            suspect = (f.min is not None and value < f.min) or (f.max is not None and value > f.max)
            out.readings.append(Reading(pid, ts, value, Quality.SUSPECT if suspect else Quality.GOOD))
        if targets and bad == len(targets):
            out.ok = False
        return out


class MqttSource:
    """One persistent MQTT session; readings go to ``submit(readings, on_durable)``."""

    def __init__(self, site: SiteConfig, point_ids: dict[str, int], submit: Submit, clock: Clock, *,
                 health=None, wake: Callable[[], None] | None = None) -> None:
        assert site.mqtt is not None
        self.cfg = site.mqtt
        self.router = Router(site, point_ids)
        self.submit = submit
        self.wake = wake
        self.clock = clock
        self.health = health
        self.client_id = self.cfg.client_id or f"greengauge-{site.enterprise.code}-{site.site.code}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self._unacked: set[int] = set()
        self._recent: OrderedDict[int, tuple[str, int]] = OrderedDict()
        self._epoch = 0
        self._inbox: list = []
        self._drain_scheduled = False
        self._paused = False
        self._connected = threading.Event()
        self._away = False
        self.received = 0
        self.duplicates = 0
        self.acked = 0
        self.lost = 0  # messages whose readings the writer dropped, left unacknowledged

    # -- the paho thread -------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        c = self.cfg
        v5 = c.protocol == "5"
        kwargs = {} if v5 else {"clean_session": False}
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, manual_ack=True, **kwargs)
        password = c.password or (os.environ.get(c.password_env) if c.password_env else None)
        if c.username:
            client.username_pw_set(c.username, password)
        if c.tls is not None and c.tls.enabled:
            client.tls_set(ca_certs=c.tls.ca_certs, certfile=c.tls.certfile, keyfile=c.tls.keyfile,
                           cert_reqs=ssl.CERT_REQUIRED)
            client.tls_insecure_set(c.tls.insecure)
        client.reconnect_delay_set(c.reconnect_min_s, c.reconnect_max_s)
        client.max_inflight_messages_set(max(20, c.receive_maximum))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._log_away(f"broker {self.cfg.host}:{self.cfg.port} refused the connection: {reason_code}")
            return
        with self._lock:
            if not flags.session_present:
                # a new session: packet ids held from an old one mean nothing now
                self._unacked.clear()
                self._recent.clear()
                self._epoch += 1
        if self.cfg.protocol == "5":
            # retained messages only for a new subscription, not again at every reconnect
            opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe([(f, opts) for f in self.router.filters])
        else:
            client.subscribe([(f, 1) for f in self.router.filters])
        self._connected.set()
        if self._away:
            log.info("MQTT broker %s:%d is back (session %s)", self.cfg.host, self.cfg.port,
                     "resumed" if flags.session_present else "new")
            self._away = False
        else:
            log.info("connected to MQTT broker %s:%d as %s (session %s)", self.cfg.host, self.cfg.port,
                     self.client_id, "resumed" if flags.session_present else "new")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._paused:
            self._log_away(f"lost the MQTT broker {self.cfg.host}:{self.cfg.port}: {reason_code}")

    def _log_away(self, message: str) -> None:
        if not self._away:
            log.error("%s; reconnecting with backoff", message)
            self._away = True
        if self._loop is not None and self.health is not None:
            self._loop.call_soon_threadsafe(self._broker_away, message)

    def _broker_away(self, message: str) -> None:
        for d in self.cfg.devices:
            self.health.failure(d.name, message, self.clock.now())

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        try:
            self._handle(msg)
        except Exception:  # never let a message kill paho's network thread
            log.exception("MQTT message on %r could not be handled", getattr(msg, "topic", "?"))

    def _handle(self, msg: mqtt.MQTTMessage) -> None:
        if self._paused:
            return  # not acknowledged: the broker delivers it again to the next session
        qos1 = msg.qos > 0
        key = (msg.topic, hash(msg.payload))
        with self._lock:
            if qos1 and msg.mid in self._unacked:
                self.duplicates += 1
                return  # the broker resent a message we hold; it is acknowledged when durable
            if qos1 and msg.dup and self._recent.get(msg.mid) == key:
                self.duplicates += 1
                self._client.ack(msg.mid, msg.qos)  # our PUBACK was lost with the connection
                return
            if qos1:
                self._unacked.add(msg.mid)
            epoch = self._epoch
        self.received += 1
        parsed = self.router.parse(msg.topic, msg.payload, self.clock.now())
        # hand over in bursts: one wake-up of the event loop for whatever arrived meanwhile
        with self._lock:
            self._inbox.append((parsed, msg.mid if qos1 else None, msg.qos, epoch, key))
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        self._loop.call_soon_threadsafe(self._drain)

    # -- the event loop ----------------------------------------------------------------------------
    def _drain(self) -> None:
        """Everything that arrived since the last drain: one submission, acknowledged together."""
        with self._lock:
            items, self._inbox = self._inbox, []
            self._drain_scheduled = False
        h = self.health
        now = self.clock.now()
        readings: list[Reading] = []
        acks = []
        seen_ok: set[str] = set()
        for parsed, mid, qos, epoch, key in items:
            if h is not None:
                for f in parsed.findings:
                    h.finding(f.kind, f.source, f.detail, device=f.device, when=now)
                if parsed.device is not None:
                    if not parsed.ok:
                        h.failure(parsed.device, "; ".join(f.detail for f in parsed.findings)[:500]
                                  or "unusable message", now)
                        seen_ok.discard(parsed.device)
                    elif parsed.device not in seen_ok:
                        h.success(parsed.device, None, now)
                        seen_ok.add(parsed.device)
            readings.extend(parsed.readings)
            if mid is not None:
                acks.append((mid, qos, epoch, key))
        if acks:
            self.submit(readings, lambda: self._ack(acks), lambda: self._forget(acks))
        else:
            self.submit(readings, None)
        if self.wake is not None and len(self._unacked) >= max(1, self.cfg.receive_maximum // 4):
            self.wake()

    def _ack(self, acks: list[tuple[int, int, int, tuple]]) -> None:
        with self._lock:
            for mid, qos, epoch, key in acks:
                if epoch != self._epoch or mid not in self._unacked:
                    continue  # the session it belonged to is gone; the broker forgot the message too
                self._unacked.discard(mid)
                self._recent[mid] = key
                self._recent.move_to_end(mid)
                self._client.ack(mid, qos)
                self.acked += 1
            while len(self._recent) > 2 * self.cfg.receive_maximum:
                self._recent.popitem(last=False)

    def _forget(self, acks: list[tuple[int, int, int, tuple]]) -> None:
        """The writer dropped readings of these messages: never acknowledge them, and stop holding them.

        Left unacknowledged, the broker keeps them and redelivers them to the next session (a
        reconnect); no longer in ``_unacked``, that redelivery is taken as new, not as a duplicate of
        a message still held, and they stop counting towards the wake-up threshold. Until then the
        broker still counts them in its window of unacknowledged messages (``receive_maximum``).
        """
        n = 0
        with self._lock:
            for mid, _qos, epoch, _key in acks:
                if epoch == self._epoch and mid in self._unacked:
                    self._unacked.discard(mid)
                    n += 1
        self.lost += n
        if n:
            log.error("%d MQTT messages left unacknowledged (%d so far): the writer dropped their readings; "
                      "the broker redelivers them to the next session", n, self.lost)

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = client = self._make_client()
        c = self.cfg
        if c.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = c.session_expiry_s
            props.ReceiveMaximum = c.receive_maximum
            client.connect_async(c.host, c.port, keepalive=c.keepalive_s, clean_start=False, properties=props)
        else:
            client.connect_async(c.host, c.port, keepalive=c.keepalive_s)
        client.loop_start()

    async def wait_connected(self, timeout: float) -> bool:
        return await asyncio.to_thread(self._connected.wait, timeout)

    def pause(self) -> None:
        """Take no more messages (those arriving now stay unacknowledged, for the next session)."""
        self._paused = True

    async def stop(self) -> None:
        """Disconnect after the acknowledgements queued so far are sent; the session stays on the broker."""
        self._paused = True
        if self._client is not None:
            client = self._client
            await asyncio.to_thread(self._disconnect, client)

    @staticmethod
    def _disconnect(client: mqtt.Client) -> None:
        client.disconnect()
        client.loop_stop()
