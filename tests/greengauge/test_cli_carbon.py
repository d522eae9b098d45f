"""`greengauge report carbon` against a real database: location- and market-based CO2, standard coal.

Issue 5: carbon (MEE factors, 生态环境部 国家统计局) and standard coal (GB/T 2589-2020).
"""

import json
from datetime import datetime
from decimal import Decimal

from typer.testing import CliRunner

from greengauge.cli import app
from tests.flows.test_policy_inputs import add_gas_point, add_ledger, grid_year
from tests.store.test_projects import CST, TWO_PROJECTS, apply, write_counter

runner = CliRunner()


def _site(conn, tmp_path, monkeypatch, db_url, year=2023):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    ids = apply(conn, tmp_path, TWO_PROJECTS)
    conn.commit()
    grid_year(conn, ids, year, 1_000_000_000)  # 1,000,000 kWh bought from the grid in the local year
    return ids


def _carbon(*args):
    r = runner.invoke(app, ["report", "carbon", "--enterprise", "e1", *args])
    assert r.exit_code == 0, r.output
    return r


def test_carbon_for_a_year_with_green_certificates(db_url, conn, monkeypatch, tmp_path):
    _site(conn, tmp_path, monkeypatch, db_url)
    gas = add_gas_point(conn)
    write_counter(conn, gas, [(datetime(2023, 1, 1, tzinfo=CST), 0.0), (datetime(2024, 1, 1, tzinfo=CST), 10_000.0)])
    conn.commit()
    add_ledger(conn)  # 2023: 100 MWh trade (its 100 bundled certificates not again) + 200 certificates alone
    out = json.loads(_carbon("--year", "2023", "--format", "json", "--equal-value", "0.3").output)
    # location-based: 1,000,000 kWh × 0.5306 (national 2023) = 530,600 kgCO2
    assert Decimal(out["location_based"]["co2_kg"]) == Decimal("530600")
    assert out["location_based"]["factor"]["year"] == 2023
    # market-based: (1,000,000 − 100,000 − 200,000) kWh × 0.6096 = 426,720 kgCO2
    mb = out["market_based"]
    assert Decimal(mb["co2_kg"]) == Decimal("426720")
    assert mb["covered_wh"] == 300_000_000 and mb["instruments"]["bundled_certificates"] == 100
    # GB/T 2589-2020: 1,000,000 kWh × 0.1229 + 10,000 m3 gas × 1.2143 = 122,900 + 12,143 kgce
    coal = out["standard_coal"]
    assert Decimal(coal["equivalent"]["total_kgce"]) == Decimal("135043")
    # equal value stated by the user: 1,000,000 × 0.3 + 12,143
    assert Decimal(coal["equal_value"]["total_kgce"]) == Decimal("312143")
    assert out["metering"]["natural_gas_m3"]["points"] == ["e1.main.gas"]


def test_carbon_without_ledger_and_factor_year(db_url, conn, monkeypatch, tmp_path):
    _site(conn, tmp_path, monkeypatch, db_url, year=2025)
    # 2025 has no published factor yet: by default the latest earlier one, said (as carbon_ytd stores it)
    out = json.loads(_carbon("--year", "2025", "--format", "json").output)
    assert (out["status"], out["location_based"]["factor"]["year"]) == ("factor_fallback", 2023)
    assert "location factor of 2023: none published for 2025, the latest earlier one taken" in out["note"]
    assert "none published for 2025" in " ".join(_carbon("--year", "2025").output.split())
    # --no-latest-available: the error names the known years and nothing is guessed
    r = runner.invoke(app, ["report", "carbon", "--enterprise", "e1", "--year", "2025", "--no-latest-available"])
    assert r.exit_code == 2 and "no location factor" in r.output and "national 2023" in r.output
    # the factor two years back (year − 2), as some accounting does
    out = json.loads(_carbon("--year", "2025", "--factor-year-offset", "-2", "--format", "json").output)
    assert out["location_based"]["factor"]["year"] == 2023 and out["factor_year_offset"] == -2
    # nothing in the certificate ledger: no green instruments
    gi = out["market_based"]["instruments"]
    assert (gi["green_trade_wh"], gi["certificates"]) == (0, 0)
    assert Decimal(out["market_based"]["co2_kg"]) == Decimal("609600")  # 1,000,000 × 0.6096
    r = _carbon("--year", "2025", "--factor-year-offset", "-2")
    assert "530.600 t" in r.output and "give --equal-value" in r.output


def test_carbon_errors(db_url, conn, monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    r = runner.invoke(app, ["report", "carbon", "--enterprise", "nobody", "--year", "2023"])
    assert r.exit_code == 2 and "no enterprise 'nobody'" in r.output
    apply(conn, tmp_path, TWO_PROJECTS.replace("role: grid_import", "role: null"))
    conn.commit()
    r = runner.invoke(app, ["report", "carbon", "--enterprise", "e1", "--year", "2023"])
    assert r.exit_code == 2 and "no point with role grid_import" in r.output
