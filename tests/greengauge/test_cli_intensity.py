"""`greengauge production import` and `greengauge report intensity` against a real database.

福建省绿色制造梯度培育管理实施细则（暂行） 第七条 3 (unit-product energy vs the limit standard's advanced
value); 晋政规〔2024〕2号 §四(五) (ranking within an industry by energy per output).
"""

import json
from decimal import Decimal

from typer.testing import CliRunner

from greengauge.cli import app
from tests.flows.test_policy_inputs import grid_year
from tests.store.test_projects import apply

runner = CliRunner()

SITE = """\
enterprise: {{code: {code}, name: {code}, industry: {industry}}}
site: {{code: main, name: Main}}
devices:
  - name: grid
    profile: generic-3ph-meter
    host: 127.0.0.1
    points: [{{quantity: energy_import, role: grid_import}}]
"""

PRODUCTION = """\
record,enterprise,product,period_start,period_end,quantity,unit,output_value_yuan,limit,access,advanced,standard
reference,,运动鞋,,,,万双,,1500,1400,1300,GB 0000-2024 表1
production,shoe-a,运动鞋,2024-01-01,2024-12-31,100,万双,"100,000,000",,,,
production,shoe-b,运动鞋,2024-01-01,2024-06-30,30,万双,50000000,,,,
production,shoe-b,运动鞋,2024-07-01,2024-12-31,70,万双,50000000,,,,
production,shoe-c,运动鞋,2024-01-01,2024-12-31,100,万双,100000000,,,,
"""


def _three(db_url, conn, monkeypatch, tmp_path):
    """Three footwear makers (and one textile mill that must not be ranked with them)."""
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    for code, industry, gwh in (("shoe-a", "footwear", 1.0), ("shoe-b", "footwear", 0.5), ("shoe-c", "footwear", 2.0),
                                ("mill", "textile", 3.0)):
        ids = apply(conn, tmp_path, SITE.format(code=code, industry=industry), f"{code}.yaml")
        conn.commit()
        grid_year(conn, ids, 2024, int(gwh * 1_000_000_000), code)
    f = tmp_path / "production.csv"
    f.write_text(PRODUCTION, encoding="utf-8")
    r = runner.invoke(app, ["production", "import", str(f)])
    assert r.exit_code == 0, r.output
    assert "4 production rows and 1 products' reference values recorded" in r.output


def test_intensity_ranking_of_three_enterprises(db_url, conn, monkeypatch, tmp_path):
    _three(db_url, conn, monkeypatch, tmp_path)
    r = runner.invoke(app, ["report", "intensity", "--industry", "footwear", "--year", "2024", "--format", "json",
                            "--bottom-fraction", "0.3"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    rows = {e["enterprise"]: e for e in out["enterprises"]}
    assert set(rows) == {"shoe-a", "shoe-b", "shoe-c"}  # the textile mill is another industry
    # 2024-2 §四(五): kgce per 10,000 yuan; 0.5 GWh × 0.1229 = 61,450 kgce over 1 亿 yuan = 6.145 -> first
    assert [e["enterprise"] for e in out["enterprises"]] == ["shoe-b", "shoe-a", "shoe-c"]
    assert rows["shoe-b"]["kgce_per_10k_yuan"] == "6.145000" and rows["shoe-b"]["rank"] == 1
    assert rows["shoe-a"]["kgce_per_10k_yuan"] == "12.290000" and rows["shoe-a"]["of"] == 3
    # the bottom 30 % of three (ceil 0.9 = 1 enterprise) is the worst: shoe-c, 24.58
    assert [e["enterprise"] for e in out["enterprises"] if e["bottom"]] == ["shoe-c"]
    # 福建 002 第七条 3, unit-product energy against GB reference values [kgce/万双]:
    # shoe-b 614.5 reaches advanced 1,300; shoe-a 1,229 reaches advanced; shoe-c 2,458 is above the limit 1,500
    b, a, c = (rows[x]["products"]["运动鞋"] for x in ("shoe-b", "shoe-a", "shoe-c"))
    assert b["kgce_per_unit"] == "614.500000" and b["best_level"] == "advanced"
    assert a["kgce_per_unit"] == "1229.000000" and a["best_level"] == "advanced"
    assert c["best_level"] is None and c["above_limit"] is True
    r = runner.invoke(app, ["report", "intensity", "--industry", "footwear", "--year", "2024"])
    assert r.exit_code == 0 and "1/3" in r.output and "bottom of the industry not flagged" in r.output


def test_production_import_all_or_nothing(db_url, conn, monkeypatch, tmp_path):
    _three(db_url, conn, monkeypatch, tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "record,enterprise,product,period_start,period_end,quantity,unit,output_value_yuan\n"
        "production,shoe-a,皮鞋,2025-01-01,2025-12-31,10,万双,1000\n"        # fine on its own
        "production,shoe-a,运动鞋,2025-01-01,2025-13-31,10,万双,\n"          # no 13th month
        "production,shoe-a,运动鞋,2024-12-01,2025-01-31,10,万双,\n"          # overlaps a stored period
        "production,shoe-a,运动鞋,2026-01-01,2026-12-31,10,双,\n"            # unit differs from the reference
        "production,nobody,运动鞋,2026-01-01,2026-12-31,-1,万双,\n",         # negative quantity
        encoding="utf-8")
    r = runner.invoke(app, ["production", "import", str(bad)])
    assert r.exit_code == 2
    assert "bad.csv line 3: period_end: '2025-13-31' is not a date" in r.output
    assert "bad.csv line 6: quantity: must be non-negative, got -1" in r.output
    r2 = runner.invoke(app, ["production", "import", str(bad)])
    assert r2.output == r.output
    # nothing of the file was written, not even its good first row
    assert conn.execute("SELECT count(*) FROM production WHERE product = '皮鞋'").fetchone()[0] == 0
    # the parse errors fixed, the database checks name the line and field
    bad.write_text(
        "record,enterprise,product,period_start,period_end,quantity,unit\n"
        "production,shoe-a,运动鞋,2024-12-01,2025-01-31,10,万双\n"
        "production,shoe-a,运动鞋,2026-01-01,2026-12-31,10,双\n"
        "production,nobody,运动鞋,2026-01-01,2026-12-31,1,万双\n", encoding="utf-8")
    r = runner.invoke(app, ["production", "import", str(bad)])
    assert r.exit_code == 2
    assert "bad.csv line 2: period_start: 2024-12-01..2025-01-31 overlaps the stored period 2024-01-01..2024-12-31" in r.output
    assert "bad.csv line 3: unit: '双', but the reference values of '运动鞋' are per '万双'" in r.output
    assert "bad.csv line 4: enterprise: no enterprise 'nobody'" in r.output
    # a reference row with advanced above limit is refused (lower is better)
    bad.write_text("record,product,unit,limit,advanced\nreference,运动鞋,万双,1000,1200\n", encoding="utf-8")
    r = runner.invoke(app, ["production", "import", str(bad)])
    assert r.exit_code == 2 and "line 2: advanced: 1200 is above the limit value 1000" in r.output
