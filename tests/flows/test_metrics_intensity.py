"""The metrics flow's stored ``intensity_ytd`` rows are what ``greengauge report intensity --format
json`` prints, on the real PostgreSQL (issue 11: dashboards show stored results, never a second
computation). 晋政规〔2024〕2号 §四(五): ranking within an industry by energy per output."""

import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
from typer.testing import CliRunner

from flows.metrics import enterprise_metrics
from flows.rollup import rollup
from greengauge.cli import app
from store.results import enterprises
from tests.greengauge.test_cli_intensity import _three

runner = CliRunner()
COLS = ("industry", "status", "not_ranked", "energy_kgce", "output_value_yuan", "rows_without_output_value",
        "kgce_per_10k_yuan", "rank_in_industry", "ranked_of", "data_through", "electricity_method", "computed_at")


def stored(db_url):
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(f"""SELECT e.code, {", ".join("i." + c for c in COLS)} FROM intensity_ytd i
                                JOIN enterprise e USING (enterprise_id) WHERE i.year = 2024""").fetchall()
    return {r[0]: dict(zip(COLS, r[1:])) for r in rows}


def test_stored_intensity_equals_the_report(db_url, conn, monkeypatch, tmp_path):
    _three(db_url, conn, monkeypatch, tmp_path)
    # shoe-c's output value is unknown: the yarn-like case, not ranked, no value (unknown, not zero)
    conn.execute("UPDATE production SET output_value_yuan = NULL WHERE enterprise_id = "
                 "(SELECT enterprise_id FROM enterprise WHERE code = 'shoe-c')")
    conn.commit()
    rollup(db_url)
    as_of = datetime(2025, 1, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    for e in enterprises(conn):
        enterprise_metrics(db_url, e, as_of, year=2024)
    rows = stored(db_url)
    assert set(rows) == {"shoe-a", "shoe-b", "shoe-c", "mill"}
    r = runner.invoke(app, ["report", "intensity", "--industry", "footwear", "--year", "2024", "--format", "json"])
    assert r.exit_code == 0, r.output
    for e in json.loads(r.output)["enterprises"]:
        s = rows[e["enterprise"]]
        assert s["industry"] == "footwear" and s["status"] == e["status"] and s["not_ranked"] == e.get("not_ranked")
        assert (s["rank_in_industry"], s["ranked_of"]) == (e["rank"], e["of"])
        for col, key in (("energy_kgce", "energy_kgce"), ("output_value_yuan", "output_value_yuan"),
                         ("kgce_per_10k_yuan", "kgce_per_10k_yuan")):
            assert s[col] == (None if e[key] is None else Decimal(e[key])), col
        assert s["rows_without_output_value"] == e["rows_without_output_value"]
        assert s["data_through"].isoformat() == e["data_through"]
        assert s["electricity_method"] == e["electricity_method"] == "equivalent"
    # known values: 0.5 GWh × 0.1229 kgce/kWh = 61,450 kgce over 1 亿 yuan = 6.145 kgce/万元, first of two;
    # shoe-a 1 GWh over 1 亿 yuan = 12.29, second; shoe-c has no output value: unknown, no rank
    assert (rows["shoe-b"]["kgce_per_10k_yuan"], rows["shoe-b"]["rank_in_industry"]) == (Decimal("6.145"), 1)
    assert (rows["shoe-a"]["kgce_per_10k_yuan"], rows["shoe-a"]["ranked_of"]) == (Decimal("12.29"), 2)
    assert rows["shoe-c"]["status"] == "unknown" and rows["shoe-c"]["kgce_per_10k_yuan"] is None
    assert rows["shoe-c"]["not_ranked"] == "no output value recorded"
    assert rows["mill"]["not_ranked"] == "no output value recorded"  # textile: its own industry, no production
    # a rerun with nothing new leaves every row alone, computed_at included
    for e in enterprises(conn):
        enterprise_metrics(db_url, e, as_of, year=2024)
    assert stored(db_url) == rows
