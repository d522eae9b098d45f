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
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict, deque
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
from model.readings import MAX_ABS_VALUE, TIMESTAMP_FLOOR, Quality, Reading, device_time, impossible_value
from model.site import POWER_QUANTITIES, MqttConfig, MqttField, MqttSubscription, SiteConfig, power_sign

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


#: payloads are bounded before they are parsed (MqttConfig.max_payload_bytes is the size bound)
MAX_JSON_DEPTH = 32
# TIMESTAMP_FLOOR and MAX_ABS_VALUE (imported above) are the checks of every source: model/readings.py
_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


def json_depth_exceeds(payload: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays/objects deeper than ``limit`` (checked before ``json.loads``,
    which recurses once per level). Brackets inside strings do not count."""
    if payload.count(b"[") + payload.count(b"{") <= limit:
        return False  # the common case, at C speed
    depth, in_str, skip = 0, False, -1
    for m in _STRUCTURE.finditer(payload):
        at, c = m.start(), m.group()
        if at == skip:
            continue  # the character a backslash escapes
        if in_str:
            if c == b"\\":
                skip = at + 1
            elif c == b'"':
                in_str = False
        elif c == b'"':
            in_str = True
        elif c in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif c in (b"]", b"}"):
            depth -= 1
    return False


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
    """A JSON value as a float (infinite when too large for one); None when it is not a number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # a 400-digit integer
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        try:
            return float(value.strip())
        except (ValueError, OverflowError):
            return None
    return None


def _brief(raw) -> str:
    """A short, safe text of a JSON value for a finding (never the whole of a big object)."""
    if isinstance(raw, dict):
        return "a JSON object"
    if isinstance(raw, list):
        return "a JSON array"
    try:
        return repr(raw)[:100]
    except Exception:  # e.g. an integer too long to print
        return type(raw).__name__


def timestamp_value(value, tz: ZoneInfo) -> datetime | float:
    """A device timestamp as the payload gives it: epoch seconds or milliseconds (as seconds, a
    float: a number beyond any calendar is judged by :func:`model.readings.device_time`, not
    turned into a ``datetime`` here), or ISO 8601 (a time without offset is local to the
    enterprise). Raises ``ValueError`` when it is no time at all (NaN, text, a boolean)."""
    if isinstance(value, bool):
        raise ValueError(f"timestamp {value!r} is not a time")
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()):
        try:
            seconds = float(value)
        except OverflowError:  # an integer too large for a double: far beyond any calendar
            seconds = math.inf if int(value) > 0 else -math.inf
        if math.isnan(seconds):
            raise ValueError(f"timestamp {value!r} is not a time")
        if seconds > 1e11:  # milliseconds (1e11 s is the year 5138)
            seconds /= 1000
        return seconds
    if isinstance(value, str):
        ts = datetime.fromisoformat(value.strip())
        return (ts if ts.tzinfo else ts.replace(tzinfo=tz)).astimezone(timezone.utc)
    raise ValueError(f"timestamp {value!r} is not a time")


def parse_timestamp(value, tz: ZoneInfo) -> datetime:
    """Epoch seconds or milliseconds, or ISO 8601 (a time without offset is local to the enterprise).
    Raises ``ValueError`` (``OverflowError``) for no time, or one beyond the calendar."""
    t = timestamp_value(value, tz)
    return t if isinstance(t, datetime) else datetime.fromtimestamp(t, timezone.utc)


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
        # published power (positive when the device's energy_import counts up) -> stored power, by the
        # role of its counters: the one convention of every device (model.site.power_sign)
        self.signs = {d.name: power_sign(d.points) for d in self.cfg.devices}
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
            hit = (None, None, [], [Finding("unknown_topic", topic[:200], "no subscription maps this topic")])
            return self._remember(topic, hit)
        device = route.sub.device if route.device_level is None else topic.split("/")[route.device_level]
        if device not in self._devices:
            # one finding per subscription, not per topic: a publisher inventing device names cannot
            # grow collector_finding without bound (the detail names the latest topic)
            hit = (None, None, [], [Finding("unknown_topic", route.filter,
                                            f"{topic[:200]!r}: no mqtt device {device[:100]!r} in the site file")])
            return self._remember(topic, hit)
        targets, findings = [], []  # targets: (quantity, field, factor, point id, power sign)
        sign = self.signs[device]
        for q, (f, factor) in route.fields.items():
            pid = self.points.get((device, q))
            if pid is None:
                findings.append(Finding("unknown_point", f"{route.sub.topic.replace('{device}', device)}:{q}",
                                        f"device {device!r} has no point for {q!r}", device))
                continue
            # the published power to the device's native sign (the field's), then the role's
            targets.append((q, f, factor, pid, f.sign * sign if q in POWER_QUANTITIES else 1))
        return self._remember(topic, (route, device, targets, findings))

    def _remember(self, topic: str, hit):
        if len(topic) > 1024:
            return hit  # (not cached: 100,000 topics of 64 KiB each would be 6 GB)
        if len(self._cache) >= 100_000:  # topics from a misbehaving publisher must not grow memory
            self._cache.clear()
        self._cache[topic] = hit
        return hit

    def parse(self, topic: str, payload: bytes, received: datetime) -> Parsed:
        """Readings, bad readings and findings for one message; never raises (the boundary of intake).

        Whatever a publisher sends ends as stored readings, bad readings or findings, so the message
        is acknowledged like any other: an exception here would leave it unacknowledged, redelivered
        at every restart, holding a slot of the receive window for ever.
        """
        try:
            return self._parse(topic, payload, received)
        except Exception as exc:  # a parser bug or an input nobody foresaw: reported, never fatal
            try:
                route, device, targets, findings = self._resolve(topic)
            except Exception:
                route, device, targets, findings = None, None, [], []
            return Parsed(device, findings=[*findings, Finding(
                "malformed_payload", topic, f"could not be parsed ({type(exc).__name__}: {str(exc)[:200]}); "
                f"payload {bytes(payload[:200])!r}", device)],
                readings=[Reading(pid, received, None, Quality.BAD) for _, _, _, pid, _ in targets], ok=False)

    def _unusable(self, out: Parsed, topic: str, kind: str, detail: str, targets, received: datetime) -> Parsed:
        """The message as a whole is unusable: every mapped point BAD (no value) at the receipt time."""
        out.ok = False
        out.findings.append(Finding(kind, topic, detail, out.device))
        out.readings = [Reading(pid, received, None, Quality.BAD) for _, _, _, pid, _ in targets]
        return out

    def _parse(self, topic: str, payload: bytes, received: datetime) -> Parsed:
        route, device, targets, findings = self._resolve(topic)
        if route is None:
            return Parsed(None, findings=list(findings), ok=False)
        sub = route.sub
        out = Parsed(device, findings=list(findings))
        # findings are named by the subscription's pattern and the device, not the topic itself: a '+'
        # level a publisher varies must not make a row of collector_finding per topic
        topic_seen, topic = topic, sub.topic.replace("{device}", device)
        if topic_seen != topic:
            out.findings = [Finding(f.kind, f.source, f"{f.detail} (topic {topic_seen[:200]!r})", f.device)
                            for f in out.findings]
        limit = self.cfg.max_payload_bytes
        if len(payload) > limit:  # bounded before parsing: nothing is decoded
            return self._unusable(out, topic, "oversized_payload", f"payload of {len(payload)} bytes, more than "
                                  f"max_payload_bytes ({limit}); starts {bytes(payload[:100])!r}", targets, received)
        if sub.format == "json" and json_depth_exceeds(payload):
            return self._unusable(out, topic, "malformed_payload", f"JSON nested deeper than {MAX_JSON_DEPTH} "
                                  f"levels; payload {bytes(payload[:100])!r}", targets, received)
        try:
            text = bytes(payload).decode("utf-8")
            doc = json.loads(text) if sub.format == "json" else text
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return self._unusable(out, topic, "malformed_payload", f"{str(exc)[:200]}; payload {bytes(payload[:200])!r}",
                                  targets, received)
        if sub.format == "json" and not isinstance(doc, (dict, list)):
            return self._unusable(out, topic, "malformed_payload", f"JSON {type(doc).__name__}, not an object: "
                                  f"{bytes(payload[:200])!r}", targets, received)
        ts = received
        late_clock = False
        if sub.timestamp:
            try:
                given = timestamp_value(_lookup(doc, sub.timestamp), self.tz)
            # the subscription says when each message was measured: without a readable time the
            # values are kept at the receipt time, not trusted (suspect), as a time out of range is
            except KeyError:
                late_clock = True
                out.findings.append(Finding("missing_field", f"{topic}:{sub.timestamp}",
                                            "timestamp field missing; stored at the receipt time as suspect", device))
            except (ValueError, TypeError, OverflowError, OSError) as exc:
                late_clock = True
                out.findings.append(Finding("wrong_type", f"{topic}:{sub.timestamp}",
                                            f"timestamp unreadable ({str(exc)[:200]}); stored at the receipt time "
                                            "as suspect", device))
            else:
                # the rule of every source (model.readings.device_time): before 2000 or more than
                # 5 minutes ahead of the receipt, the value is kept, its time is not trusted —
                # stored at the receipt time, suspect
                ts, why = device_time(given, received)
                if why is not None:
                    late_clock = True
                    shown = given.isoformat() if isinstance(given, datetime) else f"{given:.0f} s since 1970"
                    if why == "past_timestamp":
                        detail = f"device time {shown} is before {TIMESTAMP_FLOOR.date()} (a clock never set?)"
                    else:
                        detail = f"device time {shown} is more than 5 minutes ahead of the receipt"
                    out.findings.append(Finding(why, f"{topic}:{sub.timestamp}",
                                                f"{detail}; stored at the receipt time as suspect", device))
        bad = 0
        for q, f, factor, pid, sign in targets:
            if sub.format == "json":
                try:
                    raw = _lookup(doc, f.path)
                except KeyError:
                    out.findings.append(Finding("missing_field", f"{topic}:{f.path}", f"field {f.path!r} missing", device))
                    continue
            else:
                raw = doc
            value = _number(raw)
            where = f"{topic}:{f.path or q}"
            if value is None or not math.isfinite(value):
                bad += 1
                kind = "wrong_type" if value is None else "not_a_number"
                out.findings.append(Finding(kind, where, f"{q}: {_brief(raw)}", device))
                out.readings.append(Reading(pid, ts, None, Quality.BAD))
                continue
            if factor != 1:
                value = float(Decimal(repr(value)) * factor)
            # the plausible range as published (as a Modbus profile's is as the meter measures it)
            suspect = late_clock or (f.min is not None and value < f.min) or (f.max is not None and value > f.max)
            if sign != 1:
                value = -value
            # checked after the conversion to the canonical unit (1e306 kWh is no number of Wh) by the
            # checks of every source (model.readings.impossible_value, as the Modbus poll's)
            kind = impossible_value(value, q)
            if kind is not None:
                bad += 1
                unit = QUANTITIES[q].unit
                why = (f"beyond ±2^53 {unit}" if kind == "out_of_range" else "a counter is never negative")
                out.findings.append(Finding(kind, where, f"{q}: {_brief(raw)} is {value:g} {unit}, {why}: stored bad, "
                                            "without a value", device))
                out.readings.append(Reading(pid, ts, None, Quality.BAD))
                continue
            out.readings.append(Reading(pid, ts, value, Quality.SUSPECT if suspect else Quality.GOOD))
        if targets and bad == len(targets):
            out.ok = False
        return out


class _Client(mqtt.Client):
    """paho's client, keeping the reason of the last failed connection attempt.

    paho's network thread catches the ``OSError`` of a failed attempt (refused, unreachable, a TLS
    certificate the CA does not sign, a host name mismatch) and calls ``on_connect_fail`` without
    it; the collector needs it for its log line and the devices' health.
    """

    connect_error: BaseException | None = None

    def reconnect(self):
        try:
            return super().reconnect()
        except OSError as exc:
            self.connect_error = exc
            raise


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "connection failed"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate was not accepted ({exc.verify_message or exc.reason})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, OSError) and exc.errno is None else f"{type(exc).__name__}: {text}"


SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: another client connected with this client_id
#: without that reason (mosquitto 2.0 just closes the older connection): this many cuts of a session the
#: broker had just accepted, within the window, are taken as a takeover
TAKEOVER_CUTS = 3
TAKEOVER_WINDOW_S = 60.0
QUICK_CUT_S = 10.0  #: a cut this soon after the broker accepted the session counts towards a takeover
TAKEOVER_BACKOFF_MAX_S = 3600.0
PRESENCE_ROOT = "greengauge/presence"


def _topic_safe(text: str) -> str:
    return "".join("_" if c in "/+#$" else c for c in text)


class MqttSource:
    """One persistent MQTT session; readings go to ``submit(readings, on_durable)``.

    With ``mqtt.share_group`` the topics are subscribed as MQTT 5 shared subscriptions
    (``$share/GROUP/filter``): the broker hands each message to one member of the group. Every
    member keeps a persistent session of its own (client id ``<client_id>-<member>``), so what it
    holds unacknowledged when it dies is not lost; but mosquitto keeps routing a dead member's share
    to its session (mosquitto 2.0). So the members announce themselves (a retained presence message,
    and a Last Will saying ``offline``), and when one goes offline, the first of the others by client
    id *adopts* its session — connects with its client id, drains what was queued for it and takes
    its share — until it comes back (its reconnect takes the session over; the adopter lets go).
    """

    def __init__(self, site: SiteConfig, point_ids: dict[str, int], submit: Submit, clock: Clock, *,
                 health=None, wake: Callable[[], None] | None = None, client_id: str | None = None,
                 adopted: bool = False) -> None:
        assert site.mqtt is not None
        self.site = site
        self.point_ids = point_ids
        self.cfg = site.mqtt
        self.router = Router(site, point_ids)
        self.submit = submit
        self.wake = wake
        self.clock = clock
        self.health = health
        base = self.cfg.client_id or f"greengauge-{site.enterprise.code}-{site.site.code}"
        member = self.cfg.member or (socket.gethostname() if self.cfg.share_group else None)
        self.client_id = client_id or (f"{base}-{_topic_safe(member)}" if member else base)
        #: adopted: another member's session, drained and served until that member is back (no presence,
        #: no reconnect after the session is taken over)
        self.adopted = adopted
        self.share_group = self.cfg.share_group
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
        self._away_reason: str | None = None
        self._connected_at: float | None = None
        self._takeovers = 0
        self._taken_over = False
        self._cuts: deque[float] = deque()
        self.received = 0
        self.duplicates = 0
        self.acked = 0
        self.lost = 0  # messages whose readings the writer dropped, left unacknowledged
        self.connect_failures = 0
        self.takeovers = 0
        # share groups: presence of the members (client id -> online), the sessions this one adopted
        self._presence_prefix = f"{PRESENCE_ROOT}/{_topic_safe(self.share_group)}/" if self.share_group else None
        self.members: dict[str, bool] = {}
        self.adoptions: dict[str, MqttSource] = {}

    @property
    def presence_topic(self) -> str | None:
        return None if self._presence_prefix is None else self._presence_prefix + _topic_safe(self.client_id)

    def _presence(self, online: bool) -> bytes:
        return json.dumps({"client_id": self.client_id, "online": online}).encode()

    @property
    def filters(self) -> list[str]:
        """What is subscribed: the router's filters, as shared subscriptions in a share group."""
        if self.share_group:
            return [f"$share/{self.share_group}/{f}" for f in self.router.filters]
        return self.router.filters

    # -- the paho thread -------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        c = self.cfg
        v5 = c.protocol == "5"
        kwargs = {} if v5 else {"clean_session": False}
        client = _Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, manual_ack=True, **kwargs)
        if c.username:
            client.username_pw_set(c.username, c.secret())
        if c.tls is not None and c.tls.enabled:
            client.tls_set(ca_certs=c.tls.ca_certs, certfile=c.tls.certfile, keyfile=c.tls.keyfile,
                           cert_reqs=ssl.CERT_REQUIRED)
            client.tls_insecure_set(c.tls.insecure)
        client.reconnect_delay_set(c.reconnect_min_s, c.reconnect_max_s)
        client.max_inflight_messages_set(max(20, c.receive_maximum))
        if self.presence_topic and not self.adopted:
            # said by the broker when this collector dies without a DISCONNECT: the others adopt its session
            client.will_set(self.presence_topic, self._presence(False), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.connect_failures += 1
            self._log_away(f"broker {self.cfg.host}:{self.cfg.port} refused the connection: {reason_code}")
            return
        with self._lock:
            if not flags.session_present:
                # a new session: packet ids held from an old one mean nothing now
                self._unacked.clear()
                self._recent.clear()
                self._epoch += 1
        if self._taken_over:
            # back after a takeover: the normal reconnect delays again
            client.reconnect_delay_set(self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
        self._connected_at = time.monotonic()
        if self.cfg.protocol == "5":
            # retained messages only for a new subscription, not again at every reconnect
            opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe([(f, opts) for f in self.filters])
        else:
            client.subscribe([(f, 1) for f in self.filters])
        if self.presence_topic and not self.adopted:
            client.subscribe(self._presence_prefix + "+", qos=1)
            client.publish(self.presence_topic, self._presence(True), qos=1, retain=True)
        self._connected.set()
        what = f"MQTT broker {self.cfg.host}:{self.cfg.port}"
        session = "resumed" if flags.session_present else "new"
        if self.adopted:
            log.info("adopted the MQTT session %s of a member that is away (session %s)", self.client_id, session)
        elif self._taken_over:
            log.warning("connected to %s as %s again after a session takeover (session %s): if the other client "
                        "still runs, it is knocked off now", what, self.client_id, session)
        elif self._away:
            log.info("%s is back (session %s)", what, session)
        else:
            log.info("connected to %s as %s (session %s)", what, self.client_id, session)
        self._away = False
        self._away_reason = None
        self._taken_over = False

    def _on_connect_fail(self, client, userdata) -> None:
        """No connection at all (refused, unreachable, TLS): logged once, the devices away, retried."""
        self.connect_failures += 1
        err = getattr(client, "connect_error", None)
        self._log_away(f"cannot connect to the MQTT broker {self.cfg.host}:{self.cfg.port}: {_describe(err)}")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._paused:
            return
        if self.adopted:
            # whatever cut an adopted session (most likely its member is back and took it over: mosquitto
            # 2.0 closes the connection without saying why) — never reconnect and knock the member off
            self._session_taken_over(client)
            return
        if getattr(reason_code, "value", None) == SESSION_TAKEN_OVER:
            self._session_taken_over(client)
            return
        if not was_connected:
            return  # a refused attempt is reported by _on_connect; not twice
        now = time.monotonic()
        lived = now - (self._connected_at or now)
        if lived >= QUICK_CUT_S:
            # a connection that lived: not a takeover pattern (a network blip, a broker restart); and in a
            # fight, the other client is the one that backs off
            self._cuts.clear()
            self._takeovers = 0
        elif self._takeovers:
            self._session_taken_over(client, suspected=1)  # the fight goes on: back off further at once
            return
        else:
            self._cuts.append(now)
        while self._cuts and now - self._cuts[0] > TAKEOVER_WINDOW_S:
            self._cuts.popleft()
        if len(self._cuts) >= TAKEOVER_CUTS:
            # the broker accepts the session and cuts it again, over and over: another client with the
            # same client_id (mosquitto 2.0 closes the older connection without the 0x8E reason)
            self._cuts.clear()
            self._session_taken_over(client, suspected=TAKEOVER_CUTS)
            return
        self._log_away(f"lost the MQTT broker {self.cfg.host}:{self.cfg.port}: {reason_code}")

    def _session_taken_over(self, client, suspected: int = 0) -> None:
        """Another client connected with our client id: say so, and back off rather than fight for it.

        ``suspected``: no reason from the broker, but that many cuts of a session it had just accepted
        within TAKEOVER_WINDOW_S.
        """
        self.takeovers += 1
        if self.adopted:
            # the member whose session this is came back (or another member adopted it): let go
            log.info("adopted MQTT session %s taken over (its member is back): let go", self.client_id)
            self._paused = True
            client.disconnect()  # in a callback: paho's network loop ends instead of reconnecting
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._let_go)
            return
        held = time.monotonic() - (self._connected_at or time.monotonic())
        if held > TAKEOVER_BACKOFF_MAX_S:
            self._takeovers = 0  # the last takeover is long past: not a fight
        self._takeovers += 1
        delay = min(self.cfg.takeover_backoff_s * 2 ** (self._takeovers - 1), TAKEOVER_BACKOFF_MAX_S)
        client.reconnect_delay_set(int(max(1, round(delay))), int(max(1, round(delay))))
        self._taken_over = True
        why = ("reason 0x8E 'Session taken over'" if not suspected else "cut again right after the broker "
               "accepted it" if suspected == 1 else f"cut {suspected} times within {TAKEOVER_WINDOW_S:.0f} s, "
               f"each within {QUICK_CUT_S:.0f} s of the broker accepting it")
        message = (f"MQTT session {self.client_id!r} taken over by another client with the same client_id "
                   f"(broker {self.cfg.host}:{self.cfg.port}, {why}): two collectors share one client_id? "
                   f"Give each its own (mqtt.client_id, or share_group with collect --member); backing off "
                   f"{delay:.0f} s instead of taking it back")
        log.error("%s (takeover %d in a row)", message, self._takeovers)
        self._away = True
        self._away_reason = message
        if self._loop is not None and self.health is not None:
            self._loop.call_soon_threadsafe(self._record_takeover, message)

    def _record_takeover(self, message: str) -> None:
        # tied to a device of the site, so `status --enterprise` shows it too
        self.health.finding("client_id_conflict", self.client_id, message, device=self.cfg.devices[0].name,
                            when=self.clock.now())
        self._broker_away(message)

    def _log_away(self, message: str) -> None:
        """ERROR once when the broker goes away (and again only if the reason changes), INFO when it returns."""
        if not self._away or message != self._away_reason:
            log.error("%s; reconnecting with backoff", message)
            self._away = True
            self._away_reason = message
        if self._loop is not None and self.health is not None:
            self._loop.call_soon_threadsafe(self._broker_away, message)

    def _broker_away(self, message: str) -> None:
        if self.adopted:
            return  # the owner's devices are reported by the members themselves
        for d in self.cfg.devices:
            self.health.failure(d.name, message, self.clock.now())

    # -- share groups: presence and adoption --------------------------------------------------------
    def _on_presence(self, msg: mqtt.MQTTMessage) -> None:
        try:
            doc = json.loads(bytes(msg.payload[:1000]).decode("utf-8")) if msg.payload else None
            cid, online = (str(doc["client_id"]), bool(doc["online"])) if isinstance(doc, dict) else (None, False)
        except (ValueError, KeyError, TypeError):
            cid, online = None, False
        if msg.qos > 0:
            self._client.ack(msg.mid, msg.qos)
        if cid is None:
            return  # a cleared or foreign presence message
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._presence_changed, cid, online)

    def _presence_changed(self, cid: str, online: bool) -> None:
        if self.adopted:
            return  # (an adopted session subscribed its member's presence topics too; its parent decides)
        self.members[cid] = online
        self._rebalance()

    def _rebalance(self) -> None:
        """Each session of an offline member is adopted by the first online member (by client id)."""
        if self._paused or self.adopted:
            return
        alive = sorted({c for c, on in self.members.items() if on} | {self.client_id})
        for cid, online in list(self.members.items()):
            mine = not online and cid != self.client_id and alive[0] == self.client_id
            if mine and cid not in self.adoptions:
                log.warning("share group %s: member %s is offline; adopting its session (its queued messages and "
                            "its share of new ones) until it is back", self.share_group, cid)
                src = MqttSource(self.site, self.point_ids, self.submit, self.clock, health=self.health,
                                 wake=self.wake, client_id=cid, adopted=True)
                src._parent = self
                self.adoptions[cid] = src
                src.start()
            elif not mine and cid in self.adoptions:
                # its member said it is back (or a member before this one in order now adopts it): said
                # here, because the broker's cut of the adopted copy then finds it paused and says nothing
                log.info("share group %s: member %s is %s: let go of its adopted session", self.share_group, cid,
                         "back" if self.members.get(cid) else "adopted by " + alive[0])
                self._release(cid)

    def _release(self, cid: str) -> None:
        src = self.adoptions.pop(cid, None)
        if src is not None:
            src._paused = True
            asyncio.get_running_loop().create_task(src.stop())

    def _let_go(self) -> None:
        parent = getattr(self, "_parent", None)
        if parent is not None and parent.adoptions.get(self.client_id) is self:
            parent._release(self.client_id)
            # cut for another reason than its member's return (a broker restart)? adopt it again later
            asyncio.get_running_loop().call_later(2 * self.cfg.reconnect_max_s, parent._rebalance)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        try:
            self._handle(msg)
        except Exception:  # never let a message kill paho's network thread (the parse itself never raises)
            log.exception("MQTT message could not be handled")

    def _handle(self, msg: mqtt.MQTTMessage) -> None:
        if self._paused:
            return  # not acknowledged: the broker delivers it again to the next session
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # (a broker lets no such topic through; paho would raise here)
            topic = bytes(msg._topic).decode("utf-8", "backslashreplace")
        if self._presence_prefix is not None and topic.startswith(self._presence_prefix):
            self._on_presence(msg)
            return
        qos1 = msg.qos > 0
        key = (topic, hash(msg.payload))
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
        # from here the message is held: whatever happens, it must reach the inbox (and so its PUBACK)
        received = self.clock.now()
        try:
            parsed = self.router.parse(topic, msg.payload, received)
        except BaseException as exc:  # Router.parse never raises; this is the last line of defence
            parsed = Parsed(None, findings=[Finding("malformed_payload", topic, f"not handled: {exc!r}"[:500])],
                            ok=False)
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
        for src in self.adoptions.values():
            src.pause()

    async def stop(self) -> None:
        """Disconnect after the acknowledgements queued so far are sent; the session stays on the broker.

        In a share group the presence says ``offline`` first, so another member adopts the session
        (what arrived after :meth:`pause`, unacknowledged, and the share of new messages).
        """
        self._paused = True
        for cid in list(self.adoptions):
            src = self.adoptions.pop(cid)
            await src.stop()
        if self._client is not None:
            client = self._client
            await asyncio.to_thread(self._disconnect, client,
                                    self.presence_topic if not self.adopted else None, self._presence(False))

    @staticmethod
    def _disconnect(client: mqtt.Client, presence_topic: str | None = None, offline: bytes = b"") -> None:
        if presence_topic is not None and client.is_connected():
            info = client.publish(presence_topic, offline, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                pass
        client.disconnect()
        client.loop_stop()
