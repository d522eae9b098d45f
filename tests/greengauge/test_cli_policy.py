"""`greengauge facts import`, `policies list`, `report awards` against a real database."""

import json
from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

from greengauge.cli import app
from greengauge.demo import DEMO_SITE

runner = CliRunner()
CST = timezone(timedelta(hours=8))
FACTS = (
    "enterprise,record,kind,date,scope,project,pv_w,storage_power_w,storage_energy_wh\n"
    "jj-shoes,fact,miit_norm,2025-03-10,再生资源综合利用,,,,\n"
    "jj-shoes,pv_project,,2025-08-01,,roof-1,800000,100000,200000\n"
)


def _setup(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    assert runner.invoke(app, ["site", "apply", str(DEMO_SITE)]).exit_code == 0
    f = tmp_path / "facts.csv"
    f.write_text(FACTS, encoding="utf-8")
    r = runner.invoke(app, ["facts", "import", str(f)])
    assert r.exit_code == 0, r.output
    assert "1 fact and 1 PV project recorded" in r.output


def _meter_recycling(conn, wh_by_ts):
    pid = conn.execute("SELECT point_id FROM point WHERE role = 'subproject'").fetchone()[0]
    for ts, wh in wh_by_ts:
        conn.execute("INSERT INTO reading (point_id, ts, value) VALUES (%s, %s, %s)", (pid, ts, wh))
    conn.commit()


def test_report_awards_json(db_url, conn, monkeypatch, tmp_path):
    _setup(db_url, monkeypatch, tmp_path)
    # the recycling line's counter over local 2025: 4.2 GWh (readings at the local year's edges)
    _meter_recycling(conn, [(datetime(2025, 1, 1, tzinfo=CST), 1_000),
                            (datetime(2025, 7, 1, tzinfo=CST), 2_000_001_000),
                            (datetime(2026, 1, 1, tzinfo=CST), 4_200_001_000),
                            # a reading after the year: a rise beyond the 400 kW rating at the newest
                            # reading waits for the next one (docs/accounting.md, "The last reading")
                            (datetime(2026, 1, 1, 1, tzinfo=CST), 4_200_101_000)])
    r = runner.invoke(app, ["report", "awards", "--enterprise", "jj-shoes", "--year", "2025", "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["metering"]["recycling"]["energy_wh"] == 4_200_000_000
    chosen = {c["group"]: c for c in out["candidates"] if c["chosen"]}
    # 2024-2 §二(二) 420,000 beats 2025-5 §三(一) 200,000 (就高不重复)
    assert chosen["miit-norm"]["document"] == "晋政规〔2024〕2号" and chosen["miit-norm"]["amount"] == "420000.00"
    # PV commissioned 2025-08-01: 2024-2 repealed, no subsidy anywhere
    pv = [c for c in out["candidates"] if c["group"] == "pv-storage"]
    assert [c["status"] for c in pv] == ["not_applicable"]
    # no grid points metered: the green share is unknown, not "does not qualify"
    assert {c["status"] for c in out["candidates"] if c["group"] == "green-share-priority"} == {"unknown"}
    assert out["total"] == "420000.00"


def test_report_awards_table_and_policies(db_url, monkeypatch, tmp_path):
    _setup(db_url, monkeypatch, tmp_path)
    r = runner.invoke(app, ["report", "awards", "--enterprise", "jj-shoes", "--year", "2025"])
    assert r.exit_code == 0, r.output
    assert "total of the chosen awards: 200,000.00 yuan" in r.output  # no metered energy: 2025-5 listing only
    r = runner.invoke(app, ["policies", "list"])
    assert r.exit_code == 0 and "repealed by 晉政規〔2025〕5號 on 2025-06-15" in r.output


def test_errors(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    r = runner.invoke(app, ["report", "awards", "--enterprise", "nobody", "--year", "2025"])
    assert r.exit_code == 2 and "no enterprise 'nobody'" in r.output
    bad = tmp_path / "facts.csv"
    bad.write_text("enterprise,record,kind,date\nnobody,fact,green_factory,2025-01-01\n", encoding="utf-8")
    r = runner.invoke(app, ["facts", "import", str(bad)])
    assert r.exit_code == 2 and "facts.csv line 2: enterprise: no enterprise 'nobody'" in r.output


# ---- PV/storage projects from the site file (rule R3, 晋政规〔2024〕2号 §三(一)) ------------------

def test_report_awards_battery_short_of_two_hours(db_url, conn, monkeypatch, tmp_path):
    """End to end: `site apply` with a `projects:` section, readings stored, `report awards`."""
    from tests.flows.test_policy_inputs import meter_two_projects
    from tests.store.test_projects import TWO_PROJECTS

    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    site = tmp_path / "site.yaml"
    site.write_text(TWO_PROJECTS, encoding="utf-8")
    r = runner.invoke(app, ["site", "apply", str(site)])
    assert r.exit_code == 0, r.output
    ids = dict(conn.execute("SELECT name, point_id FROM point").fetchall())
    meter_two_projects(conn, ids)
    r = runner.invoke(app, ["report", "awards", "--enterprise", "e1", "--year", "2024", "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    pv = {c["subject"]: c for c in out["candidates"] if c["kind"] == "pv_storage" and c["document"] == "晋政规〔2024〕2号"}
    a = pv["project roof-a"]
    checks = {c["name"]: c for c in a["evidence"]["checks"]}
    # 时长不低于2小时: one observed discharge of 150 kWh < 2 h × 100 kW × 0.95 -> fail, storage not paid
    assert checks["storage_discharge_duration"]["status"] == "fail"
    assert a["status"] == "qualifies" and a["amount"] == "32000.00" and a["evidence"]["storage_amount"] == "0.00"
    # roof-b, checked from its own battery: passes and is paid for its storage (0.1 MW × 100,000)
    assert pv["project roof-b"]["amount"] == "34000.00"
    assert out["metering"]["projects"]["roof-b"]["pv_w"]["source"] == "sunspec capacity_w"
    # a looser tolerance is the caller's choice and is stated; it is on the energy only (150 kWh ≥
    # 200 kWh × (1 − 0.3) = 140 kWh), the discharge must still last 2 h (9 §3g): 1.5 h is not paid
    r = runner.invoke(app, ["report", "awards", "--enterprise", "e1", "--year", "2024", "--format", "json",
                            "--storage-tolerance", "0.3"])
    out = json.loads(r.output)
    a = next(c for c in out["candidates"] if c["subject"] == "project roof-a" and c["document"] == "晋政规〔2024〕2号")
    assert a["amount"] == "32000.00"
    checks = {c["name"]: c for c in a["evidence"]["checks"]}
    assert "short of 2 h" in checks["storage_discharge_duration"]["detail"]
