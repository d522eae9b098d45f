"""Upsert a site configuration into park -> enterprise -> site -> device -> point."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from model.quantities import QUANTITIES
from model.site import SiteConfig


@dataclass(frozen=True)
class PointRow:
    point_id: int
    name: str
    device: str
    quantity: str
    kind: str
    unit: str
    role: str | None
    subproject: str | None
    rated_power_w: int | None


def _upsert_device(conn: psycopg.Connection, site_id: int, name: str, profile: str | None,
                   transport: dict, interval_s: float) -> int:
    return conn.execute(
        """INSERT INTO device (site_id, name, profile, transport, poll_interval_s) VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (site_id, name) DO UPDATE SET profile = EXCLUDED.profile,
               transport = EXCLUDED.transport, poll_interval_s = EXCLUDED.poll_interval_s
           RETURNING device_id""",
        (site_id, name, profile, Jsonb(transport), interval_s),
    ).fetchone()[0]


def _upsert_point(conn: psycopg.Connection, device_id: int, name: str, p) -> int:
    q = QUANTITIES[p.quantity]
    return conn.execute(
        """INSERT INTO point (device_id, name, quantity, kind, unit, role, subproject, rated_power_w)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (device_id, quantity) DO UPDATE SET name = EXCLUDED.name,
               role = EXCLUDED.role, subproject = EXCLUDED.subproject,
               rated_power_w = EXCLUDED.rated_power_w
           RETURNING point_id""",
        (device_id, name, p.quantity, q.kind, q.unit, p.role, p.subproject, p.rated_power_w),
    ).fetchone()[0]


def apply_site(conn: psycopg.Connection, cfg: SiteConfig) -> dict[str, int]:
    """Create or update everything the file describes, in one transaction; return point ids by name.

    Devices and points the file no longer lists are kept (their readings are history), never
    deleted by an apply.
    """
    with conn.transaction():
        park_id = None
        if cfg.park is not None:
            park_id = conn.execute(
                """INSERT INTO park (code, name) VALUES (%s, %s)
                   ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name RETURNING park_id""",
                (cfg.park.code, cfg.park.name),
            ).fetchone()[0]
        e = cfg.enterprise
        enterprise_id = conn.execute(
            """INSERT INTO enterprise (code, name, park_id, timezone, industry) VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, park_id = EXCLUDED.park_id,
                   timezone = EXCLUDED.timezone, industry = EXCLUDED.industry
               RETURNING enterprise_id""",
            (e.code, e.name, park_id, e.timezone, e.industry),
        ).fetchone()[0]
        site_id = conn.execute(
            """INSERT INTO site (enterprise_id, code, name) VALUES (%s, %s, %s)
               ON CONFLICT (enterprise_id, code) DO UPDATE SET name = EXCLUDED.name RETURNING site_id""",
            (enterprise_id, cfg.site.code, cfg.site.name),
        ).fetchone()[0]
        ids: dict[str, int] = {}
        for d in cfg.devices:
            transport = {"kind": d.transport, "host": d.host, "port": d.port, "unit_id": d.unit_id,
                         "timeout_s": d.timeout_s}
            device_id = _upsert_device(conn, site_id, d.name, d.profile, transport, d.poll_interval_s)
            for p in d.point_configs():
                ids[cfg.point_name(d, p)] = _upsert_point(conn, device_id, cfg.point_name(d, p), p)
        if cfg.mqtt is not None:
            # MQTT sources are devices without a profile; poll_interval_s is the interval they publish at
            transport = {"kind": "mqtt", "broker": f"{cfg.mqtt.host}:{cfg.mqtt.port}"}
            for d in cfg.mqtt.devices:
                device_id = _upsert_device(conn, site_id, d.name, None, transport, d.interval_s)
                for p in d.points:
                    ids[cfg.point_name(d, p)] = _upsert_point(conn, device_id, cfg.point_name(d, p), p)
        if cfg.projects:
            from store.projects import apply_projects

            apply_projects(conn, cfg, enterprise_id, site_id, ids)
        return ids


def site_points(conn: psycopg.Connection, enterprise: str, site: str | None = None) -> list[PointRow]:
    rows = conn.execute(
        """SELECT p.point_id, p.name, d.name, p.quantity, p.kind, p.unit, p.role, p.subproject, p.rated_power_w
           FROM point p JOIN device d USING (device_id) JOIN site s USING (site_id)
           JOIN enterprise e USING (enterprise_id)
           WHERE e.code = %s AND (%s::text IS NULL OR s.code = %s)
           ORDER BY p.point_id""",
        (enterprise, site, site),
    ).fetchall()
    return [PointRow(*r) for r in rows]


def enterprise_timezone(conn: psycopg.Connection, enterprise: str) -> str:
    row = conn.execute("SELECT timezone FROM enterprise WHERE code = %s", (enterprise,)).fetchone()
    if row is None:
        known = [r[0] for r in conn.execute("SELECT code FROM enterprise ORDER BY code")]
        raise LookupError(f"no enterprise {enterprise!r} (known: {', '.join(known) or 'none; run greengauge site apply'})")
    return row[0]
