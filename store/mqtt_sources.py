"""Upsert the MQTT sources of a site file: devices without a profile, and their points.

``device.poll_interval_s`` holds the interval the source is expected to publish at (``interval_s``).

Called after :func:`store.sites.apply_site` (which creates the park, enterprise and site).
"""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from collectors.quantities import QUANTITIES
from greengauge.site import SiteConfig


def apply_mqtt_sources(conn: psycopg.Connection, cfg: SiteConfig) -> dict[str, int]:
    """Create or update each ``mqtt.devices`` entry and its points; return point ids by name."""
    if cfg.mqtt is None:
        return {}
    ids: dict[str, int] = {}
    with conn.transaction():
        site_id = conn.execute(
            """SELECT s.site_id FROM site s JOIN enterprise e USING (enterprise_id)
               WHERE e.code = %s AND s.code = %s""",
            (cfg.enterprise.code, cfg.site.code),
        ).fetchone()
        if site_id is None:
            raise LookupError(f"site {cfg.enterprise.code}/{cfg.site.code} does not exist; apply the site first")
        transport = {"kind": "mqtt", "broker": f"{cfg.mqtt.host}:{cfg.mqtt.port}"}
        for d in cfg.mqtt.devices:
            device_id = conn.execute(
                """INSERT INTO device (site_id, name, profile, transport, poll_interval_s)
                   VALUES (%s, %s, NULL, %s, %s)
                   ON CONFLICT (site_id, name) DO UPDATE SET profile = NULL, transport = EXCLUDED.transport,
                       poll_interval_s = EXCLUDED.poll_interval_s
                   RETURNING device_id""",
                (site_id[0], d.name, Jsonb(transport), d.interval_s),
            ).fetchone()[0]
            for p in d.points:
                q = QUANTITIES[p.quantity]
                name = cfg.point_name(d, p)
                ids[name] = conn.execute(
                    """INSERT INTO point (device_id, name, quantity, kind, unit, role, subproject, rated_power_w)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (device_id, quantity) DO UPDATE SET name = EXCLUDED.name,
                           role = EXCLUDED.role, subproject = EXCLUDED.subproject,
                           rated_power_w = EXCLUDED.rated_power_w
                       RETURNING point_id""",
                    (device_id, name, p.quantity, q.kind, q.unit, p.role, p.subproject, p.rated_power_w),
                ).fetchone()[0]
    return ids
