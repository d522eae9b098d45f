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
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flows.eligibility import evaluate
from flows.metrics import enterprise_metrics
from flows.rollup import rollup
from greengauge.cli import app
from greengauge.demo import DEMO_SITE
from store.results import enterprises
from tests.flows.test_rollup import glitchy_counter
from tests.greengauge.test_cli_accounting import P, at, readings_csv

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
    h = report["hourly_matched"]  # the hourly-matched share (for information), stored beside it
    assert (stored["hourly_hours"], stored["hourly_consumption_wh"], stored["hourly_onsite_matched_wh"],
            stored["hourly_ledger_matched_wh"], stored["hourly_ledger_unmatched_wh"], stored["hourly_share_exact"]) == (
        (h["hours"], h["consumption_wh"], h["onsite_matched_wh"], h["ledger_matched_wh"], h["ledger_unmatched_wh"],
         (h["share"] or {}).get("exact")) if h else (None,) * 6)


def hand_checked_day(env, trade_mwh: str) -> None:
    """The hand-checked day of tests/greengauge/test_cli_accounting.py: a 32-bit wrap, a meter
    replacement recorded, an unexplained drop, and a green-power trade of ``trade_mwh``."""
    import_csv(env, readings_csv())
    r = runner.invoke(app, ["meter", "replace", "--point", P + "battery.energy_export", "--at",
                            "2025-01-01T01:05:00+08:00", "--old-final-wh", "11000", "--new-initial-wh", "0",
                            "--reason", "display failed"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ledger", "add", "trade", "--enterprise", "jj-shoes", "--reference", "T1",
                            "--settled-on", "2025-01-01", "--mwh", trade_mwh])
    assert r.exit_code == 0, r.output


def test_counters_ledger_and_30_percent_report_equals_stored(env, db_url):
    # the hand-checked case of tests/greengauge/test_cli_accounting.py: a 32-bit wrap, a recorded
    # replacement, an unexplained drop and a trade: exactly 30 % qualifies, on both sides
    hand_checked_day(env, "0.084")
    as_of = datetime.fromisoformat(AS_OF)
    run_flows(db_url, "jj-shoes", as_of, 2025)
    rep = cli("report", "green-share", "--enterprise", "jj-shoes", "--year", 2025, "--as-of", AS_OF)
    assert rep["status"] == "qualifies" and rep["energy_wh"]["consumption"] == 980_000  # hand-checked
    stored = stored_share(db_url, "jj-shoes", 2025)
    assert_share_agrees(rep, stored)
    assert stored["hourly_consumption_wh"] == 980_000 and stored["hourly_share_exact"]  # stored, not only shown
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


def test_one_wh_below_30_percent_prints_the_digits_that_decide_and_agrees_with_stored(env, db_url):
    # 9 §3i through the stored path: the hand-checked day above with a trade 1 Wh smaller, so green is
    # 293,999 of 980,000 Wh (29.99989... %): never shown as 30.000 %, one certificate (singular) to buy
    hand_checked_day(env, "0.083999")
    run_flows(db_url, "jj-shoes", datetime.fromisoformat(AS_OF), 2025)
    rep = cli("report", "green-share", "--enterprise", "jj-shoes", "--year", 2025, "--as-of", AS_OF)
    stored = stored_share(db_url, "jj-shoes", 2025)
    assert (rep["status"], rep["energy_wh"]["green"], rep["missing_wh"], rep["certificates_to_buy"]) == (
        "does_not_qualify", 293_999, 1, 1)
    assert_share_agrees(rep, stored)
    table = runner.invoke(app, ["report", "green-share", "--enterprise", "jj-shoes", "--year", "2025",
                                "--as-of", AS_OF])
    text = " ".join(table.output.split())
    assert table.exit_code == 0 and "29.999 %" in text and "30.000 %" not in text.replace("30.000 % threshold", "")
    assert "1 certificate " in text + " " and "1 certificates" not in text, text


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
    # report balance of the day decides as R1 does (it said "reaches" with no interval measured),
    # from the stored daily balance's counts
    bal = cli("report", "balance", "--enterprise", "jj-shoes", "--day", "2025-01-01")
    with psycopg.connect(db_url) as conn:
        day = conn.execute("SELECT measured_intervals FROM daily_balance WHERE day = '2025-01-01'").fetchone()
    assert (bal["status"], bal["measured_intervals"], bal["share"] is not None) == ("unknown", 0, True)
    assert day == (bal["measured_intervals"],)
    r = runner.invoke(app, ["report", "balance", "--enterprise", "jj-shoes", "--day", "2025-01-01"])
    assert r.exit_code == 0 and "unknown: the balance meters measured 0 of" in r.output, r.output
    assert "reaches" not in r.output

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
    # both with their defaults (the report took no fallback factor unless told, the flow did)
    rep = cli("report", "carbon", "--enterprise", "jj-shoes", "--year", 2025)
    with psycopg.connect(db_url) as conn:
        cur = conn.execute("SELECT * FROM carbon_ytd WHERE year = 2025")
        row = dict(zip([d.name for d in cur.description], cur.fetchone()))
    assert row["grid_import_wh"] == rep["grid_import_wh"] == 800_000
    assert str(row["location_co2_kg"]) == rep["location_based"]["co2_kg"] if row["location_co2_kg"] is not None \
        else rep["location_based"]["co2_kg"] is None
    assert str(row["coal_equivalent_kgce"]) == rep["standard_coal"]["equivalent"]["total_kgce"]


def awards_report_equals_stored(db_url: str, code: str, year: int, as_of: datetime) -> tuple[dict, dict]:
    """Run the flows and the eligibility evaluation of ``year``; assert `report awards` shows the
    decisions eligibility_current holds, status and yuan; return the report and what it shows."""
    e, _ = run_flows(db_url, code, as_of, year)
    evaluate(db_url, e, year, as_of)
    rep = cli("report", "awards", "--enterprise", code, "--year", year)
    with psycopg.connect(db_url) as c:
        stored = {(d, cl, r, s): (st, None if a is None else f"{a:.2f}") for d, cl, r, s, st, a in c.execute(
            """SELECT document, clause, rule, subject, status, amount FROM eligibility_current
               WHERE year = %s AND enterprise_id = %s""", (year, e.enterprise_id))}
    shown = {(x["document"], x["clause"], x["rule"], x["subject"]): (x["status"], x["amount"])
             for x in rep["candidates"]}
    assert shown == stored
    return rep, shown


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
    rep, shown = awards_report_equals_stored(db_url, "e1", 2024, as_of)
    roof_b = [v for k, v in shown.items() if k[0] == "晋政规〔2024〕2号" and k[3] == "project roof-b"]
    assert roof_b == [("qualifies", "34000.00")]  # its storage verified by its own telemetry


def test_two_retrofits_in_one_year_are_both_paid_report_equals_stored(env, db_url):
    # 9 §3h through the stored path: 就高不重复 applies between overlapping measures or documents for
    # the same thing, not between two projects under one measure — both retrofits are paid, in the
    # decisions the eligibility flow stores as in `report awards`
    facts = env / "facts.csv"
    facts.write_text("enterprise,record,kind,date,level,reference\n"
                     "jj-shoes,fact,energy_saving_retrofit,2024-06-01,provincial,R-1\n"
                     "jj-shoes,fact,energy_saving_retrofit,2024-09-01,provincial,R-2\n", encoding="utf-8")
    r = runner.invoke(app, ["facts", "import", str(facts)])
    assert r.exit_code == 0 and "2 facts and 0 PV projects recorded" in r.output, r.output
    as_of = datetime(2025, 3, 1, tzinfo=timezone.utc)  # 2024 closed
    rep, _ = awards_report_equals_stored(db_url, "jj-shoes", 2024, as_of)
    retrofits = [x for x in rep["candidates"] if x["rule"] == "energy-saving-retrofit" and x["chosen"]]
    assert len(retrofits) == 2 and len({x["subject"] for x in retrofits}) == 2, rep["candidates"]
    assert all(x["status"] == "qualifies" and x["amount"] for x in retrofits), retrofits


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


def test_the_evidence_states_each_points_expected_interval_in_the_report_as_in_the_stored_decision(
        env, db_url, tmp_path):
    # a day of hourly history in two files (the second starting an hour after the first ends), both
    # imported with --resolution 1h: every quarter hour is measured, hour between the files included,
    # and each point's evidence states what it was judged by — the device's poll interval (60 s,
    # at least 15 min: 900) and the joined import range — in the report and in the R1 decision the
    # eligibility flow stored alike
    t0 = datetime.fromisoformat("2025-01-01T00:00:00+08:00")
    names = ("grid.energy_import", "pv.energy_export", "grid.energy_export", "battery.energy_import",
             "battery.energy_export")
    per_hour = {"grid.energy_import": 200, "pv.energy_export": 100}
    for name, hours in (("first.csv", range(12)), ("second.csv", range(12, 25))):
        f = tmp_path / name
        f.write_text("point,ts,value\n" + "".join(f"{P}{n},{(t0 + timedelta(hours=h)).isoformat()},{per_hour.get(n, 0) * h}\n"
                                                  for h in hours for n in names))
        r = runner.invoke(app, ["import", "readings", str(f), "--unit", "kWh", "--resolution", "1h"])
        assert r.exit_code == 0, r.output
    as_of = t0 + timedelta(days=1)
    e, _ = run_flows(db_url, "jj-shoes", as_of, 2025)
    evaluate(db_url, e, 2025, as_of)
    rep = cli("report", "green-share", "--enterprise", "jj-shoes", "--year", 2025, "--as-of", as_of.isoformat())
    assert rep["completeness"]["exact"] == "1/1" and rep["status"] == "qualifies"
    assert_share_agrees(rep, stored_share(db_url, "jj-shoes", 2025))
    points = {x["name"]: x for x in rep["evidence"]["points"]}
    for n in names:
        assert points[P + n]["expected_interval_s"] == 900
        assert points[P + n]["import_resolutions"] == [
            {"since": t0.astimezone(timezone.utc).isoformat(),
             "until": (t0 + timedelta(hours=24)).astimezone(timezone.utc).isoformat(), "interval_s": 3600}]
    assert points[P + "battery.energy_import"]["measured_intervals"] == 96
    with psycopg.connect(db_url) as c:
        stored = [ev["inputs"]["green_share"]["evidence"]["points"] for (ev,) in c.execute(
            "SELECT evidence FROM eligibility_current WHERE year = 2025 AND evidence->>'kind' = 'green_share'")]
    assert stored and all(x == rep["evidence"]["points"] for x in stored)


def test_one_zero_glitch_is_one_suspect_reading_and_no_energy(env, db_url):
    # 9 §3d (collectors, counters): a day of 5-minute polls through the collector's quality gate,
    # one grid-import reading of which is 0. The gate follows the confirmed counter: the zero is
    # the one SUSPECT reading (not the meter's next 286 of 288). The rollup skips it as an outlier: the
    # day's import is 700 Wh per poll to the Wh, and nothing else is flagged — in the report as in
    # the stored result.
    from collectors.run import QualityGate
    from model.readings import Quality, Reading
    from model.site import load_site
    from store.ingest import write_readings

    day0 = datetime.fromisoformat("2025-06-21T00:00:00+08:00")
    with psycopg.connect(db_url) as conn:
        ids = dict(conn.execute("SELECT name, point_id FROM point").fetchall())

    class AfterTheDay:  # the gate's clock: every reading is in the past
        def now(self):
            return day0 + timedelta(days=1, minutes=5)

    gate = QualityGate(load_site(str(DEMO_SITE)), ids, AfterTheDay())
    grid = [5_000_000.0 + 700 * i for i in range(289)]  # 8.4 kW against the 2 MW rating
    grid[100] = 0.0  # 08:20 local
    polls = [[Reading(ids[P + "grid.energy_import"], day0 + timedelta(minutes=5 * i), v),
              Reading(ids[P + "grid.energy_export"], day0 + timedelta(minutes=5 * i), 0.0),
              Reading(ids[P + "pv.energy_export"], day0 + timedelta(minutes=5 * i), 1_000.0 + 100 * i),
              Reading(ids[P + "battery.energy_import"], day0 + timedelta(minutes=5 * i), 0.0),
              Reading(ids[P + "battery.energy_export"], day0 + timedelta(minutes=5 * i), 0.0)]
             for i, v in enumerate(grid)]
    with psycopg.connect(db_url) as conn:
        # judged one poll at a time, as the collector does; written in one batch, as its writer does
        write_readings(conn, [r for poll in polls for r in gate.check(poll)])
        flagged = conn.execute("SELECT p.name, r.ts, r.value FROM reading r JOIN point p USING (point_id) "
                               "WHERE r.quality <> %s", (int(Quality.GOOD),)).fetchall()
    assert flagged == [(P + "grid.energy_import", day0 + timedelta(minutes=500), 0.0)]  # the glitch only

    run_flows(db_url, "jj-shoes", day0 + timedelta(days=1, hours=1), 2025)
    bal = cli("report", "balance", "--enterprise", "jj-shoes", "--day", "2025-06-21")
    with psycopg.connect(db_url) as c:
        cur = c.execute("SELECT * FROM daily_balance WHERE day = '2025-06-21'")
        row = dict(zip([d.name for d in cur.description], cur.fetchone()))
        stored_suspect = c.execute(
            """SELECT p.name, sum(d.suspect_intervals) FROM energy_daily d JOIN point p USING (point_id)
               WHERE d.day = '2025-06-21' GROUP BY p.name""").fetchall()
        findings = c.execute("""SELECT p.name, f.kind, f.opened_at FROM finding f JOIN point p USING (point_id)
                                WHERE f.origin = 'rollup' ORDER BY f.opened_at""").fetchall()
    e = bal["energy_wh"]
    assert (row["import_wh"], row["pv_wh"], row["consumption_wh"], row["green_wh"], row["measured_intervals"]) == (
        e["import"], e["pv"], e["consumption"], e["green"], bal["measured_intervals"])
    assert e["import"] == 288 * 700 and e["pv"] == 288 * 100 and e["consumption"] == 288 * 800
    assert bal["measured_intervals"] == 96 and bal["completeness"]["exact"] == "1/1"
    # flagged: one outlier finding at the glitch, stored and reported; no interval suspect
    glitch = day0 + timedelta(minutes=500)
    assert findings == [(P + "grid.energy_import", "counter_outlier", glitch)]
    assert [(f["point"], f["kind"], datetime.fromisoformat(f["ts"])) for f in bal["evidence"]["findings"]] == [
        (P + "grid.energy_import", "counter_outlier", glitch)]
    suspect = {x["name"]: x["suspect_intervals"] for x in bal["evidence"]["points"]}
    assert sorted(suspect.items()) == sorted(stored_suspect) and not any(suspect.values())


def rows_csv(rows) -> str:
    return "point,ts,value\n" + "".join(f"{p},{t.isoformat()},{v}\n" for p, t, v in rows)


def day_row(url: str, day: str) -> dict:
    with psycopg.connect(url) as c:
        cur = c.execute("SELECT * FROM daily_balance WHERE day = %s", (day,))
        row = cur.fetchone()
        assert row is not None, f"the metrics flow stored no balance for {day}"
        return dict(zip([d.name for d in cur.description], row))


BALANCE_FIELDS = ("import", "export", "pv", "charge", "discharge", "consumption", "pv_self_consumed", "green")


def assert_day_agrees(bal: dict, row: dict) -> None:
    """report balance --day --format json == daily_balance of that day, field by field."""
    assert {k: row[k + "_wh"] for k in BALANCE_FIELDS} == bal["energy_wh"]
    assert (row["intervals"], row["estimated_intervals"], row["measured_intervals"]) == (
        bal["intervals"], bal["estimated_intervals"], bal["measured_intervals"])


def test_glitches_at_the_edges_are_judged_like_any_other_in_the_report_as_in_the_stored_result(env, db_url):
    # 9 §3b (counters, rollup): readings every 5 minutes, 2:30 off the quarter hours, whose newest
    # one (2025-06-21 23:57:30 local) is a glitch on two meters: the grid import reads 0 (a drop),
    # the PV 4e9 Wh (a rise far beyond its 1.3 MW rating). Neither is energy yet: both wait for the
    # next reading. The next day's readings arrive: the glitch is now the reading just before that
    # day (the counter at midnight is interpolated across it), judged by the readings on both sides
    # (an outlier), and a rollup of the next day alone (a backfill's) judges it the same. Report =
    # stored each time.
    day0 = datetime.fromisoformat("2025-06-21T00:00:00+08:00")
    t = lambda i: day0 + timedelta(seconds=300 * i - 150)  # noqa: E731  i = 0: 2025-06-20 23:57:30
    grid = lambda i: 0.0 if i == 288 else 5_000_000.0 + 700 * i  # noqa: E731  8.4 kW
    pv = lambda i: 4e9 if i == 288 else 1_000.0 + 100 * i  # noqa: E731  1.2 kW

    def rows(i0, i1):
        out = []
        for i in range(i0, i1):
            out += [(P + "grid.energy_import", t(i), grid(i)), (P + "grid.energy_export", t(i), 0),
                    (P + "pv.energy_export", t(i), pv(i)), (P + "battery.energy_import", t(i), 0),
                    (P + "battery.energy_export", t(i), 0)]
        return rows_csv(out)

    import_csv(env, rows(0, 289))  # .. 2025-06-21 23:57:30 local, the glitches newest
    run_flows(db_url, "jj-shoes", day0 + timedelta(days=1), 2025)
    bal = cli("report", "balance", "--enterprise", "jj-shoes", "--day", "2025-06-21")
    assert_day_agrees(bal, day_row(db_url, "2025-06-21"))
    # hand-checked: from the counter at midnight (half-way between the first two readings) to the
    # last reading used, 23:52:30, where the counter is held: 286.5 steps of 5 minutes
    assert (bal["energy_wh"]["import"], bal["energy_wh"]["pv"]) == (286 * 700 + 350, 286 * 100 + 50)
    kinds = {(f["point"], f["kind"]) for f in bal["evidence"]["findings"]}
    assert kinds == {(P + "grid.energy_import", "counter_drop_provisional"),
                     (P + "pv.energy_export", "counter_rise_provisional")}

    import_csv(env, rows(289, 578))  # .. 2025-06-23 00:02:30
    run_flows(db_url, "jj-shoes", day0 + timedelta(days=2, hours=1), 2025)
    days = {}
    for day in ("2025-06-21", "2025-06-22"):
        days[day] = cli("report", "balance", "--enterprise", "jj-shoes", "--day", day)
        assert_day_agrees(days[day], day_row(db_url, day))
        e = days[day]["energy_wh"]
        assert (e["import"], e["pv"], e["consumption"]) == (288 * 700, 288 * 100, 288 * 800)
        assert days[day]["measured_intervals"] == 96
    glitch = t(288)
    assert sorted((f["point"], f["kind"], datetime.fromisoformat(f["ts"]))
                  for f in days["2025-06-21"]["evidence"]["findings"]) == [
        (P + "grid.energy_import", "counter_outlier", glitch), (P + "pv.energy_export", "counter_outlier", glitch)]
    assert days["2025-06-22"]["evidence"]["findings"] == []

    # the rollup of 2025-06-22 alone (a backfill's): the glitch just before it is judged as in the
    # whole run: nothing changes (taken as the range's first knot, the zero would put 2.6 MWh into
    # the quarter hour from midnight: the counter interpolated from 0 at 23:57:30)
    day2 = (day0 + timedelta(days=1), day0 + timedelta(days=2))
    assert not rollup(db_url, enterprise="jj-shoes", start=day2[0], end=day2[1]).changed
    again = cli("report", "balance", "--enterprise", "jj-shoes", "--day", "2025-06-22")
    assert again["energy_wh"] == days["2025-06-22"]["energy_wh"]
    assert_day_agrees(again, day_row(db_url, "2025-06-22"))


def _clear_readings_and_results(db_url: str) -> None:
    """Empty what one example of a property wrote: readings, the rollup and the metrics flow's
    results (the site stays)."""
    from tests.flows.test_rollup import clear_rollups

    with psycopg.connect(db_url) as c:
        clear_rollups(c, readings=True)
        c.execute("""TRUNCATE rollup_dirty, daily_balance, green_share_ytd, green_share_projection, carbon_ytd,
                     intensity_ytd, metrics_watermark, metrics_prefix""")
        c.execute("DELETE FROM finding WHERE origin = 'rollup'")


def _rollup_state(db_url: str):
    with psycopg.connect(db_url) as c:
        return (c.execute("SELECT point_id, bucket_start, energy_wh, estimated, suspect FROM interval_energy "
                          "ORDER BY 1, 2").fetchall(),
                c.execute("SELECT point_id, kind, opened_at, data FROM finding WHERE origin = 'rollup' "
                          "ORDER BY 1, 3, 2").fetchall())


@settings(max_examples=int(__import__("os").environ.get("GG_EXAMPLES", 3)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: minutes per step here
@given(series=glitchy_counter(), where=st.integers(min_value=0, max_value=10**6), off=st.sampled_from([0, 150]),
       arrival=st.integers(min_value=0, max_value=10**6))
def test_any_split_of_a_period_sums_to_the_whole_in_the_report_as_in_the_stored_result(
        env, db_url, series, where, off, arrival):
    # Property (docs/accounting.md "Edges"), on the stored path: readings with glitches and resets
    # (tests.flows.test_rollup.glitchy_counter) written to `reading` around a local midnight put at
    # any of them (or 2:30 min before it), arriving in two parts split at any reading, with the
    # scheduled (incremental) rollup between them; then the flows. The two days' `report balance --day` are the stored
    # daily_balance rows and add up to `report balance --month`, which is the stored hourly sums;
    # and the stored intervals and counter findings are those of one rollup of everything.
    from model.readings import Reading
    from store.ingest import write_readings

    _clear_readings_and_results(db_url)
    with psycopg.connect(db_url) as c:
        (pid,) = c.execute("SELECT point_id FROM point WHERE name = %s", (P + "grid.energy_import",)).fetchone()
    midnight = datetime.fromisoformat("2025-06-22T00:00:00+08:00")
    t0 = midnight - timedelta(minutes=series[where % len(series)][0], seconds=-off)  # midnight at any reading
    readings = [Reading(pid, t0 + timedelta(minutes=m), v) for m, v in series]
    k = 1 + arrival % (len(readings) - 1)
    with psycopg.connect(db_url) as c:
        write_readings(c, readings[:k])
    rollup(db_url, enterprise="jj-shoes")  # the scheduled rollup takes in what has arrived
    with psycopg.connect(db_url) as c:
        write_readings(c, readings[k:])
    run_flows(db_url, "jj-shoes", readings[-1].ts + timedelta(hours=1), 2025)

    days = [cli("report", "balance", "--enterprise", "jj-shoes", "--day", d) for d in ("2025-06-21", "2025-06-22")]
    month = cli("report", "balance", "--enterprise", "jj-shoes", "--month", "2025-06")
    with psycopg.connect(db_url) as c:
        for bal, d in zip(days, ("2025-06-21", "2025-06-22")):
            cur = c.execute("SELECT * FROM daily_balance WHERE day = %s", (d,))
            row = cur.fetchone()
            if row is None:  # a day without an interval: nothing to store, nothing reported
                assert bal["intervals"] == 0 and not any(bal["energy_wh"].values())
            else:
                assert_day_agrees(bal, dict(zip([x.name for x in cur.description], row)))
        (hourly,) = c.execute("SELECT coalesce(sum(energy_wh), 0) FROM energy_hourly WHERE point_id = %s",
                              (pid,)).fetchone()
    # the parts sum to the whole (battery idle: every balance figure adds up across midnight)
    for f in BALANCE_FIELDS:
        assert days[0]["energy_wh"][f] + days[1]["energy_wh"][f] == month["energy_wh"][f], f
    for f in ("intervals", "estimated_intervals", "measured_intervals"):
        assert days[0][f] + days[1][f] == month[f], f
    # the counter findings too; one at midnight itself is in both days' evidence (the reading there
    # bounds the last quarter hour of the one and the first of the other)
    seen = lambda bal: [(f["point"], f["kind"], f["ts"]) for f in bal["evidence"]["findings"]]  # noqa: E731
    assert sorted(set(seen(days[0]) + seen(days[1]))) == sorted(seen(month))
    assert {x for x in seen(days[0]) if x in seen(days[1])} <= {
        x for x in seen(month) if datetime.fromisoformat(x[2]) == midnight}
    assert month["energy_wh"]["import"] == hourly

    # the two arrivals with a rollup between them = one rollup of everything
    split = _rollup_state(db_url)
    from tests.flows.test_rollup import clear_rollups

    with psycopg.connect(db_url) as c:
        clear_rollups(c)
        c.execute("DELETE FROM finding WHERE origin = 'rollup'")
    rollup(db_url, enterprise="jj-shoes")
    assert _rollup_state(db_url) == split


def test_a_late_glitch_re_evaluates_the_decisions_whose_evidence_lists_it(env, db_url):
    # The last two hours of 2024 (local), read every 5 minutes. A gateway's backlog later brings one
    # more reading, a 0 between two of them: an isolated outlier, not used. Not one interval of 2024
    # changes (the counter is interpolated across it as before); the findings of 2024 gain one.
    ye = datetime.fromisoformat("2025-01-01T00:00:00+08:00")
    t = lambda i: ye + timedelta(minutes=5 * (i - 24))  # noqa: E731  i = 24: the year's end
    import_csv(env, rows_csv([(P + "grid.energy_import", t(i), 1_000_000 + 700 * i) for i in range(31)]))
    as_of = datetime(2025, 3, 1, tzinfo=timezone.utc)  # 2024 is closed
    e, _ = run_flows(db_url, "jj-shoes", as_of, 2024)
    assert evaluate(db_url, e, 2024, as_of)  # the first versions
    with psycopg.connect(db_url) as c:
        year_rows = lambda: c.execute(  # noqa: E731
            "SELECT point_id, bucket_start, energy_wh, estimated, suspect, computed_at FROM interval_energy "
            "WHERE bucket_start < %s ORDER BY 1, 2", (ye,)).fetchall()
        before = year_rows()
        c.commit()
        glitch = t(12) + timedelta(seconds=150)  # 2024-12-31 23:02:30 local
        import_csv(env, rows_csv([(P + "grid.energy_import", glitch, 0)]))
        rollup(db_url, enterprise="jj-shoes")
        assert year_rows() == before  # not one interval of 2024 moved
        kinds = [k for (k,) in c.execute("SELECT kind FROM finding WHERE origin = 'rollup' AND opened_at = %s",
                                         (glitch,))]
    assert kinds == ["counter_outlier"]
    # the premise: the policy engine, run now, gives R1 evidence other than the stored version's
    from flows.eligibility import period_of, policy_candidates
    from store.results import current_decisions, evidence_hash

    with psycopg.connect(db_url) as c:
        stored = current_decisions(c, e.enterprise_id, 2024)
        fresh = policy_candidates(c, e, 2024, *period_of(e, 2024, as_of))
        c.rollback()
    changed = {x["rule"] for x in fresh if evidence_hash(x["evidence"]) != stored[
        (x["document"], x["clause"], x["rule"], x.get("subject") or "")].evidence_hash}
    assert "green-share-priority" in changed
    assert evaluate(db_url, e, 2024, as_of), "skipped: the stored decisions do not list the glitch"
