"""The metrics flow's carbon_ytd row: carbon_year for the year to date, in the same transaction as
the other results; a rerun changes nothing; the ledger moves the market-based figure; a year
without a factor stores the reason, not a number. Real PostgreSQL, the simulated day."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from flows.metrics import CarbonOptions, enterprise_metrics
from accounting.policy_inputs import carbon_year
from flows.rollup import rollup
from metrics.ledger import serial_range
from store.ledger import CertificateEntry, add_entries
from store.results import CARBON_COLUMNS, enterprises

# the packaged factors end with 2023; the simulated day is in 2025
EXACT = CarbonOptions(factor_year_offset=-2)


def carbon_rows(conn) -> list[dict]:
    cur = conn.execute(f"SELECT year, {', '.join(CARBON_COLUMNS)}, computed_at FROM carbon_ytd ORDER BY year")
    names = [d.name for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    conn.commit()  # end the read transaction: the next run's writes are seen
    return rows


def certificate(serial: int, used_on: date) -> CertificateEntry:
    return CertificateEntry("jj-shoes", *serial_range(f"GEC{serial:010d}"), date(2025, 5, 1), used_on)


@pytest.fixture
def run(conn, db_url, sim_day):
    rollup(db_url)
    (e,) = enterprises(conn)
    as_of = sim_day.end + timedelta(minutes=30)
    return lambda opts=EXACT: enterprise_metrics(db_url, e, as_of, carbon=opts)


def test_carbon_row_equals_carbon_year_and_a_rerun_changes_nothing(conn, run):
    m = run()
    (row,) = carbon_rows(conn)
    through = conn.execute("SELECT data_through FROM green_share_ytd").fetchone()[0]
    assert row["year"] == 2025 and row["data_through"] == through == m.data_through
    direct = carbon_year(conn, "jj-shoes", 2025, year_offset=-2, until=through)
    lb, mb = direct["location_based"], direct["market_based"]
    assert row["status"] == "ok" and row["note"] is None
    assert row["grid_import_wh"] == direct["grid_import_wh"] > 0
    assert (row["location_co2_kg"], row["location_factor"], row["location_factor_region"],
            row["location_factor_year"], row["location_factor_source"]) == (
        lb["co2_kg"], lb["factor"]["value"], "national", 2023, lb["factor"]["source"])
    assert (row["market_co2_kg"], row["market_factor"], row["market_factor_year"], row["market_covered_wh"]) == (
        mb["co2_kg"], mb["factor"]["value"], 2023, 0)
    assert row["location_co2_kg"] == Decimal(row["grid_import_wh"]) * Decimal("0.5306") / 1000  # exact
    assert row["coal_equivalent_kgce"] == direct["standard_coal"]["equivalent"]["total_kgce"] > 0
    assert row["coal_equal_value_kgce"] is None and row["factor_year_offset"] == -2
    # the year to date is read up to the period end, not the whole year
    assert direct["metering"]["period_utc"][1] == through.isoformat()
    assert direct["grid_import_wh"] < carbon_year(conn, "jj-shoes", 2025, year_offset=-2)["grid_import_wh"]
    conn.commit()

    run()
    assert carbon_rows(conn) == [row]  # computed_at included: nothing rewritten


def test_a_certificate_lowers_market_based_co2_on_the_next_run(conn, run):
    run()
    (before,) = carbon_rows(conn)
    # retired after the period end: not in the year to date yet
    add_entries(conn, [certificate(7001, date(2025, 9, 1))])
    conn.commit()
    run()
    assert carbon_rows(conn) == [before]

    add_entries(conn, [certificate(7002, date(2025, 6, 21))])
    conn.commit()
    run()
    (after,) = carbon_rows(conn)
    assert after["certificates"] == 1 and after["green_trade_wh"] == 0
    assert after["market_covered_wh"] == min(before["grid_import_wh"], 1_000_000)
    assert after["market_co2_kg"] < before["market_co2_kg"]
    assert after["market_co2_kg"] == Decimal(after["grid_import_wh"] - after["market_covered_wh"]) \
        * after["market_factor"] / 1000
    assert after["location_co2_kg"] == before["location_co2_kg"]  # location-based ignores instruments
    assert after["computed_at"] > before["computed_at"]


def test_a_year_without_a_factor_stores_the_reason_not_a_number(conn, run):
    m = run(CarbonOptions(factor_fallback=False))
    (row,) = carbon_rows(conn)
    assert row["status"] == "no_factor" and m.carbon["status"] == "no_factor"
    assert "no location factor for region 'national', year 2025" in row["note"]
    assert "factor_fallback is off" in row["note"]
    for c in CARBON_COLUMNS:
        if c.startswith(("location_", "market_")):
            assert row[c] is None, c
    # standard coal needs no CO2 factor
    assert row["grid_import_wh"] > 0 and row["coal_equivalent_kgce"] > 0

    # the default: offset 0, the latest earlier factor, and the row says so
    run(CarbonOptions())
    (row,) = carbon_rows(conn)
    assert row["status"] == "factor_fallback"
    assert (row["location_factor_year"], row["market_factor_year"]) == (2023, 2023)
    assert "location factor of 2023: none published for 2025" in row["note"]
    assert "market factor of 2023: none published for 2025" in row["note"]


def test_region_and_equal_value(conn, run):
    run(CarbonOptions(region="福建", factor_year_offset=-3, equal_value_kgce_per_kwh=Decimal("0.300")))
    (row,) = carbon_rows(conn)
    assert row["status"] == "ok"
    assert (row["location_factor_region"], row["location_factor_year"], row["location_factor"]) == (
        "福建", 2022, Decimal("0.4092"))
    assert (row["market_factor_region"], row["market_factor"]) == ("national", Decimal("0.5856"))
    assert row["equal_value_kgce_per_kwh"] == Decimal("0.300")
    assert row["coal_equal_value_kgce"] > row["coal_equivalent_kgce"]  # 0.300 > 0.1229 kgce/kWh

    # no 福建 factor for 2023: with the year fallback, 福建's latest (2022) comes before national 2023
    run(CarbonOptions(region="福建", factor_year_offset=-2))
    (row,) = carbon_rows(conn)
    assert row["status"] == "factor_fallback"
    assert (row["location_factor_region"], row["location_factor_year"], row["market_factor_year"]) == ("福建", 2022, 2023)
    assert row["note"] == "location factor of 2022: none published for 2023, the latest earlier one taken"
    # without it, the national factor of 2023
    run(CarbonOptions(region="福建", factor_year_offset=-2, factor_fallback=False))
    (row,) = carbon_rows(conn)
    assert row["status"] == "factor_fallback"
    assert (row["location_factor_region"], row["location_factor_year"]) == ("national", 2023)
    assert row["note"] == "location factor of region national: none for 福建"


def test_carbon_is_written_with_the_other_results_or_not_at_all(conn, db_url, sim_day, monkeypatch):
    import flows.metrics

    rollup(db_url)
    (e,) = enterprises(conn)

    def boom(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(flows.metrics, "write_carbon_ytd", boom)  # after daily, YTD and projection rows
    with pytest.raises(RuntimeError, match="disk full"):
        enterprise_metrics(db_url, e, sim_day.end, carbon=EXACT)
    for table in ("daily_balance", "green_share_ytd", "green_share_projection", "carbon_ytd"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
