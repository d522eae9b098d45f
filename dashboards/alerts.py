"""Grafana alert rules, built with the foundation SDK's alerting models.

Four rules per organization, each a SQL query on the organization's reader datasource (table
format: one row per enterprise/device, string columns become labels, the one numeric column the
value) and a threshold expression:

- ``device-stale``: a device the collector reports as away (``device_health.status = 'away'``),
  value = minutes since; fires when > 0 for 5 minutes.
- ``data-gap``: an open stale-device or gap finding of the data-quality flow older than
  ``gap_minutes`` (default 30), value = minutes open.
- ``completeness``: the latest year's completeness (R1's measured share of intervals) below 95 %.
- ``projection``: the latest year's year-end projected green share below 30 % (R1, 晋政规〔2024〕2号
  §三(一)).

:func:`rule_models` gives the SDK's :class:`~grafana_foundation_sdk.models.alerting.Rule` objects
(the HTTP provisioning API's shape, used by ``push``); :func:`file_groups` the same rules in
Grafana's file-provisioning shape (``provisioning/alerting/*.yaml``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import alerting

from dashboards.panels import COMPLETENESS_LINE, GREEN_SHARE_LINE, Text
from dashboards.query import DATASOURCE_UID, SqlQuery

FOLDER_UID = "greengauge"
FOLDER_TITLE = "GreenGauge"
GROUP = "greengauge"
INTERVAL = "5m"
DEFAULT_GAP_MINUTES = 30


@dataclass(frozen=True)
class AlertRule:
    key: str
    title: Text
    summary: Text
    sql: str
    value_column: str
    label_columns: tuple[str, ...]
    evaluator: str  # gt | lt
    threshold: float
    for_: str = "5m"


def rules(gap_minutes: int = DEFAULT_GAP_MINUTES) -> list[AlertRule]:
    if gap_minutes <= 0:
        raise ValueError(f"gap minutes: {gap_minutes} is not a positive number of minutes")
    latest = """(SELECT DISTINCT ON (enterprise_id) * FROM reader.{t} ORDER BY enterprise_id, year DESC)"""
    return [
        AlertRule(
            "device-stale", Text("设备离线", "Device stale"),
            Text("采集器无法连接设备 {{ $labels.device }}（{{ $labels.enterprise }}）已 {{ $values.A }} 分钟。",
                 "The collector has not reached {{ $labels.device }} ({{ $labels.enterprise }}) for {{ $values.A }} min."),
            """SELECT e.code AS enterprise, d.name AS device,
       (extract(epoch FROM now() - h.since) / 60)::float8 AS minutes_away
FROM reader.device_health h JOIN reader.device d USING (device_id) JOIN reader.site s USING (site_id)
JOIN reader.enterprise e USING (enterprise_id)
WHERE h.status = 'away'""", "minutes_away", ("enterprise", "device"), "gt", 0),
        AlertRule(
            "data-gap", Text(f"数据缺口超过{gap_minutes}分钟", f"Data gap open longer than {gap_minutes} min"),
            Text("{{ $labels.device }}（{{ $labels.enterprise }}）{{ $labels.kind }} 已持续 {{ $values.A }} 分钟。",
                 "{{ $labels.kind }} on {{ $labels.device }} ({{ $labels.enterprise }}) open for {{ $values.A }} min."),
            """SELECT e.code AS enterprise, d.name AS device, f.kind,
       (extract(epoch FROM now() - f.opened_at) / 60)::float8 AS minutes_open
FROM reader.dq_finding f JOIN reader.device d USING (device_id) JOIN reader.site s USING (site_id)
JOIN reader.enterprise e USING (enterprise_id)
WHERE f.closed_at IS NULL AND f.kind IN ('stale_device', 'gap')""",
            "minutes_open", ("enterprise", "device", "kind"), "gt", gap_minutes, "0s"),
        AlertRule(
            "completeness", Text("数据完整度低于95%", "Completeness below 95 %"),
            Text("{{ $labels.enterprise }} {{ $labels.year }} 年已测区间占比 {{ $values.A }}，低于95%，R1 无法判定。",
                 "{{ $labels.enterprise }} {{ $labels.year }}: {{ $values.A }} of the intervals measured, below 95 %; "
                 "R1 cannot be decided."),
            f"""SELECT e.code AS enterprise, g.year::text AS year, g.completeness::float8 AS completeness
FROM {latest.format(t='green_share_ytd')} g JOIN reader.enterprise e USING (enterprise_id)
WHERE g.completeness IS NOT NULL""", "completeness", ("enterprise", "year"), "lt", COMPLETENESS_LINE, "1h"),
        AlertRule(
            "projection", Text("年末绿电占比预测低于30%", "Year-end projection below 30 %"),
            Text("{{ $labels.enterprise }} {{ $labels.year }} 年末绿电占比预测 {{ $values.A }}，低于30%。",
                 "{{ $labels.enterprise }} {{ $labels.year }}: projected year-end green share {{ $values.A }}, "
                 "below 30 %."),
            f"""SELECT e.code AS enterprise, p.year::text AS year, p.projected_share::float8 AS projected_share
FROM {latest.format(t='green_share_projection')} p JOIN reader.enterprise e USING (enterprise_id)
WHERE p.projected_share IS NOT NULL""", "projected_share", ("enterprise", "year"), "lt", GREEN_SHARE_LINE, "1h"),
    ]


def _threshold(rule: AlertRule) -> UnknownDataquery:
    # a server-side expression (datasource __expr__): a threshold on every series of A
    return UnknownDataquery({"refId": "B", "type": "threshold", "expression": "A",
                             "datasource": {"type": "__expr__", "uid": "__expr__"},
                             "conditions": [{"evaluator": {"type": rule.evaluator, "params": [rule.threshold]}}]})


def rule_uid(rule: AlertRule, org_key: str) -> str:
    return f"gg-{rule.key}-{org_key}"[:40]


def rule_models(org_id: int, org_key: str, lang: str = "zh", gap_minutes: int = DEFAULT_GAP_MINUTES
                ) -> list[alerting.Rule]:
    out = []
    for r in rules(gap_minutes):
        out.append(alerting.Rule(
            uid=rule_uid(r, org_key), title=f"{r.title(lang)} / {r.title('en' if lang == 'zh' else 'zh')}",
            condition="B", folder_uid=FOLDER_UID, rule_group=GROUP, org_id=org_id, for_val=r.for_,
            no_data_state="OK", exec_err_state="Error",
            labels={"greengauge": r.key},
            annotations={"summary": r.summary(lang), "description": r.summary("en" if lang == "zh" else "zh")},
            data=[
                alerting.Query(ref_id="A", datasource_uid=DATASOURCE_UID,
                               relative_time_range=alerting.RelativeTimeRange(from_val=600, to=0),
                               model=SqlQuery(ref_id="A", raw_sql=r.sql, format="table")),
                alerting.Query(ref_id="B", datasource_uid="__expr__",
                               relative_time_range=alerting.RelativeTimeRange(from_val=0, to=0),
                               model=_threshold(r)),
            ]))
    return out


def to_api(rule: alerting.Rule) -> dict:
    """The rule as ``POST /api/v1/provisioning/alert-rules`` takes it."""
    return json.loads(json.dumps(rule, cls=JSONEncoder))


def to_file_rule(rule: alerting.Rule) -> dict:
    """The rule as a file-provisioning entry (``groups[].rules[]``)."""
    api = to_api(rule)
    out = {k: api[k] for k in ("uid", "title", "condition", "data", "noDataState", "execErrState", "for",
                               "annotations", "labels") if k in api}
    out["isPaused"] = False
    return out


def file_groups(org_id: int, org_key: str, lang: str = "zh", gap_minutes: int = DEFAULT_GAP_MINUTES) -> dict:
    return {"orgId": org_id, "name": GROUP, "folder": FOLDER_TITLE, "interval": INTERVAL,
            "rules": [to_file_rule(r) for r in rule_models(org_id, org_key, lang, gap_minutes)]}
