"""The accounting commands against a real database: readings import, ledger, meter replacement,
and the green-share report with its evidence (issue 4, rule R1)."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from greengauge import __version__
from greengauge.cli import app
from greengauge.demo import DEMO_SITE

runner = CliRunner()
P = "jj-shoes.main."
MIDNIGHT = datetime(2024, 12, 31, 16, 0, tzinfo=timezone.utc)  # 2025-01-01 00:00 Asia/Shanghai
W32 = 2**32


def at(k):
    """The k-th quarter hour after Shanghai midnight on 2025-01-01 (k = -1 is 2024-12-31 23:45)."""
    return MIDNIGHT + timedelta(minutes=15 * k)


def counter(start, per_interval):
    """Readings at k = -1 .. 8 of a counter adding per_interval[k] in the interval starting at k."""
    vals = [start]
    for e in per_interval:
        vals.append(vals[-1] + e)
    return vals


def readings_csv():
    """Two hours after Shanghai midnight, with a 32-bit wrap, an unexplained drop and a replacement.

    Per interval k = 0..7 (and k = -1, the last quarter hour of 2024):
    grid import 100 kWh; PV 30 kWh; battery charge 60 kWh in k = 0, 1 (half PV, half grid);
    battery discharge 30 kWh in k = 4, 5; no export.
    """
    rows = []
    # grid import wraps at 2**32 Wh (generic-3ph-meter: counter_rollover_bits 32, scale 1 Wh)
    grid = counter(W32 - 350_000, [100_000] * 9)
    rows += [(P + "grid.energy_import", at(k - 1), v % W32) for k, v in enumerate(grid)]
    # export stays at 5 000 Wh, then the counter falls to 0 with no replacement recorded
    rows += [(P + "grid.energy_export", at(k - 1), 5_000 if k < 6 else 0) for k in range(10)]
    rows += [(P + "pv.energy_export", at(k - 1), v) for k, v in enumerate(counter(7_000, [30_000] * 9))]
    charge = counter(0, [0, 60_000, 60_000] + [0] * 6)
    rows += [(P + "battery.energy_import", at(k - 1), v) for k, v in enumerate(charge)]
    # discharge: the meter is replaced at 17:05Z (old final 11 000, new initial 0); readings after
    # the swap come from the new meter
    dis = [1_000] * 6 + [20_000, 50_000, 50_000, 50_000]
    rows += [(P + "battery.energy_export", at(k - 1), v) for k, v in enumerate(dis)]
    return "point,ts,value\n" + "".join(f"{p},{t.isoformat()},{v}\n" for p, t, v in rows)


@pytest.fixture
def env(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    r = runner.invoke(app, ["site", "apply", str(DEMO_SITE)])
    assert r.exit_code == 0, r.output
    return tmp_path


def invoke(*args):
    r = runner.invoke(app, [str(a) for a in args])
    return r


def report(year, as_of="2025-01-01T02:00:00+08:00", *extra):
    r = invoke("report", "green-share", "--enterprise", "jj-shoes", "--year", year, "--as-of", as_of,
               "--format", "json", *extra)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_green_share_end_to_end_exactly_30_percent(env):
    f = env / "readings.csv"
    f.write_text(readings_csv())
    r = invoke("import", "readings", f, "--unit", "Wh")
    assert r.exit_code == 0, r.output
    assert "readings.csv: 50 rows read, 50 new, 0 already stored" in r.output
    r = invoke("meter", "replace", "--point", P + "battery.energy_export", "--at", "2025-01-01T01:05:00+08:00",
               "--old-final-wh", 11_000, "--new-initial-wh", 0, "--reason", "display failed")
    assert r.exit_code == 0, r.output
    r = invoke("ledger", "add", "trade", "--enterprise", "jj-shoes", "--reference", "FJ-GT-2025-0001",
               "--settled-on", "2025-01-01", "--mwh", "0.084")
    assert r.exit_code == 0, r.output

    d = report(2025)
    e = d["energy_wh"]
    # balance: consumption = import 800 + PV 240 + discharge 60 - charge 120 = 980 kWh
    assert e["consumption"] == 980_000
    # battery charged half from grid: of the 60 kWh discharged, 30 kWh is green (R1);
    # PV used at once 6 x 30 kWh = 180 kWh; on-site green 210 kWh
    assert e["onsite_green"] == 210_000
    # + 84 kWh green-power trade settled in the period = 294 kWh = exactly 30.000 % (R1, inclusive
    # per Civil Code Art. 1259)
    assert (e["trade"], e["green"]) == (84_000, 294_000)
    assert d["share"]["exact"] == "3/10" and d["status"] == "qualifies"
    assert d["missing_wh"] == 0 and d["certificates_to_buy"] == 0
    ev = d["evidence"]
    kinds = sorted(f["kind"] for f in ev["findings"])
    # 32-bit rollover, recorded replacement, unexplained drop (issue 4 "Counters to energy")
    assert kinds == ["counter_drop_unexplained", "counter_rollover", "meter_replacement"]
    assert ev["intervals"] == {"expected": 40, "measured": 40, "estimated": 0, "missing": 0, "suspect": 0}
    assert d["completeness"]["exact"] == "1/1"
    assert ev["code_version"] == __version__ and len(ev["inputs_sha256"]) == 64
    assert ev["ledger_entries"] == ["trade FJ-GT-2025-0001 settled 2025-01-01 0.084 MWh (counted)"]
    assert ev["period_start"] == "2024-12-31T16:00:00+00:00" and ev["period_end"] == "2024-12-31T18:00:00+00:00"
    assert d["projection"]["elapsed"]["exact"] == "1/4380"
    assert d["hourly_matched"]["consumption_wh"] == 980_000

    # importing the same data twice changes nothing: same figures, same digest
    r = invoke("import", "readings", f, "--unit", "Wh")
    assert "50 rows read, 0 new, 50 already stored" in r.output
    assert report(2025) == d

    # the table view says the same
    r = invoke("report", "green-share", "--enterprise", "jj-shoes", "--year", 2025,
               "--as-of", "2025-01-01T02:00:00+08:00")
    assert r.exit_code == 0, r.output
    assert "30.000 %" in r.output and "qualifies" in r.output and "finding counter_rollover" in r.output


def test_year_boundary_is_shanghai_midnight(env):
    # a reading at 2024-12-31T16:30Z belongs to 2025 (00:30 in Shanghai); the quarter hour
    # 2024-12-31T15:45Z-16:00Z is the last of 2024
    f = env / "readings.csv"
    f.write_text(readings_csv())
    assert invoke("import", "readings", f, "--unit", "Wh").exit_code == 0
    y2025 = report(2025)
    y2024 = report(2024, "2025-06-01T00:00:00+08:00")
    grid = lambda d: next(p for p in d["evidence"]["points"] if p["name"] == P + "grid.energy_import")  # noqa: E731
    assert grid(y2025)["energy_wh"] == 800_000
    assert grid(y2024)["energy_wh"] == 100_000
    assert y2024["evidence"]["period_end"] == "2024-12-31T16:00:00+00:00"
    # 2024 has one measured quarter hour of the year: far below 95 % complete, so unknown
    assert y2024["status"] == "unknown" and y2024["projection"] is None


def test_exclude_suspect_is_visible_in_the_result(env):
    f = env / "r.csv"
    # the PV meter (rated 1.3 MW in the demo site) jumps 1 MWh in one quarter hour: a spike
    f.write_text("point,ts,value\n" + "".join(
        f"{P}pv.energy_export,{at(k - 1).isoformat()},{v}\n"
        for k, v in enumerate(counter(0, [1_000, 1_000_000] + [1_000] * 7))))
    assert invoke("import", "readings", f, "--unit", "Wh").exit_code == 0
    counted = report(2025)
    capped = report(2025, "2025-01-01T02:00:00+08:00", "--exclude-suspect")
    assert counted["count_suspect"] is True and capped["count_suspect"] is False
    pv = lambda d: next(p for p in d["evidence"]["points"] if p["name"] == P + "pv.energy_export")  # noqa: E731
    # excluded: the spike's quarter hour is capped at 1.3 MW × 0.25 h = 325,000 Wh, plus 7 × 1,000 Wh
    assert pv(counted)["energy_wh"] == 1_007_000 and pv(capped)["energy_wh"] == 332_000
    assert pv(counted)["suspect_intervals"] == 1
    assert [x["kind"] for x in counted["evidence"]["findings"] if x["point"].endswith("pv.energy_export")] == ["spike"]


@pytest.mark.parametrize("body, message", [
    ("point,ts,value\njj-shoes.main.grid.energy_import,2025-01-01T00:00:00+08:00,1\nnope,2025-01-01T00:00:00+08:00,1\n",
     "r.csv line 3: field 'point': no point 'nope'"),
    ("point,ts,value\njj-shoes.main.grid.energy_import,2025-01-01T00:00:00,1\n",
     "r.csv line 2: field 'ts': '2025-01-01T00:00:00' has no UTC offset"),
    ("point,ts,value\njj-shoes.main.grid.energy_import,2025-01-01T00:00:00+08:00,abc\n",
     "r.csv line 2: field 'value': 'abc' is not a number"),
    ("point,time,value\n", "r.csv line 1: missing column(s) ts"),
])
def test_readings_import_errors_name_line_and_field_and_write_nothing(env, db_url, body, message):
    import psycopg

    f = env / "r.csv"
    f.write_text(body)
    r = invoke("import", "readings", f, "--unit", "Wh")
    assert r.exit_code == 2
    assert message in r.output
    with psycopg.connect(db_url) as c:
        assert c.execute("SELECT count(*) FROM reading").fetchone()[0] == 0


def test_ledger_commands_and_a_certificate_used_twice(env):
    f = env / "ledger.csv"
    f.write_text("kind,enterprise,reference,date,mwh,serial_first,serial_last,production_month,trade\n"
                 "trade,jj-shoes,T1,2025-03-31,2,,,,\n"
                 "gec,jj-shoes,,2025-03-31,,GEC0001,GEC0002,2025-02,T1\n")
    r = invoke("ledger", "import", f)
    assert r.exit_code == 0 and "2 ledger entries added" in r.output, r.output
    # the same serial again, on its own: refused, naming where it was used (R1: once, ever)
    r = invoke("ledger", "add", "gec", "--enterprise", "jj-shoes", "--serial", "GEC0002", "--production-month",
               "2025-02", "--retired-on", "2025-04-01")
    assert r.exit_code == 2
    assert "certificate GEC0002 rejected: a serial counts once, ever: GEC0001..GEC0002 already used by jj-shoes on " \
           "2025-03-31 with trade T1" in r.output
    r = invoke("ledger", "add", "gec", "--enterprise", "jj-shoes", "--serial", "GEC0003", "--to", "GEC0005",
               "--production-month", "2023-01", "--retired-on", "2025-04-01")
    assert r.exit_code == 2 and "outside its validity" in r.output
    r = invoke("ledger", "add", "gec", "--enterprise", "jj-shoes", "--serial", "GEC0003", "--to", "GEC0005",
               "--production-month", "2025-01", "--retired-on", "2025-04-01")
    assert r.exit_code == 0 and "GEC GEC0003..GEC0005: 3 MWh retired on 2025-04-01" in r.output


def test_meter_replace_refuses_impossible_figures_lists_and_revokes(env):
    f = env / "readings.csv"
    f.write_text(readings_csv())
    assert invoke("import", "readings", f, "--unit", "Wh").exit_code == 0
    # the discharge meter read 1 000 Wh at 17:00Z: a final reading of 500 Wh five minutes later is impossible
    args = ["meter", "replace", "--point", P + "battery.energy_export", "--at", "2025-01-01T01:05:00+08:00",
            "--old-final-wh", 500, "--new-initial-wh", 0, "--reason", "display failed"]
    r = invoke(*args)
    assert r.exit_code == 2 and "old meter's final reading 500 Wh is below its reading 1000 Wh" in r.output
    assert "--force" in r.output
    r = invoke(*args, "--force")
    assert r.exit_code == 0, r.output
    r = invoke("meter", "list", "--enterprise", "jj-shoes")
    assert r.exit_code == 0 and "forced" in r.output and "display failed" in r.output
    assert "[forced]" in r.output
    rid = r.output.split()[0]
    r = invoke("meter", "revoke", rid, "--reason", "wrong final reading")
    assert r.exit_code == 0, r.output
    assert "revoked" in r.output and "greengauge flows backfill jj-shoes --from 2025-01-01" in r.output
    r = invoke("meter", "list", "--point", P + "battery.energy_export")
    assert "revoked" in r.output and "wrong final reading" in r.output
    r = invoke("meter", "revoke", rid, "--reason", "again")
    assert r.exit_code == 2 and "already revoked" in r.output


def test_import_readings_with_unit_resolution_and_enterprise(env):
    # hourly history in kWh, stated as such: stored in Wh, the resolution kept for the file's range
    f = env / "hourly.csv"
    f.write_text("point,ts,value\n" + "".join(
        f"{P}grid.energy_import,{(MIDNIGHT + timedelta(hours=h)).isoformat()},{36 * h}\n" for h in range(4)))
    r = invoke("import", "readings", f, "--unit", "kWh", "--resolution", "1h", "--enterprise", "jj-shoes")
    assert r.exit_code == 0, r.output
    assert "hourly.csv: 4 rows read, 4 new, 0 already stored" in r.output
    r = invoke("import", "readings", f, "--unit", "kWh", "--resolution", "hourly")
    assert r.exit_code == 2 and "--resolution: resolution 'hourly' is not a duration" in r.output
    r = invoke("import", "readings", f)
    assert r.exit_code == 2 and "say the values' unit" in r.output
