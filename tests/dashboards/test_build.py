"""dashboards/build.py: the committed JSON is what `dashboards build` makes; it loads back into the
SDK's models; units, thresholds, time zone, variables and both languages are there."""

import json
import re
from pathlib import Path

import pytest
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.build import OUT_DIR, build_all, render, write_all
from dashboards.panels import DASHBOARDS, GREEN_SHARE_LINE
from dashboards.query import DATASOURCE_TYPE, DATASOURCE_UID, SqlQuery

BUILT = build_all()
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_committed_json_equals_the_build():
    committed = {str(p.relative_to(OUT_DIR)): p.read_text(encoding="utf-8") for p in OUT_DIR.rglob("*.json")}
    assert committed == {k: render(v) for k, v in BUILT.items()}, \
        "deploy/grafana/dashboards is stale: run `greengauge dashboards build` and commit"


def test_write_all_writes_the_same(tmp_path):
    written = write_all(tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in written) == sorted(BUILT)


@pytest.mark.parametrize("fname", sorted(BUILT))
def test_json_loads_back_into_the_sdk_models(fname):
    model = json.loads(render(BUILT[fname]))
    d = Dashboard.from_json(model)
    assert d.uid == model["uid"] and d.timezone == "Asia/Shanghai"
    queries = [t for p in d.panels for t in p.targets]
    assert queries and all(isinstance(q, SqlQuery) for q in queries)  # our registered variant, not a bag
    # and back again, unchanged
    assert json.loads(json.dumps(d, default=lambda o: o.to_json())) == model


@pytest.mark.parametrize("fname", sorted(BUILT))
def test_every_panel_has_units_datasource_and_both_languages(fname):
    model = BUILT[fname]
    lang = fname.split(".")[1]
    texts = [model["title"]] + [p["title"] for p in model["panels"]] + [p["description"] for p in model["panels"]]
    if lang == "zh":
        assert all(HAN.search(t) for t in texts), [t for t in texts if not HAN.search(t)]
    else:
        # English titles; clause numbers of Chinese documents may stay in Chinese
        assert all(not HAN.search(p["title"]) for p in model["panels"])
    for p in model["panels"]:
        assert p["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
        assert all(t["datasource"]["uid"] == DATASOURCE_UID for t in p["targets"])
        assert p["fieldConfig"]["defaults"]["unit"], p["title"]
        assert "reader." in p["targets"][0]["rawSql"] and "public." not in p["targets"][0]["rawSql"]
    names = [v["name"] for v in model["templating"]["list"]]
    assert "park" in names and "year" in names


def test_the_30_percent_line_is_drawn_on_every_share_panel():
    for fname, model in BUILT.items():
        for p, spec in zip(model["panels"], DASHBOARDS[fname.split("/")[1].split(".")[0]]):
            steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
            if spec.unit == "percentunit" and "share" in spec.columns:
                assert {"color": "green", "value": GREEN_SHARE_LINE} in steps, spec.key


def test_only_live_power_reads_raw_readings():
    """Raw readings only where no rollup exists (power); energy comes from the rollups and results."""
    for spec in (p for ps in DASHBOARDS.values() for p in ps):
        if "reader.reading" in spec.sql:
            assert "active_power" in spec.sql and spec.unit == "watt", spec.key


def test_every_column_has_a_title_in_both_languages_and_statuses_read_as_words():
    from dashboards.panels import COLUMN_TITLES, UNTITLED

    for spec in (p for ps in DASHBOARDS.values() for p in ps):
        assert set(spec.columns) - UNTITLED <= set(COLUMN_TITLES), (spec.key, set(spec.columns) - set(COLUMN_TITLES))
    zh = BUILT["park/plant.zh.json"]
    table = next(p for p in zh["panels"] if p["title"].startswith("资格判定"))
    props = {o["matcher"]["options"]: {x["id"]: x["value"] for x in o["properties"]}
             for o in table["fieldConfig"]["overrides"]}
    assert props["status"]["displayName"] == "状态"
    assert props["status"]["mappings"][0]["options"]["does_not_qualify"] == {"text": "不符合", "color": "red", "index": 1}
    assert props["decided_at"]["unit"] == "dateTimeAsIso"


def test_bar_gauges_draw_one_bar_per_row_of_their_value_column():
    for fname, model in BUILT.items():
        for p, spec in zip(model["panels"], DASHBOARDS[fname.split("/")[1].split(".")[0]]):
            if spec.kind == "bargauge":
                assert spec.value_column in spec.columns
                assert p["options"]["reduceOptions"] == {"values": True, "calcs": ["lastNotNull"],
                                                         "fields": f"/^{spec.value_column}$/"}


def test_build_command_writes_the_dashboards_with_the_api_url(tmp_path):
    from typer.testing import CliRunner

    from greengauge.cli import app

    res = CliRunner().invoke(app, ["dashboards", "build", "--out", str(tmp_path), "--api-url", "https://e.example.cn/"])
    assert res.exit_code == 0, res.output
    model = json.loads((tmp_path / "bureau" / "bureau.en.json").read_text())
    (api,) = [v for v in model["templating"]["list"] if v["name"] == "api_url"]
    assert api["query"] == "https://e.example.cn"
    assert len(list(tmp_path.rglob("*.json"))) == 6
    res = CliRunner().invoke(app, ["dashboards", "build", "--out", str(tmp_path), "--api-url", "e.example.cn"])
    assert res.exit_code == 2 and "http(s) URL" in res.output
