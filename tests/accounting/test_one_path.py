"""One path (docs/accounting.md): for each scenario, readings in the real PostgreSQL, the flows run
as plain functions (rollup, metrics, eligibility), then the `report …` command with
`--format json` — and the report must equal the stored result, to the Wh and the status.

Every test checks both sides: a figure checked on one side only does not count.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import psycopg
import pytest
from typer.testing import CliRunner

from flows.eligibility import evaluate
from flows.metrics import enterprise_metrics
from flows.rollup import rollup
from greengauge.cli import app
from greengauge.demo import DEMO_SITE
from store.results import enterprises
from tests.greengauge.test_cli_accounting import MIDNIGHT, P, at, counter, readings_csv

runner = CliRunner()
AS_OF = "2025-01-01T02:00:00+08:00"


@pytest.fixture
def env(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    r = runner.invoke(app, ["site", "apply", str(DEMO_SITE)])
    assert r.exit_code == 0, r.output
    return tmp_path


def cli(*args) -> dict:
    r = runner.invoke(app, [str(a) for a in args] + ["--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def import_csv(tmp_path, body: str) -> None:
    f = tmp_path / "r.csv"
    f.write_text(body)
    r = runner.invoke(app, ["import", "readings", str(f), "--unit", "Wh"])
    assert r.exit_code == 0, r.output


def run_flows(url: str, code: str, as_of: datetime, year: int):
    """What the scheduled flows do, as their plain functions: rollup, metrics, eligibility."""
    rollup(url, enterprise=code)
    with psycopg.connect(url) as conn:
        (e,) = enterprises(conn, code)
    m = enterprise_metrics(url, e, as_of, year=year)
    return e, m


def stored_share(url: str, code: str, year: int) -> dict:
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            """SELECT g.* FROM green_share_ytd g JOIN enterprise e USING (enterprise_id)
               WHERE e.code = %s AND g.year = %s""", (code, year))
        row = cur.fetchone()
        assert row is not None, "the metrics flow stored no green share"
        return dict(zip([d.name for d in cur.description], row))


def assert_share_agrees(report: dict, stored: dict) -> None:
    """report green-share --format json == green_share_ytd, field by field."""
    e = report["energy_wh"]
    assert (stored["status"], stored["green_wh"], stored["consumption_wh"], stored["onsite_green_wh"],
            stored["trade_wh"], stored["certificate_wh"], stored["missing_wh"], stored["certificates_to_buy"]) == (
        report["status"], e["green"], e["consumption"], e["onsite_green"], e["trade"], e["certificates"],
        report["missing_wh"], report["certificates_to_buy"])
    assert stored["share_exact"] == (report["share"] or {}).get("exact")
    assert stored["completeness_exact"] == report["completeness"]["exact"]
    assert stored["data_through"].isoformat() == report["evidence"]["period_end"]
    assert stored["inputs_sha256"] == report["evidence"]["inputs_sha256"]


def test_counters_ledger_and_30_percent_report_equals_stored(env, db_url):
    # the hand-checked case of tests/greengauge/test_cli_accounting.py: a 32-bit wrap, a recorded
    # replacement, an unexplained drop and a trade: exactly 30 % qualifies, on both sides
    import_csv(env, readings_csv())
    r = runner.invoke(app, ["meter", "replace", "--point", P + "battery.energy_export", "--at",
                            "2025-01-01T01:05:00+08:00", "--old-final-wh", "11000", "--new-initial-wh", "0",
                            "--reason", "display failed"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ledger", "add", "trade", "--enterprise", "jj-shoes", "--reference", "T1",
                            "--settled-on", "2025-01-01", "--mwh", "0.084"])
    assert r.exit_code == 0, r.output
    as_of = datetime.fromisoformat(AS_OF)
    run_flows(db_url, "jj-shoes", as_of, 2025)
    rep = cli("report", "green-share", "--enterprise", "jj-shoes", "--year", 2025, "--as-of", AS_OF)
    assert rep["status"] == "qualifies" and rep["energy_wh"]["consumption"] == 980_000  # hand-checked
    assert_share_agrees(rep, stored_share(db_url, "jj-shoes", 2025))
    # the stored findings are the report's evidence: wrap, replacement, unexplained drop
    assert sorted(f["kind"] for f in rep["evidence"]["findings"]) == [
        "counter_drop_unexplained", "counter_rollover", "meter_replacement"]

    # report balance --day == daily_balance of that day, to the Wh
    bal = cli("report", "balance", "--enterprise", "jj-shoes", "--day", "2025-01-01")
    with psycopg.connect(db_url) as conn:
        cur = conn.execute("SELECT * FROM daily_balance WHERE day = '2025-01-01'")
        row = dict(zip([d.name for d in cur.description], cur.fetchone()))
    e = bal["energy_wh"]
    assert (row["import_wh"], row["export_wh"], row["pv_wh"], row["charge_wh"], row["discharge_wh"],
            row["consumption_wh"], row["green_wh"], row["intervals"], row["estimated_intervals"],
            row["measured_intervals"]) == (
        e["import"], e["export"], e["pv"], e["charge"], e["discharge"], e["consumption"], e["green"],
        bal["intervals"], bal["estimated_intervals"], bal["measured_intervals"])
    assert e["consumption"] == 980_000


def test_missing_export_meter_is_unknown_in_the_flow_as_in_the_report(env, db_url):
    # 9 §3f: the export meter is dead (no reading at all) while the others are read every 15 min.
    # Import 100 kWh, PV 100 kWh per quarter hour -> on-site green 100 of 200 kWh consumption
    # would be 50 % "qualifies"; but no interval is measured for the site (export unknown), so the
    # share is unknown — in the stored result as in the report.
    rows = []
    for k in range(-1, 9):
        rows.append((P + "grid.energy_import", at(k), 1_000_000 + 100_000 * (k + 1)))
        rows.append((P + "pv.energy_export", at(k), 100_000 * (k + 1)))
        rows.append((P + "battery.energy_import", at(k), 5_000))
        rows.append((P + "battery.energy_export", at(k), 7_000))
    import_csv(env, "point,ts,value\n" + "".join(f"{p},{t.isoformat()},{v}\n" for p, t, v in rows))
    run_flows(db_url, "jj-shoes", datetime.fromisoformat(AS_OF), 2025)
    rep = cli("report", "green-share", "--enterprise", "jj-shoes", "--year", 2025, "--as-of", AS_OF)
    stored = stored_share(db_url, "jj-shoes", 2025)
    assert rep["status"] == "unknown" and rep["completeness"]["exact"] == "0/1"
    assert stored["measured_intervals"] == 0
    assert_share_agrees(rep, stored)

    # the export meter comes back for the first hour only: 4 of 8 quarter hours measured
    rows = [(P + "grid.energy_export", at(k), 0) for k in range(-1, 5)]  # 23:45 .. 01:00
    import_csv(env, "point,ts,value\n" + "".join(f"{p},{t.isoformat()},{v}\n" for p, t, v in rows))
    run_flows(db_url, "jj-shoes", datetime.fromisoformat(AS_OF), 2025)
    rep = cli("report", "green-share", "--enterprise", "jj-shoes", "--year", 2025, "--as-of", AS_OF)
    stored = stored_share(db_url, "jj-shoes", 2025)
    assert rep["status"] == "unknown" and rep["completeness"]["exact"] == "1/2"
    assert_share_agrees(rep, stored)


def test_carbon_report_equals_carbon_ytd(env, db_url):
    import_csv(env, readings_csv())
    # a closed year: the whole local year 2025 on both sides
    as_of = datetime(2026, 3, 1, tzinfo=timezone.utc)
    _, m = run_flows(db_url, "jj-shoes", as_of, 2025)
    rep = cli("report", "carbon", "--enterprise", "jj-shoes", "--year", 2025, "--factor-year-offset", -2,
              "--latest-available")
    with psycopg.connect(db_url) as conn:
        cur = conn.execute("SELECT * FROM carbon_ytd WHERE year = 2025")
        row = dict(zip([d.name for d in cur.description], cur.fetchone()))
    assert row["grid_import_wh"] == rep["grid_import_wh"] == 800_000
    assert str(row["location_co2_kg"]) == rep["location_based"]["co2_kg"] if row["location_co2_kg"] is not None \
        else rep["location_based"]["co2_kg"] is None
    assert str(row["coal_equivalent_kgce"]) == rep["standard_coal"]["equivalent"]["total_kgce"]


def test_storage_award_report_equals_stored_decision(db_url, conn, monkeypatch, tmp_path):
    # R3 (晋政规〔2024〕2号 §三(一)): two projects, each checked from its own battery; the award
    # `report awards` prints is the version the eligibility flow stored, status and yuan
    from tests.flows.test_policy_inputs import meter_two_projects
    from tests.store.test_projects import TWO_PROJECTS

    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    site = tmp_path / "site.yaml"
    site.write_text(TWO_PROJECTS, encoding="utf-8")
    assert runner.invoke(app, ["site", "apply", str(site)]).exit_code == 0
    ids = dict(conn.execute("SELECT name, point_id FROM point").fetchall())
    meter_two_projects(conn, ids)
    as_of = datetime(2025, 3, 1, tzinfo=timezone.utc)  # 2024 is closed: its whole year on both sides
    e, _ = run_flows(db_url, "e1", as_of, 2024)
    evaluate(db_url, e, 2024, as_of)
    rep = cli("report", "awards", "--enterprise", "e1", "--year", 2024)
    with psycopg.connect(db_url) as c:
        stored = {(d, cl, r, s): (st, None if a is None else f"{a:.2f}") for d, cl, r, s, st, a in c.execute(
            "SELECT document, clause, rule, subject, status, amount FROM eligibility_current WHERE year = 2024")}
    shown = {(x["document"], x["clause"], x["rule"], x["subject"]): (x["status"], x["amount"])
             for x in rep["candidates"]}
    assert shown == stored
    roof_b = [v for k, v in shown.items() if k[0] == "晋政规〔2024〕2号" and k[3] == "project roof-b"]
    assert roof_b == [("qualifies", "34000.00")]  # its storage verified by its own telemetry


def test_late_data_reopens_a_closed_year_on_both_sides(env, db_url):
    # 9 §2: readings of a closed year arriving late (an import of history) re-open its intervals;
    # the metrics flow recomputes that year's days and year to date, the eligibility flow gives
    # the year's changed decisions a new version with reason late_data — and report = stored
    from flows.eligibility import enterprise_decisions
    from flows.metrics import enterprise_pass

    import_csv(env, readings_csv())
    as_of = datetime(2026, 3, 1, tzinfo=timezone.utc)  # 2025 is closed
    url = db_url
    rollup(url)
    with psycopg.connect(url) as conn:
        (e,) = enterprises(conn, "jj-shoes")
    enterprise_pass(url, e, as_of)
    first = enterprise_decisions(url, e, as_of, None)
    assert {r.reason for r in first} == {"first"}
    before = stored_share(url, "jj-shoes", 2025)

    # a gateway's backlog for 2025-03-01 (local), long after the watermark: grid import 50 kWh per
    # quarter hour for two hours
    day = datetime(2025, 3, 1, tzinfo=timezone(timedelta(hours=8)))
    rows = [(P + "grid.energy_import", day + timedelta(minutes=15 * k), 100_000_000 + 50_000 * k) for k in range(9)]
    import_csv(env, "point,ts,value\n" + "".join(f"{p},{t.isoformat()},{v}\n" for p, t, v in rows))
    rollup(url)
    ms = enterprise_pass(url, e, as_of)
    m2025 = next(m for m in ms if m.year == 2025)
    assert date(2025, 3, 1) in m2025.daily  # the late day is rebalanced
    after = stored_share(url, "jj-shoes", 2025)
    assert after["consumption_wh"] > before["consumption_wh"]
    later = enterprise_decisions(url, e, as_of, None)
    r1 = [r for r in later if r.rule == "green-share-priority"]
    assert r1 and all(r.reason == "late_data" for r in r1)

    # and the reports say what is stored
    rep = cli("report", "green-share", "--enterprise", "jj-shoes", "--year", 2025, "--as-of", as_of.isoformat())
    assert_share_agrees(rep, after)
    bal = cli("report", "balance", "--enterprise", "jj-shoes", "--day", "2025-03-01")
    with psycopg.connect(url) as conn:
        (cons,) = conn.execute("SELECT consumption_wh FROM daily_balance WHERE day = '2025-03-01'").fetchone()
    assert bal["energy_wh"]["consumption"] == cons == 400_000


def test_ct_pt_reset_is_no_energy_in_the_report_as_in_the_stored_result(db_url, conn, monkeypatch, tmp_path):
    # 9 §3a (the rollup's fix, counters): a reset behind CT 40 / PT 100 is not a wrap of 42.9 GWh;
    # the grid import of the day is 4 000 Wh in the report and in daily_balance / carbon_ytd alike
    from tests.flows.test_rollup import HV_SITE

    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    f = tmp_path / "hv.yaml"
    f.write_text(HV_SITE)
    assert runner.invoke(app, ["site", "apply", str(f)]).exit_code == 0
    t0 = datetime(2025, 6, 21, tzinfo=timezone.utc)
    values = [30e9 - 2000, 30e9 - 1000, 30e9, 0.0, 1000.0, 2000.0]
    import_csv(tmp_path, "point,ts,value\n" + "".join(
        f"hv-works.main.incomer.energy_import,{(t0 + timedelta(minutes=15 * i)).isoformat()},{v}\n"
        for i, v in enumerate(values)))
    as_of = datetime(2026, 2, 1, tzinfo=timezone.utc)
    run_flows(db_url, "hv-works", as_of, 2025)
    bal = cli("report", "balance", "--enterprise", "hv-works", "--day", "2025-06-21")
    with psycopg.connect(db_url) as c:
        (imp,) = c.execute("SELECT import_wh FROM daily_balance WHERE day = '2025-06-21'").fetchone()
        (carbon_import,) = c.execute("SELECT grid_import_wh FROM carbon_ytd WHERE year = 2025").fetchone()
    assert bal["energy_wh"]["import"] == imp == carbon_import == 5_000 - 1_000  # 4 quarter hours of 1 kWh


def test_replacement_at_the_final_reading_report_equals_stored(env, db_url):
    # 9 §3c (counters): a replacement recorded at the instant of the old meter's final reading;
    # that reading is the old meter's — 300 Wh in the swap's quarter hour, not the old counter's 5 288
    t0 = datetime(2025, 6, 21, tzinfo=timezone.utc)
    q = lambda k: t0 + timedelta(minutes=15 * k)  # noqa: E731
    rows = [(P + "battery.energy_export", q(k), 4_400 + 300 * k) for k in range(4)]
    rows += [(P + "battery.energy_export", q(k), 12 + 200 * (k - 3)) for k in range(4, 8)]
    import_csv(env, "point,ts,value\n" + "".join(f"{p},{t.isoformat()},{v}\n" for p, t, v in rows))
    r = runner.invoke(app, ["meter", "replace", "--point", P + "battery.energy_export", "--at", q(3).isoformat(),
                            "--old-final-wh", "5300", "--new-initial-wh", "12", "--reason", "failed calibration"])
    assert r.exit_code == 0, r.output
    run_flows(db_url, "jj-shoes", datetime(2025, 6, 22, 1, tzinfo=timezone.utc), 2025)
    bal = cli("report", "balance", "--enterprise", "jj-shoes", "--day", "2025-06-21")
    with psycopg.connect(db_url) as c:
        (dis,) = c.execute("SELECT discharge_wh FROM daily_balance WHERE day = '2025-06-21'").fetchone()
    assert bal["energy_wh"]["discharge"] == dis == 3 * 300 + 4 * 200
    kinds = [f["kind"] for f in bal["evidence"]["findings"]]
    assert "meter_replacement" in kinds


def test_carried_days_give_the_figures_of_a_full_read(env, db_url, monkeypatch):
    # the metrics flow carries the year's parts up to the last local midnight (metrics_prefix) and
    # reads only the days after them; the report computes the whole year: same Wh, status, digest
    import flows.metrics as fm
    import store.results

    # everything here happens within seconds: no margin for rollups committing during the pass
    monkeypatch.setattr(store.results, "WATERMARK_MARGIN_S", 0)
    t0 = datetime.fromisoformat("2025-01-01T00:00:00+08:00")

    def csv(k0, k1):  # grid 40 kWh, PV 10 kWh per quarter hour (PV used on site), battery idle
        rows = []
        for k in range(k0, k1):
            t = t0 + timedelta(minutes=15 * k)
            rows += [(P + "grid.energy_import", t, 40_000 * k), (P + "pv.energy_export", t, 10_000 * k),
                     (P + "grid.energy_export", t, 0), (P + "battery.energy_import", t, 0),
                     (P + "battery.energy_export", t, 0)]
        return "point,ts,value\n" + "".join(f"{p},{t.isoformat()},{v}\n" for p, t, v in rows)

    import_csv(env, csv(0, 96 + 25))  # 2025-01-01 00:00 .. 2025-01-02 06:00 local
    url = db_url
    rollup(url)
    with psycopg.connect(url) as conn:
        (e,) = enterprises(conn, "jj-shoes")
    fm.enterprise_pass(url, e, t0 + timedelta(hours=30))
    with psycopg.connect(url) as conn:
        (through,) = conn.execute("SELECT through FROM metrics_prefix WHERE year = 2025").fetchone()
    assert through == t0 + timedelta(days=1)
    import_csv(env, csv(96 + 25, 96 + 33))  # two more hours of readings
    rollup(url)
    starts = []
    real = fm.load_enterprise_period
    monkeypatch.setattr(fm, "load_enterprise_period", lambda conn, code, start, end, **kw: (
        starts.append(start), real(conn, code, start, end, **kw))[1])
    as_of2 = t0 + timedelta(hours=32)
    fm.enterprise_pass(url, e, as_of2)
    assert starts[-1] == through  # 2025: only the day after the carried ones was read (starts[0]: 2024)
    rep = cli("report", "green-share", "--enterprise", "jj-shoes", "--year", 2025, "--as-of", as_of2.isoformat())
    stored = stored_share(url, "jj-shoes", 2025)
    assert_share_agrees(rep, stored)  # inputs_sha256 included
    # 128 quarter hours of 50 kWh, 10 kWh of it PV: 20 %, below 30 %
    assert rep["energy_wh"]["consumption"] == 50_000 * 128 and rep["status"] == "does_not_qualify"


def test_hourly_history_is_measured_in_the_report_as_in_the_stored_result(env, db_url, tmp_path):
    # 9 §3e (counters): a year's day imported hourly with its resolution is measured time, not
    # "estimated" — the stored share and the report are decided (not unknown), and agree
    t0 = datetime.fromisoformat("2025-01-01T00:00:00+08:00")
    rows = []
    for h in range(25):
        t = t0 + timedelta(hours=h)
        rows += [(P + "grid.energy_import", t, 200 * h), (P + "pv.energy_export", t, 100 * h),
                 (P + "grid.energy_export", t, 0), (P + "battery.energy_import", t, 0),
                 (P + "battery.energy_export", t, 0)]
    f = tmp_path / "hourly.csv"
    f.write_text("point,ts,value\n" + "".join(f"{p},{t.isoformat()},{v}\n" for p, t, v in rows))
    r = runner.invoke(app, ["import", "readings", str(f), "--unit", "kWh", "--resolution", "1h"])
    assert r.exit_code == 0, r.output
    as_of = t0 + timedelta(days=1)
    run_flows(db_url, "jj-shoes", as_of, 2025)
    rep = cli("report", "green-share", "--enterprise", "jj-shoes", "--year", 2025, "--as-of", as_of.isoformat())
    stored = stored_share(db_url, "jj-shoes", 2025)
    # 24 h × (200 kWh import + 100 kWh PV used on site): 100/300 = 33 % ≥ 30 %, every quarter hour measured
    assert rep["completeness"]["exact"] == "1/1" and rep["status"] == "qualifies"
    assert rep["energy_wh"]["consumption"] == 24 * 300_000
    assert_share_agrees(rep, stored)
