"""PV/storage projects from the site file: upsert into ``pv_project`` with their point and device links.

``greengauge site apply`` calls :func:`apply_projects` at the end of
:func:`store.sites.apply_site`, in the same transaction. Nameplates the site file leaves out are
stored as NULL and resolved when a report runs, from the latest SunSpec nameplate readings of the
linked devices (:func:`latest_nameplate`): the collector may not have read them yet at apply time.

References
----------
晋政规〔2024〕2号 §三(一) (rule R3); SunSpec models 120/702 (``capacity_w``), 713/802
(``storage_capacity_wh``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import psycopg

from model.site import PROJECT_LINK_ROLES, SiteConfig, resolve_point
from store.sites import PointRow

#: a linked point is a full :class:`store.sites.PointRow`, so the energy code reads it like any other
LinkedPoint = PointRow


@dataclass(frozen=True)
class ProjectRecord:
    """A stored project: nameplates as recorded (None = take SunSpec), links, and who wrote it."""

    code: str
    pv_w: int | None  #: [W]
    commissioned: date
    storage_power_w: int | None  #: [W]
    storage_energy_wh: int | None  #: [Wh]
    storage_commissioned: date | None  #: set when the project has storage
    storage_electrochemical: bool
    origin: str  #: "site" or "facts"
    points: dict[str, list[LinkedPoint]] = field(default_factory=dict)  #: by link: generation/charge/discharge
    devices: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  #: nameplate devices by part

    @property
    def has_storage(self) -> bool:
        return self.storage_commissioned is not None or self.storage_power_w is not None


@dataclass(frozen=True)
class NameplateReading:
    device: str
    point: str
    ts: datetime
    value: float


def apply_projects(conn: psycopg.Connection, cfg: SiteConfig, enterprise_id: int, site_id: int,
                   point_ids: dict[str, int]) -> int:
    """Upsert the site file's projects and replace their links; return how many were written.

    Projects the file no longer lists are kept (like devices and points). Runs inside the caller's
    transaction.
    """
    dev_ids = dict(conn.execute("SELECT name, device_id FROM device WHERE site_id = %s", (site_id,)).fetchall())
    for pr in cfg.projects:
        s = pr.storage
        project_id = conn.execute(
            """INSERT INTO pv_project (enterprise_id, code, pv_w, commissioned, storage_power_w, storage_energy_wh,
                                       storage_commissioned, storage_electrochemical, origin)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'site')
               ON CONFLICT (enterprise_id, code) DO UPDATE SET pv_w = EXCLUDED.pv_w,
                   commissioned = EXCLUDED.commissioned, storage_power_w = EXCLUDED.storage_power_w,
                   storage_energy_wh = EXCLUDED.storage_energy_wh,
                   storage_commissioned = EXCLUDED.storage_commissioned,
                   storage_electrochemical = EXCLUDED.storage_electrochemical, origin = 'site', recorded_at = now()
               RETURNING project_id""",
            (enterprise_id, pr.code, pr.pv.capacity_w, pr.pv.commissioned, s.power_w if s else None,
             s.energy_wh if s else None, (s.commissioned or pr.pv.commissioned) if s else None,
             s.electrochemical if s else True),
        ).fetchone()[0]
        conn.execute("DELETE FROM pv_project_point WHERE project_id = %s", (project_id,))
        conn.execute("DELETE FROM pv_project_device WHERE project_id = %s", (project_id,))
        link_devices: dict[str, list[str]] = {"pv": [], "storage": []}
        for link, ref in pr.links():
            dev, p = resolve_point(cfg.all_devices(), ref, PROJECT_LINK_ROLES[link])
            conn.execute("INSERT INTO pv_project_point (project_id, point_id, link) VALUES (%s, %s, %s)",
                         (project_id, point_ids[cfg.point_name(dev, p)], link))
            link_devices["pv" if link == "generation" else "storage"].append(dev.name)
        for part, conf in (("pv", pr.pv), ("storage", s)):
            if conf is None:
                continue
            names = conf.nameplate_devices if conf.nameplate_devices is not None else link_devices[part]
            for name in dict.fromkeys(names):
                conn.execute("INSERT INTO pv_project_device (project_id, device_id, part) VALUES (%s, %s, %s)",
                             (project_id, dev_ids[name], part))
    return len(cfg.projects)


def project_records(conn: psycopg.Connection, enterprise: str) -> list[ProjectRecord]:
    """Every PV project of the enterprise (from facts or the site file), with its links."""
    return project_records_of(conn, [enterprise])[enterprise]


def project_records_of(conn: psycopg.Connection, enterprises: list[str]) -> dict[str, list[ProjectRecord]]:
    """:func:`project_records` of each enterprise code (every code a key), in one round trip."""
    with conn.pipeline():
        projects = conn.execute(
            """SELECT e.code, p.project_id, p.code, p.pv_w, p.commissioned, p.storage_power_w, p.storage_energy_wh,
                      p.storage_commissioned, p.storage_electrochemical, p.origin
               FROM pv_project p JOIN enterprise e USING (enterprise_id)
               WHERE e.code = ANY(%s) ORDER BY e.code, p.commissioned, p.code""", (enterprises,))
        point_links = conn.execute(
            """SELECT l.project_id, l.link, pt.point_id, pt.name, d.name, pt.quantity, pt.kind, pt.unit, pt.role,
                      pt.subproject, pt.rated_power_w
               FROM pv_project_point l JOIN point pt USING (point_id) JOIN device d USING (device_id)
               JOIN pv_project p USING (project_id) JOIN enterprise e ON e.enterprise_id = p.enterprise_id
               WHERE e.code = ANY(%s) ORDER BY l.project_id, pt.point_id""", (enterprises,))
        device_links = conn.execute(
            """SELECT l.project_id, l.part, d.device_id, d.name
               FROM pv_project_device l JOIN device d USING (device_id)
               JOIN pv_project p USING (project_id) JOIN enterprise e ON e.enterprise_id = p.enterprise_id
               WHERE e.code = ANY(%s) ORDER BY l.project_id, d.device_id""", (enterprises,))
    points: dict[int, dict[str, list[LinkedPoint]]] = {}
    for pid, link, *row in point_links.fetchall():
        points.setdefault(pid, {"generation": [], "charge": [], "discharge": []})[link].append(PointRow(*row))
    devices: dict[int, dict[str, list[tuple[int, str]]]] = {}
    for pid, part, device_id, name in device_links.fetchall():
        devices.setdefault(pid, {"pv": [], "storage": []})[part].append((device_id, name))
    out: dict[str, list[ProjectRecord]] = {code: [] for code in enterprises}
    for ecode, pid, code, pv_w, comm, sp, se, sd, electro, origin in projects.fetchall():
        if sp is not None and sd is None:  # rows written before 0301
            sd = comm
        out[ecode].append(ProjectRecord(code, pv_w, comm, sp, se, sd, electro, origin,
                                        points.get(pid) or {"generation": [], "charge": [], "discharge": []},
                                        devices.get(pid) or {"pv": [], "storage": []}))
    return out


def latest_nameplate(conn: psycopg.Connection, device_ids: list[int], quantity: str,
                     before: datetime | None = None) -> list[NameplateReading]:
    """The latest usable reading of ``quantity`` (``capacity_w`` or ``storage_capacity_wh``) per device.

    Devices without such a reading are left out; ``before`` bounds the reading time (exclusive).
    """
    return [NameplateReading(*r[1:]) for r in conn.execute(NAMEPLATE_SQL, (device_ids, quantity, before, before))]


#: :func:`latest_nameplate`'s rows, each led by its device id (parameters: device ids, quantity,
#: before, before), in point order
NAMEPLATE_SQL = """SELECT DISTINCT ON (pt.point_id) d.device_id, d.name, pt.name, r.ts, r.value
                   FROM point pt JOIN device d USING (device_id) JOIN reading r USING (point_id)
                   WHERE pt.device_id = ANY(%s) AND pt.quantity = %s AND r.quality < 2 AND r.value IS NOT NULL
                     AND (%s::timestamptz IS NULL OR r.ts < %s)
                   ORDER BY pt.point_id, r.ts DESC"""
