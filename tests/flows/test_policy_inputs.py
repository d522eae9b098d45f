"""accounting.policy_inputs against the real PostgreSQL: projects checked from their own points, nameplates
from SunSpec, products fed to the engine, green instruments from the ledger, energy by carrier.

Readings are written with store.ingest.write_readings.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from accounting.policy_inputs import energy_year, enterprise_year, green_instruments, project_inputs
from metrics.policy import evaluate as _evaluate
from model.tables import load_document, load_documents
from metrics.ledger import serial_range
from model.tables import POLICY_DIR


def evaluate(ey, documents=None):
    return _evaluate(ey, load_documents() if documents is None else documents)
from store.ledger import CertificateEntry, TradeEntry, add_entries
from store.production import import_production, parse_production_csv
from tests.store.test_projects import CST, TWO_PROJECTS, apply, counter, day_of_pv, write_counter

T0 = datetime(2024, 6, 1, tzinfo=CST)  # both projects commissioned on this local day


def discharge(quarters: int, power_w: float, at_quarter: int = 76, days: int = 2) -> list[float]:
    """Quarter-hour mean discharge power over ``days``: ``quarters`` at ``power_w`` from 19:00 of day 1."""
    out = [0.0] * (96 * days)
    for q in range(at_quarter, at_quarter + quarters):
        out[q] = power_w
    return out


def meter_two_projects(conn, ids, *, roof_b_nameplate: bool = True) -> None:
    """roof-a: 800 kW PV, battery 100 kW / 200 kWh that discharges 100 kW for only 1.5 h.
    roof-b: PV 600 kW and battery 100 kW / 250 kWh read from SunSpec, discharging 100 kW for 2.5 h."""
    p = lambda name: ids[f"e1.main.{name}"]  # noqa: E731
    write_counter(conn, p("pv1.energy_export"), counter(T0, day_of_pv(700_000) * 2))
    write_counter(conn, p("bat1.energy_export"), counter(T0, discharge(6, 100_000)))
    write_counter(conn, p("bat1.energy_import"), counter(T0, discharge(8, 100_000, at_quarter=40)))
    write_counter(conn, p("pv2.energy_export"), counter(T0, day_of_pv(500_000) * 2))
    write_counter(conn, p("bat2.energy_export"), counter(T0, discharge(10, 100_000)))
    if roof_b_nameplate:
        write_counter(conn, p("pv2.capacity_w"), [(T0, 600_000.0)])
        write_counter(conn, p("bat2.capacity_w"), [(T0, 100_000.0)])
        write_counter(conn, p("bat2.storage_capacity_wh"), [(T0, 250_000.0)])
    conn.commit()  # other connections (the CLI's) see the readings


def test_two_projects_each_checked_from_their_own_points(conn, tmp_path):
    ids = apply(conn, tmp_path)
    meter_two_projects(conn, ids)
    projects, ev = project_inputs(conn, "e1", 2024, "Asia/Shanghai")
    by = {p.id: p for p in projects}
    a = {c.name: c for c in by["roof-a"].checks}
    b = {c.name: c for c in by["roof-b"].checks}
    # 2024-2 §三(一) 时长不低于2小时: roof-a's battery delivered 150 kWh in its one discharge, short of
    # 2 h × 100 kW less 5 % = 190 kWh -> fail; roof-b's delivered 250 kWh -> pass
    assert a["storage_discharge_duration"].status == "fail"
    assert a["storage_discharge_duration"].data["episode_energy_wh"] == 150_000
    assert b["storage_discharge_duration"].status == "pass"
    assert b["storage_discharge_duration"].data["episode_energy_wh"] == 250_000
    # each project read only its own points (no mixing of the two batteries or the two PV meters)
    assert ev["roof-a"]["discharge"]["points"] == ["e1.main.bat1.energy_export"]
    assert ev["roof-b"]["discharge"]["points"] == ["e1.main.bat2.energy_export"]
    assert ev["roof-a"]["charge"]["energy_wh"] == 200_000
    # PV produced after commissioning, for both
    assert a["pv_produced_after_commissioning"].status == b["pv_produced_after_commissioning"].status == "pass"
    # 不小于项目规模10%: 100 kW measured / 800 kW = 12.5 %; 100 kW / 600 kW = 16.7 %
    assert a["storage_power_ratio"].status == b["storage_power_ratio"].status == "pass"


def test_nameplate_from_sunspec_when_the_site_file_omits_it(conn, tmp_path):
    ids = apply(conn, tmp_path)
    meter_two_projects(conn, ids)
    projects, ev = project_inputs(conn, "e1", 2024, "Asia/Shanghai")
    b = {p.id: p for p in projects}["roof-b"]
    # SunSpec model 120 WRtg (capacity_w) and 713/802 WHRtg (storage_capacity_wh) of the linked devices
    assert (b.pv_w, b.storage.power_w, b.storage.energy_wh) == (600_000, 100_000, 250_000)
    assert ev["roof-b"]["pv_w"]["source"] == "sunspec capacity_w"
    assert ev["roof-b"]["pv_w"]["readings"][0]["device"] == "pv2"
    assert ev["roof-b"]["storage_energy_wh"]["source"] == "sunspec storage_capacity_wh"
    assert ev["roof-a"]["pv_w"] == {"source": "site file", "value": 800_000}


def test_awards_from_stored_readings(conn, tmp_path):
    ids = apply(conn, tmp_path)
    meter_two_projects(conn, ids)
    ey, _ = enterprise_year(conn, "e1", 2024)
    res = evaluate(ey)
    pv = {c.subject: c for c in res.candidates if c.kind == "pv_storage" and c.document == "晋政规〔2024〕2号"}
    # 2024-2 §三(一): roof-a 0.8 MW × 40,000 = 32,000; its storage part is disproved by telemetry
    a = pv["project roof-a"]
    assert a.status == "qualifies" and a.amount == Decimal("32000.00")
    assert any("telemetry disproves the storage nameplate" in r for r in a.reasons)
    # roof-b 0.6 MW (SunSpec) × 40,000 = 24,000 + storage 0.1 MW × 100,000 = 10,000 (按比例)
    assert pv["project roof-b"].amount == Decimal("34000.00")
    assert res.total == Decimal("66000.00")


def test_capacity_unknown_without_sunspec_reading(conn, tmp_path):
    ids = apply(conn, tmp_path)
    meter_two_projects(conn, ids, roof_b_nameplate=False)
    ey, ev = enterprise_year(conn, "e1", 2024)
    assert "no capacity_w reading from device(s) pv2" in ev["projects"]["roof-b"]["pv_w"]["detail"]
    c = next(c for c in evaluate(ey).candidates if c.subject == "project roof-b" and c.document == "晋政规〔2024〕2号")
    # no nameplate anywhere: the candidate is unknown, never "does not qualify"
    assert c.status == "unknown" and c.amount is None


def grid_year(conn, ids, year: int, wh: int, code: str = "e1") -> None:
    pid = ids[f"{code}.main.grid.energy_import"]
    write_counter(conn, pid, [(datetime(year, 1, 1, tzinfo=CST), 0.0), (datetime(year + 1, 1, 1, tzinfo=CST), float(wh))])
    conn.commit()


def _fujian_in_force(tmp_path):
    """The Fujian rules with a publication date (the packaged file leaves it unknown)."""
    text = (POLICY_DIR / "fujian_green_manufacturing.yaml").read_text(encoding="utf-8")
    text = text.replace("issued: null", "issued: 2024-01-01").replace("  start: null", "  start: 2024-01-01", 1)
    f = tmp_path / "fujian.yaml"
    f.write_text(text, encoding="utf-8")
    return load_document(f)


def test_products_feed_the_unit_energy_rule(conn, tmp_path):
    ids = apply(conn, tmp_path)
    grid_year(conn, ids, 2024, 1_000_000_000)  # 1 GWh × 0.1229 kgce/kWh = 122,900 kgce
    rows = parse_production_csv(
        "record,enterprise,product,period_start,period_end,quantity,unit,output_value_yuan,advanced,limit,standard\n"
        "reference,,运动鞋,,,,万双,,1300,1500,GB 0000-2024 表1\n"
        "production,e1,运动鞋,2024-01-01,2024-06-30,40,万双,40000000,,,\n"
        "production,e1,运动鞋,2024-07-01,2024-12-31,60,万双,60000000,,,\n")
    import_production(conn, rows)
    ey, ev = enterprise_year(conn, "e1", 2024)
    (p,) = ey.products
    assert (p.product, p.quantity, p.energy_kgce) == ("运动鞋", Decimal(100), Decimal("122900.0000"))
    assert p.reference.advanced == Decimal(1300) and p.reference.source == "GB 0000-2024 表1"
    # 福建 002 第七条 3: 122,900 kgce / 100 万双 = 1,229 kgce/万双 ≤ advanced 1,300 -> qualifies
    doc = _fujian_in_force(tmp_path)
    (c,) = [c for c in evaluate(ey, [doc]).candidates if c.kind == "unit_energy"]
    assert c.status == "qualifies"
    # with the packaged file (no publication date) the same data is unknown, not decided
    (c,) = [c for c in evaluate(ey, load_documents()).candidates if c.kind == "unit_energy"]
    assert c.status == "unknown"
    # an advanced value below it: does not qualify
    import_production(conn, parse_production_csv("record,product,unit,advanced\nreference,运动鞋,万双,1200\n"))
    ey, _ = enterprise_year(conn, "e1", 2024)
    (c,) = [c for c in evaluate(ey, [doc]).candidates if c.kind == "unit_energy"]
    assert c.status == "does_not_qualify"


def test_two_products_energy_not_split(conn, tmp_path):
    ids = apply(conn, tmp_path)
    grid_year(conn, ids, 2024, 1_000_000_000)
    import_production(conn, parse_production_csv(
        "record,enterprise,product,period_start,period_end,quantity,unit\n"
        "production,e1,运动鞋,2024-01-01,2024-12-31,60,万双\n"
        "production,e1,皮鞋,2024-01-01,2024-12-31,40,万双\n"))
    ey, ev = enterprise_year(conn, "e1", 2024)
    # 福建 002 第七条 3 needs each product's own energy: the whole-site meter cannot split it
    assert [p.energy_kgce for p in ey.products] == [None, None]
    assert "split of the enterprise's energy is not metered" in ev["products"]["皮鞋"]["energy"]


def add_ledger(conn, code: str = "e1") -> None:
    """2023: a 100 MWh trade with 100 bundled certificates, 200 certificates retired alone, and one
    certificate retired in 2024 (another year) — through the real ledger (store/ledger.py)."""
    def gec(first, last, used, trade=None):
        return CertificateEntry(code, *serial_range(f"GEC{first:010d}", f"GEC{last:010d}"), date(2023, 8, 1),
                                date.fromisoformat(used), trade)
    add_entries(conn, [TradeEntry(code, "T-2023-1", date(2023, 9, 30), 100_000_000),
                       gec(1, 100, "2023-09-30", "T-2023-1"), gec(1001, 1200, "2023-12-31"),
                       gec(5000, 5000, "2024-01-01")])
    conn.commit()


def test_green_instruments(conn, tmp_path):
    apply(conn, tmp_path)
    gi = green_instruments(conn, "e1", 2023)
    assert (gi["green_trade_wh"], gi["certificates"], gi["trades"]) == (0, 0, 0)
    add_ledger(conn)
    gi = green_instruments(conn, "e1", 2023)
    # README R1: bundled certificates are in the trade's volume and not counted again
    assert (gi["green_trade_wh"], gi["certificates"], gi["trades"]) == (100_000_000, 200, 1)
    assert gi["bundled_certificates"] == 100 and gi["rejected"] == []


def test_energy_year_with_gas(conn, tmp_path):
    ids = apply(conn, tmp_path)
    grid_year(conn, ids, 2023, 1_000_000_000)
    gas = add_gas_point(conn)
    write_counter(conn, gas, [(datetime(2023, 1, 1, tzinfo=CST), 500.0), (datetime(2024, 1, 1, tzinfo=CST), 10_500.0)])
    e = energy_year(conn, "e1", 2023)
    assert e.grid_import_wh == 1_000_000_000 and e.fuels == {"natural_gas_m3": 10_000}
    assert e.coal_quantities() == {"electricity_wh": 1_000_000_000, "natural_gas_m3": 10_000}


def add_gas_point(conn, code: str = "e1") -> int:
    """A natural-gas counter [m3] on the grid meter's device (no register profile ships one yet)."""
    pid = conn.execute(
        """INSERT INTO point (device_id, name, quantity, kind, unit)
           SELECT d.device_id, %s, 'gas_volume', 'counter', 'm3' FROM device d JOIN site s USING (site_id)
           JOIN enterprise e USING (enterprise_id) WHERE e.code = %s AND d.name = 'grid' RETURNING point_id""",
        (f"{code}.main.gas", code)).fetchone()[0]
    conn.commit()
    return pid


def test_facts_project_without_links_uses_site_roles(conn, tmp_path):
    # a project imported from facts (no links) is the enterprise's only one: the site's
    # pv_generation / storage_discharge points stand for it, as before the links existed
    ids = apply(conn, tmp_path, TWO_PROJECTS.split("projects:")[0])
    conn.execute("""INSERT INTO pv_project (enterprise_id, code, pv_w, commissioned, storage_power_w, storage_energy_wh,
                                            storage_commissioned)
                    SELECT enterprise_id, 'roof-f', 800000, '2024-06-01', 100000, 200000, '2024-06-01'
                    FROM enterprise WHERE code = 'e1'""")
    write_counter(conn, ids["e1.main.bat1.energy_export"], counter(T0, discharge(6, 100_000)))
    (p,), ev = project_inputs(conn, "e1", 2024, "Asia/Shanghai")
    assert ev["roof-f"]["points_from"].startswith("site roles")
    assert {c.name: c.status for c in p.checks}["storage_discharge_duration"] == "fail"
    assert ev["roof-f"]["pv_w"]["source"] == "facts"
    assert date(2024, 6, 1) == p.commissioned


def test_a_project_commissioned_after_the_period_read_is_not_checked_yet(conn, tmp_path):
    """The current year read up to today, with a project commissioned next month: no telemetry
    check can run yet (and none may crash the hourly eligibility run)."""
    apply(conn, tmp_path)
    until = datetime(2024, 3, 1, tzinfo=CST)  # both projects are commissioned in June 2024
    projects, ev = project_inputs(conn, "e1", 2024, "Asia/Shanghai", until=until)
    assert all(p.checks == () for p in projects)
    assert all(e["checks"].startswith("not run yet: commissioning 2024-06") for e in ev.values())


def test_sunspec_nameplate_is_summed_exactly_and_floored_never_rounded_up_to_a_threshold(conn, tmp_path):
    ids = apply(conn, tmp_path)
    meter_two_projects(conn, ids, roof_b_nameplate=False)
    # 499,999.5 W: a rounded float sum made it 500,000 W, the 0.5 MW floor of 2024-2 §三(一)
    write_counter(conn, ids["e1.main.pv2.capacity_w"], [(T0, 499_999.5)])
    write_counter(conn, ids["e1.main.bat2.capacity_w"], [(T0, 99_999.9)])
    conn.commit()
    projects, ev = project_inputs(conn, "e1", 2024, "Asia/Shanghai")
    b = {p.id: p for p in projects}["roof-b"]
    assert b.pv_w == 499_999 and ev["roof-b"]["pv_w"]["value"] == 499_999
    assert b.storage.power_w == 99_999
