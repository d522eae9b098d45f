"""The Plant, Park and Bureau dashboards, in Chinese and in English, built with the foundation SDK.

``build_all()`` returns the six dashboards as JSON-ready dicts by file name;
``write_all(out_dir)`` writes them (``greengauge dashboards build``). The panels themselves
(SQL, units, thresholds, texts) are data in :mod:`dashboards.panels`.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, common as common_b, dashboard as dash_b, gauge, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, dashboard

from dashboards.panels import COLUMN_TITLES, DASHBOARDS, STATUS_WORDS, UNTITLED, Panel, Text
from dashboards.query import SqlQueryBuilder, datasource_ref

LANGS = ("zh", "en")
TIMEZONE = "Asia/Shanghai"
OUT_DIR = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"

TITLES = {
    "plant": Text("GreenGauge 工厂能源看板", "GreenGauge plant"),
    "park": Text("GreenGauge 绿色园区平台", "GreenGauge green park"),
    "bureau": Text("GreenGauge 主管部门核定看板", "GreenGauge bureau"),
}
DESCRIPTIONS = {
    "plant": Text("一家企业：实时功率、电量平衡、绿电占比（R1）、R2/R3、资格判定、设备与数据质量。",
                  "One enterprise: live power, balance, green share (R1), R2/R3, eligibility, devices and data quality."),
    "park": Text("园区内各企业（晋政规〔2024〕2号 §一(四) 绿色园区平台）。",
                 "Every enterprise of a park (the green-park platform of 晋政规〔2024〕2号 §一(四))."),
    "bureau": Text("各企业年度核定数据、资格判定版本与原因、完整度、签名报表。",
                   "Verified yearly figures, eligibility versions and reasons, completeness, signed statements."),
}
TIME = {"plant": ("now/d", "now"), "park": ("now-6h", "now"), "bureau": ("now/y", "now")}
VAR_LABELS = {"park": Text("园区", "Park"), "enterprise": Text("企业", "Enterprise"), "year": Text("年度", "Year"),
              "api_url": Text("API 地址", "API URL")}

# variable queries (run through the same reader datasource, so a park organization lists only its own)
PARK_QUERY = "SELECT code AS __value, name AS __text FROM reader.park ORDER BY code"
ENTERPRISE_QUERY = {
    "single": ("SELECT e.code AS __value, e.name AS __text FROM reader.enterprise e JOIN reader.park p USING (park_id) "
               "WHERE p.code = '$park' ORDER BY e.code"),
    "multi": ("SELECT e.code AS __value, e.name AS __text FROM reader.enterprise e JOIN reader.park p USING (park_id) "
              "WHERE p.code IN ($park) ORDER BY e.code"),
}
YEAR_QUERY = "SELECT DISTINCT year::text AS __value, year::text AS __text FROM reader.green_share_ytd ORDER BY 1 DESC"
DEFAULT_API_URL = "http://localhost:8000"


def uid(name: str, lang: str) -> str:
    return f"gg-{name}-{lang}"


def _steps(panel: Panel) -> dash_b.ThresholdsConfig:
    steps = panel.thresholds or ((None, "green"),)
    return dash_b.ThresholdsConfig().mode(dashboard.ThresholdsMode.ABSOLUTE).steps(
        [dashboard.Threshold(value=v, color=c) for v, c in steps])


def _query_variable(name: str, lang: str, query: str, *, multi: bool = False) -> dash_b.QueryVariable:
    v = (dash_b.QueryVariable(name).label(VAR_LABELS[name](lang)).datasource(datasource_ref()).query(query)
         .refresh(dashboard.VariableRefresh.ON_DASHBOARD_LOAD).sort(dashboard.VariableSort.DISABLED)
         .allow_custom_value(False))
    if multi:
        v = v.multi(True).include_all(True)
    return v


def variables(name: str, lang: str, api_url: str = DEFAULT_API_URL) -> list:
    multi = name == "bureau"
    out = [_query_variable("park", lang, PARK_QUERY, multi=multi)]
    if name in ("plant", "bureau"):
        out.append(_query_variable("enterprise", lang, ENTERPRISE_QUERY["multi" if multi else "single"], multi=multi))
    out.append(_query_variable("year", lang, YEAR_QUERY))
    if name == "bureau":
        out.append(dash_b.ConstantVariable("api_url").label(VAR_LABELS["api_url"](lang)).value(api_url))
    return out


def status_mappings(lang: str) -> list[dict]:
    return [{"type": "value", "options": {value: {"text": text(lang), "color": color, "index": i}
                                          for i, (value, (text, color)) in enumerate(STATUS_WORDS.items())}}]


def _overrides(builder, panel: Panel, lang: str):
    per_column: dict[str, list] = {}
    for col in panel.columns:
        props = []
        if col in COLUMN_TITLES and not (col == "load_w" and "metric" in panel.columns):  # series keep their names
            props.append(dashboard.DynamicConfigValue(id_val="displayName", value=COLUMN_TITLES[col](lang)))
        if col in panel.column_units:
            props.append(dashboard.DynamicConfigValue(id_val="unit", value=panel.column_units[col]))
        if col == "status":
            props.append(dashboard.DynamicConfigValue(id_val="mappings", value=status_mappings(lang)))
            if panel.kind == "table":
                props.append(dashboard.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}))
        if col in panel.links:
            title, url = panel.links[col]
            props.append(dashboard.DynamicConfigValue(
                id_val="links", value=[{"title": title(lang), "url": url, "targetBlank": True}]))
        if props:
            per_column[col] = props
    for col, props in per_column.items():
        builder = builder.override_by_name(col, props)
    return builder


def panel_builder(panel: Panel, lang: str):
    kinds = {"timeseries": timeseries.Panel, "stat": stat.Panel, "table": table.Panel, "bargauge": bargauge.Panel,
             "gauge": gauge.Panel}
    if panel.kind not in kinds:
        raise ValueError(f"panel {panel.key}: unknown kind {panel.kind!r} (known: {', '.join(kinds)})")
    b = (kinds[panel.kind]().title(panel.title(lang)).description(panel.description(lang))
         .datasource(datasource_ref()).with_target(SqlQueryBuilder(panel.sql, panel.format))
         .unit(panel.unit).thresholds(_steps(panel)).height(panel.h).span(panel.w))
    if panel.kind == "timeseries":
        b = b.thresholds_style(common_b.GraphThresholdsStyleConfig().mode(
            common.GraphThresholdsStyleMode.LINE if panel.thresholds else common.GraphThresholdsStyleMode.OFF))
    elif panel.kind in ("stat", "gauge", "bargauge"):
        fields = f"/^{panel.value_column}$/" if panel.value_column else ""
        b = b.reduce_options(common_b.ReduceDataOptions().values(panel.format == "table"
                                                                   and panel.kind == "bargauge")
                             .calcs(["lastNotNull"]).fields(fields))
        if panel.kind == "gauge":
            b = b.min(0).max(1).show_threshold_markers(True).show_threshold_labels(True)
        if panel.kind == "bargauge":
            b = b.orientation(common.VizOrientation.HORIZONTAL).display_mode(common.BarGaugeDisplayMode.BASIC)
            if panel.unit == "percentunit":
                b = b.min(0).max(1)
        if panel.kind == "stat":
            b = b.color_mode(common.BigValueColorMode.VALUE).graph_mode(common.BigValueGraphMode.NONE)
    elif panel.kind == "table":
        b = b.cell_options(common.TableColoredBackgroundCellOptions()) if panel.thresholds else b
    return _overrides(b, panel, lang)


def build_dashboard(name: str, lang: str, api_url: str = DEFAULT_API_URL) -> dashboard.Dashboard:
    other = "en" if lang == "zh" else "zh"
    d = (dash_b.Dashboard(TITLES[name](lang)).uid(uid(name, lang)).description(DESCRIPTIONS[name](lang))
         .tags(["greengauge", name, lang]).timezone(TIMEZONE).time(*TIME[name]).refresh("1m" if name != "bureau" else "")
         .editable().tooltip(dashboard.DashboardCursorSync.CROSSHAIR).variables(variables(name, lang, api_url))
         .link(dash_b.DashboardLink("English" if other == "en" else "中文").type(dashboard.DashboardLinkType.LINK)
               .url(f"/d/{uid(name, other)}").include_vars(True).keep_time(True)))
    for p in DASHBOARDS[name]:
        d = d.with_panel(panel_builder(p, lang))
    return d.build()


def to_dict(obj) -> dict:
    return json.loads(json.dumps(obj, cls=JSONEncoder))


# which organizations get a dashboard: a park organization the Plant and Park dashboards, the bureau
# organization all three (its reader sees every park). One directory per set, one provider each.
FOLDERS = {"plant": "park", "park": "park", "bureau": "bureau"}


def build_all(api_url: str = DEFAULT_API_URL) -> dict[str, dict]:
    """``{"park/plant.zh.json": {...}, ...}``: the six dashboards as Grafana JSON, by path under OUT_DIR;
    ``api_url``: where the Bureau's links to the bureau API point."""
    return {f"{FOLDERS[name]}/{name}.{lang}.json": to_dict(build_dashboard(name, lang, api_url))
            for name in DASHBOARDS for lang in LANGS}


def render(model: dict) -> str:
    return json.dumps(model, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_all(out_dir: Path = OUT_DIR, api_url: str = DEFAULT_API_URL) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, model in build_all(api_url).items():
        path = out_dir / fname
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written
