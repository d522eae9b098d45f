"""Device health and collector findings: written by the running collector, read by ``greengauge status``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg


@dataclass
class HealthRow:
    device_id: int
    status: str  # 'ok', 'away', or 'stopped' (its collector stopped: not collected)
    since: datetime
    last_attempt: datetime
    last_success: datetime | None
    consecutive_failures: int
    latency_ms: float | None
    last_error: str | None


@dataclass
class FindingRow:
    kind: str
    source: str
    device_id: int | None
    first_seen: datetime
    last_seen: datetime
    count: int
    detail: str


def upsert_health(conn: psycopg.Connection, rows: list[HealthRow]) -> None:
    if not rows:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO device_health (device_id, status, since, last_attempt, last_success,
                   consecutive_failures, latency_ms, last_error, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
               ON CONFLICT (device_id) DO UPDATE SET status = EXCLUDED.status, since = EXCLUDED.since,
                   last_attempt = EXCLUDED.last_attempt,
                   last_success = COALESCE(EXCLUDED.last_success, device_health.last_success),
                   consecutive_failures = EXCLUDED.consecutive_failures,
                   latency_ms = COALESCE(EXCLUDED.latency_ms, device_health.latency_ms),
                   last_error = EXCLUDED.last_error, updated_at = now()""",
            [(r.device_id, r.status, r.since, r.last_attempt, r.last_success, r.consecutive_failures,
              r.latency_ms, r.last_error) for r in rows],
        )


def add_findings(conn: psycopg.Connection, rows: list[FindingRow]) -> None:
    """Add counts to the findings of each (kind, source); ``count`` is what happened since the last call."""
    if not rows:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO collector_finding (kind, source, device_id, first_seen, last_seen, count, detail)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (kind, source) DO UPDATE SET last_seen = EXCLUDED.last_seen,
                   count = collector_finding.count + EXCLUDED.count, detail = EXCLUDED.detail,
                   device_id = COALESCE(EXCLUDED.device_id, collector_finding.device_id)""",
            [(r.kind, r.source, r.device_id, r.first_seen, r.last_seen, r.count, r.detail) for r in rows],
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


def device_status(conn: psycopg.Connection, enterprise: str | None = None) -> list[DeviceStatus]:
    rows = conn.execute(
        """SELECT e.code, s.code, d.name, d.transport->>'kind', h.status, h.since, h.last_success,
                  h.consecutive_failures, h.latency_ms, h.last_error,
                  (SELECT max(r.ts) FROM point p
                     CROSS JOIN LATERAL (SELECT ts FROM reading WHERE point_id = p.point_id
                                         ORDER BY ts DESC LIMIT 1) r
                    WHERE p.device_id = d.device_id)
           FROM device d JOIN site s USING (site_id) JOIN enterprise e USING (enterprise_id)
           LEFT JOIN device_health h USING (device_id)
           WHERE %(e)s::text IS NULL OR e.code = %(e)s
           ORDER BY e.code, s.code, d.name""",
        {"e": enterprise},
    ).fetchall()
    return [DeviceStatus(*r) for r in rows]


def findings(conn: psycopg.Connection, enterprise: str | None = None, limit: int = 50) -> list[FindingRow]:
    """Latest findings first; those tied to a device of another enterprise are left out when one is named."""
    rows = conn.execute(
        """SELECT f.kind, f.source, f.device_id, f.first_seen, f.last_seen, f.count, f.detail
           FROM collector_finding f
           LEFT JOIN device d USING (device_id) LEFT JOIN site s USING (site_id)
           LEFT JOIN enterprise e USING (enterprise_id)
           WHERE %(e)s::text IS NULL OR e.code = %(e)s OR f.device_id IS NULL
           ORDER BY f.last_seen DESC LIMIT %(n)s""",
        {"e": enterprise, "n": limit},
    ).fetchall()
    return [FindingRow(*r) for r in rows]


def device_ids(conn: psycopg.Connection, enterprise: str, site: str) -> dict[str, int]:
    rows = conn.execute(
        """SELECT d.name, d.device_id FROM device d JOIN site s USING (site_id) JOIN enterprise e USING (enterprise_id)
           WHERE e.code = %s AND s.code = %s""",
        (enterprise, site),
    ).fetchall()
    return dict(rows)
