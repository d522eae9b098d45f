"""Device health and collector findings: written by the running collector, read by ``greengauge status``.

Findings are :class:`model.findings.Finding` in the one ``finding`` table (``origin`` collector:
counted per kind and source; the data-quality findings of :mod:`store.findings` share it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from model.findings import Finding, Subject, kind_of


@dataclass
class HealthRow:
    device_id: int
    status: str  # 'ok' or 'away': what was last seen
    since: datetime
    last_attempt: datetime
    last_success: datetime | None
    consecutive_failures: int
    latency_ms: float | None
    last_error: str | None
    stopped_at: datetime | None = None  #: its collector stopped then: not being collected (None: collected)


def upsert_health(conn: psycopg.Connection, rows: list[HealthRow]) -> None:
    if not rows:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO device_health (device_id, status, since, last_attempt, last_success,
                   consecutive_failures, latency_ms, last_error, stopped_at, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())
               ON CONFLICT (device_id) DO UPDATE SET status = EXCLUDED.status, since = EXCLUDED.since,
                   last_attempt = EXCLUDED.last_attempt,
                   last_success = COALESCE(EXCLUDED.last_success, device_health.last_success),
                   consecutive_failures = EXCLUDED.consecutive_failures,
                   latency_ms = COALESCE(EXCLUDED.latency_ms, device_health.latency_ms),
                   last_error = EXCLUDED.last_error, stopped_at = EXCLUDED.stopped_at, updated_at = now()""",
            [(r.device_id, r.status, r.since, r.last_attempt, r.last_success, r.consecutive_failures,
              r.latency_ms, r.last_error, r.stopped_at) for r in rows],
        )


def add_findings(conn: psycopg.Connection, rows: list[Finding]) -> None:
    """Add counted findings: each row's ``count`` is what happened since the last call, its data the
    latest; one row per (kind, source) in ``finding``."""
    if not rows:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO finding AS f (origin, kind, source, device_id, opened_at, last_seen, count, data)
               VALUES ('collector', %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (kind, source) WHERE origin = 'collector' DO UPDATE SET
                   last_seen = greatest(f.last_seen, EXCLUDED.last_seen), count = f.count + EXCLUDED.count,
                   data = EXCLUDED.data, device_id = COALESCE(EXCLUDED.device_id, f.device_id)""",
            [(str(r.kind), r.subject.source, r.subject.device_id, r.opened_at, r.last_seen or r.opened_at, r.count,
              Jsonb(r.data)) for r in rows],
        )


@dataclass
class DeviceStatus:
    enterprise: str
    site: str
    device: str
    kind: str  # transport kind: tcp, mqtt, ...
    status: str | None  # None: never seen by a collector
    since: datetime | None
    last_success: datetime | None
    consecutive_failures: int | None
    latency_ms: float | None
    last_error: str | None
    last_reading: datetime | None
    stopped_at: datetime | None = None  #: its collector stopped then (None: being collected, or never seen)


def device_status(conn: psycopg.Connection, enterprise: str | None = None) -> list[DeviceStatus]:
    rows = conn.execute(
        """SELECT e.code, s.code, d.name, d.transport->>'kind', h.status, h.since, h.last_success,
                  h.consecutive_failures, h.latency_ms, h.last_error,
                  (SELECT max(r.ts) FROM point p
                     CROSS JOIN LATERAL (SELECT ts FROM reading WHERE point_id = p.point_id
                                         ORDER BY ts DESC LIMIT 1) r
                    WHERE p.device_id = d.device_id),
                  h.stopped_at
           FROM device d JOIN site s USING (site_id) JOIN enterprise e USING (enterprise_id)
           LEFT JOIN device_health h USING (device_id)
           WHERE %(e)s::text IS NULL OR e.code = %(e)s
           ORDER BY e.code, s.code, d.name""",
        {"e": enterprise},
    ).fetchall()
    return [DeviceStatus(*r) for r in rows]


def findings(conn: psycopg.Connection, enterprise: str | None = None, limit: int = 50) -> list[Finding]:
    """The latest findings first, the collector's and the data-quality ones, with the subject's names in
    ``data["device"]``/``data["point"]`` when it has them. With ``enterprise``, only those tied to a
    device of that enterprise: one tied to no device (an unknown MQTT topic, dropped readings) cannot
    be told apart from another enterprise's, so it is shown only when no enterprise is named."""
    rows = conn.execute(
        """SELECT f.finding_id, f.kind, f.device_id, f.point_id, f.source, f.opened_at, f.closed_at, f.last_seen,
                  f.count, f.data || jsonb_strip_nulls(jsonb_build_object('device', d.name, 'point', p.name))
           FROM finding f
           LEFT JOIN device d USING (device_id) LEFT JOIN site s USING (site_id)
           LEFT JOIN enterprise e USING (enterprise_id) LEFT JOIN point p ON p.point_id = f.point_id
           WHERE %(e)s::text IS NULL OR e.code = %(e)s
           ORDER BY f.last_seen DESC, f.finding_id DESC LIMIT %(n)s""",
        {"e": enterprise, "n": limit},
    ).fetchall()
    return [Finding(kind_of(kind), Subject(device_id, point_id, source), opened, closed, data, count, last, fid)
            for fid, kind, device_id, point_id, source, opened, closed, last, count, data in rows]


def device_ids(conn: psycopg.Connection, enterprise: str, site: str) -> dict[str, int]:
    rows = conn.execute(
        """SELECT d.name, d.device_id FROM device d JOIN site s USING (site_id) JOIN enterprise e USING (enterprise_id)
           WHERE e.code = %s AND s.code = %s""",
        (enterprise, site),
    ).fetchall()
    return dict(rows)
