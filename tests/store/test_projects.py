"""PV/storage projects from the site file (`projects:`): validation, `site apply`, links, nameplates.

Real PostgreSQL; readings written with store.ingest.write_readings. Rule R3: 晋政规〔2024〕2号 §三(一).
The helpers here (TWO_PROJECTS, apply, counter, write_counter) are reused by the CLI and flow tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from model.readings import Reading
from model.site import SiteConfig, load_site
from model.yamlfile import ConfigError
from store.ingest import write_readings
from store.projects import latest_nameplate, project_records
from store.sites import apply_site

CST = timezone(timedelta(hours=8))
STEP = timedelta(minutes=15)

# Two PV projects on one site. roof-a states its nameplates; roof-b leaves them to the SunSpec
# nameplate gauges of its devices (models 120/702 capacity_w, 713/802 storage_capacity_wh).
TWO_PROJECTS = """\
enterprise: {code: e1, name: 一号鞋业, industry: footwear}
site: {code: main, name: Main}
devices:
  - name: grid
    profile: generic-3ph-meter
    host: 127.0.0.1
    unit_id: 1
    points:
      - {quantity: energy_import, role: grid_import}
      - {quantity: energy_export, role: grid_export}
  - name: pv1
    profile: generic-3ph-meter
    host: 127.0.0.1
    unit_id: 2
    points: [{quantity: energy_export, role: pv_generation}]
  - name: bat1
    profile: generic-bess-meter
    host: 127.0.0.1
    unit_id: 3
    points:
      - {quantity: energy_import, role: storage_charge}
      - {quantity: energy_export, role: storage_discharge}
  - name: pv2
    profile: sunspec
    host: 127.0.0.1
    unit_id: 4
    points: [{quantity: energy_export, role: pv_generation}, {quantity: capacity_w}]
  - name: bat2
    profile: sunspec
    host: 127.0.0.1
    unit_id: 5
    points:
      - {quantity: energy_import, role: storage_charge}
      - {quantity: energy_export, role: storage_discharge}
      - {quantity: capacity_w}
      - {quantity: storage_capacity_wh}
projects:
  - code: roof-a
    pv: {capacity_w: 800000, commissioned: 2024-06-01, generation: [pv1]}
    storage: {power_w: 100000, energy_wh: 200000, charge: [bat1], discharge: [bat1]}
  - code: roof-b
    pv: {commissioned: 2024-06-01, generation: [pv2]}
    storage: {charge: [bat2], discharge: [bat2.energy_export]}
"""


def apply(conn, tmp_path, text: str = TWO_PROJECTS, name: str = "site.yaml") -> dict[str, int]:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return apply_site(conn, load_site(f))


def counter(start: datetime, powers_w: list[float], first_wh: float = 0.0) -> list[tuple[datetime, float]]:
    """Counter readings every 15 min from ``start``: one reading, then one per given mean power."""
    out = [(start, first_wh)]
    v = first_wh
    for i, p in enumerate(powers_w):
        v += p / 4
        out.append((start + STEP * (i + 1), v))
    return out


def write_counter(conn, point_id: int, readings: list[tuple[datetime, float]]) -> None:
    write_readings(conn, [Reading(point_id, ts, value) for ts, value in readings])


def day_of_pv(peak_w: float) -> list[float]:
    """96 quarter hours of a clear day: zero at night, ``peak_w`` from 10:00 to 14:00, ramps between."""
    out = []
    for q in range(96):
        h = q / 4
        out.append(0 if h < 6 or h >= 18 else peak_w * min(1, (h - 6) / 4, (18 - h) / 4))
    return out


def test_apply_upserts_projects_and_links(conn, tmp_path):
    ids = apply(conn, tmp_path)
    recs = {r.code: r for r in project_records(conn, "e1")}
    a, b = recs["roof-a"], recs["roof-b"]
    # roof-a: nameplates from the site file; storage commissioned with the PV (同步配套) by default
    assert (a.pv_w, a.storage_power_w, a.storage_energy_wh, a.origin) == (800_000, 100_000, 200_000, "site")
    assert a.storage_commissioned == a.commissioned
    assert [p.point_id for p in a.points["generation"]] == [ids["e1.main.pv1.energy_export"]]
    # "bat1" alone resolves by role: charge -> storage_charge point, discharge -> storage_discharge point
    assert [p.point_id for p in a.points["charge"]] == [ids["e1.main.bat1.energy_import"]]
    assert [p.point_id for p in a.points["discharge"]] == [ids["e1.main.bat1.energy_export"]]
    # roof-b: no nameplate in the file, left for SunSpec; its nameplate devices are its points' devices
    assert (b.pv_w, b.storage_power_w, b.storage_energy_wh) == (None, None, None) and b.has_storage
    assert [n for _, n in b.devices["pv"]] == ["pv2"] and [n for _, n in b.devices["storage"]] == ["bat2"]
    # re-applying changes nothing; a changed nameplate is updated, links replaced not duplicated
    apply(conn, tmp_path, TWO_PROJECTS.replace("capacity_w: 800000", "capacity_w: 900000"))
    recs = {r.code: r for r in project_records(conn, "e1")}
    assert recs["roof-a"].pv_w == 900_000 and len(recs["roof-a"].points["generation"]) == 1
    assert conn.execute("SELECT count(*) FROM pv_project_point").fetchone()[0] == 6


def test_latest_sunspec_nameplate(conn, tmp_path):
    ids = apply(conn, tmp_path)
    t0 = datetime(2024, 6, 1, tzinfo=CST)
    cap = ids["e1.main.pv2.capacity_w"]
    # model 120 WRtg read twice; the latest reading counts, a bad reading (no value) never does
    write_readings(conn, [Reading(cap, t0, 550_000.0), Reading(cap, t0 + STEP, 600_000.0),
                          Reading(cap, t0 + 2 * STEP, None, quality=2)])
    dev = conn.execute("SELECT device_id FROM device WHERE name = 'pv2'").fetchone()[0]
    (r,) = latest_nameplate(conn, [dev], "capacity_w")
    assert (r.device, r.value, r.ts) == ("pv2", 600_000.0, t0 + STEP)
    assert latest_nameplate(conn, [dev], "storage_capacity_wh") == []


@pytest.mark.parametrize("change, message", [
    # a reference to a device that does not exist names the project and the known devices
    ("generation: [pv2]}", "generation: [pv9]}", ),
    # a device without a point of the role needs "device.quantity"
    ("discharge: [bat2.energy_export]", "discharge: [grid]"),
    # one point cannot meter two projects (its energy would count twice)
    ("generation: [pv2]}", "generation: [pv1]}"),
    # gauges are not energy
    ("discharge: [bat2.energy_export]", "discharge: [bat2.capacity_w]"),
], ids=["unknown-device", "no-role-point", "shared-point", "gauge"])
def test_site_file_project_errors(tmp_path, change, message):
    f = tmp_path / "site.yaml"
    f.write_text(TWO_PROJECTS.replace(change, message), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_site(f)
    text = str(exc.value)
    assert text.startswith("site.yaml line ") and "projects" in text and "roof-b" in text
    expected = {"generation: [pv9]}": "no device 'pv9'", "discharge: [grid]": "0 points with role 'storage_discharge'",
                "generation: [pv1]}": "already meters project 'roof-a'",
                "discharge: [bat2.capacity_w]": "not an energy counter"}[message]
    assert expected in text


def test_site_without_projects_is_unchanged(conn, tmp_path):
    # the section is optional: a site file without it applies as before and writes no project
    apply(conn, tmp_path, TWO_PROJECTS.split("projects:")[0])
    assert conn.execute("SELECT count(*) FROM pv_project").fetchone()[0] == 0


def test_storage_power_from_file_energy_from_sunspec(conn, tmp_path):
    # one nameplate value in the file, the other left to SunSpec 713/802 WHRtg: 0301 allows the mix
    ids = apply(conn, tmp_path, TWO_PROJECTS.replace("storage: {charge: [bat2]", "storage: {power_w: 120000, charge: [bat2]"))
    b = {r.code: r for r in project_records(conn, "e1")}["roof-b"]
    assert (b.storage_power_w, b.storage_energy_wh) == (120_000, None)
    write_readings(conn, [Reading(ids["e1.main.bat2.storage_capacity_wh"], datetime(2024, 6, 1, tzinfo=CST), 300_000.0)])
    from accounting.policy_inputs import project_inputs

    projects, ev = project_inputs(conn, "e1", 2024, "Asia/Shanghai")
    s = {p.id: p for p in projects}["roof-b"].storage
    assert (s.power_w, s.energy_wh) == (120_000, 300_000)
    assert ev["roof-b"]["storage_power_w"]["source"] == "site file"
    assert ev["roof-b"]["storage_energy_wh"]["source"] == "sunspec storage_capacity_wh"


def test_a_project_metered_by_an_mqtt_source(conn):
    """A PV project may be metered by a gateway publishing over MQTT, not only by Modbus devices."""
    site = SiteConfig.model_validate({
        "enterprise": {"code": "mq", "name": "MQTT plant"},
        "site": {"code": "main", "name": "Main"},
        "mqtt": {"host": "127.0.0.1", "devices": [
            {"name": "pvgw", "points": [{"quantity": "energy_export", "role": "pv_generation"}]}],
            "subscriptions": [{"topic": "plant/pv", "device": "pvgw", "format": "number",
                               "quantity": "energy_export", "unit": "kWh"}]},
        "projects": [{"code": "roof", "pv": {"capacity_w": 600000, "commissioned": "2024-05-01",
                                             "generation": ["pvgw"]}}],
    })
    ids = apply_site(conn, site)
    linked = conn.execute("SELECT point_id, link FROM pv_project_point").fetchall()
    assert linked == [(ids["mq.main.pvgw.energy_export"], "generation")]


def test_nameplates_are_read_per_device_not_per_device_name(conn, tmp_path):
    # two sites of one enterprise, each with a SunSpec inverter named "pv2" in a project of its own:
    # each project's nameplate is its own device's (grouped by name, both read both readings), and
    # the loader and the eligibility fingerprint read them alike (store.projects.NAMEPLATE_SQL)
    from store.bundle import load_enterprise_period, nameplate_digest_rows

    ids = apply(conn, tmp_path)
    east = TWO_PROJECTS.replace("site: {code: main, name: Main}", "site: {code: east, name: East}")
    east = east.split("projects:")[0] + """projects:
  - code: roof-c
    pv: {commissioned: 2024-06-01, generation: [pv2]}
"""
    ids |= apply(conn, tmp_path, east, "east.yaml")
    t0 = datetime(2024, 6, 1, tzinfo=CST)
    write_readings(conn, [Reading(ids["e1.main.pv2.capacity_w"], t0, 600_000.0),
                          Reading(ids["e1.east.pv2.capacity_w"], t0, 300_000.0)])
    dev = dict(conn.execute("SELECT s.code, d.device_id FROM device d JOIN site s USING (site_id) "
                            "WHERE d.name = 'pv2'").fetchall())
    bundle = load_enterprise_period(conn, "e1", t0, t0 + timedelta(days=1))
    assert [r.value for r in bundle.nameplates[(dev["main"], "capacity_w")]] == [600_000.0]
    assert [r.value for r in bundle.nameplates[(dev["east"], "capacity_w")]] == [300_000.0]
    digest = nameplate_digest_rows(conn, bundle.projects)
    assert sorted(r[-1] for r in digest if r[0] == "capacity_w") == [300_000.0, 600_000.0]
