"""Every panel of the three dashboards as data: its SQL, format, units, thresholds and texts.

The SQL reads only the ``reader`` schema (security-barrier views with the names and columns of the
public tables, rows limited to the caller's scope: docs/tenancy.md), and only stored results:
``daily_balance``, ``green_share_ytd``, ``green_share_projection``, ``carbon_ytd``,
``eligibility_current`` / ``eligibility_decision``, ``energy_hourly``, ``device_health``,
``dq_finding``, ``collector_finding``. Raw ``reading`` rows are read only for live power (points of
quantity ``active_power``), which has no rollup.

Live power sign convention (model/quantities.py, the simulator): the grid meter's active power
is positive on import, PV positive when generating, the battery positive when charging; the load is
grid + PV − battery. A device's kind comes from the roles of its counter points.

Variables: ``$park`` and ``$enterprise`` are codes, ``$year`` a local calendar year. Single-value
variables are written inside quotes (``'$enterprise'``; Grafana doubles any ``'``), multi-value
ones as ``IN ($park)`` (Grafana quotes each value). "Today" and "this month" are the local day and
month of the enterprise that contain the end of the dashboard's time range (``$__timeTo()``).

The plant's panels reading the big tables (``reading``, ``energy_hourly``) name their points as
``point_id = ANY (ARRAY(SELECT …))``: a reader view is a security barrier (docs/tenancy.md), so a join
condition is not pushed into it and the view would yield every row of the time range the organization
may see before the join picks the panel's points; a leakproof ``= ANY`` of an array computed once is
pushed in and reaches the ``(point_id, …)`` primary key (bench/bench_dashboards.py measures both). The
park's live load keeps the join: naming its points (a park's whole power) measured faster with ten
parks in the database and slower with two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from metrics.green_share import COMPLETENESS_THRESHOLD, THRESHOLD

# the lines drawn are the rule's own numbers (metrics/green_share.py), never copies of them
GREEN_SHARE_LINE = float(THRESHOLD)  # R1: 晋政规〔2024〕2号 §三(一), 晋政規〔2025〕5號 §三(三); 30 % inclusive
COMPLETENESS_LINE = float(COMPLETENESS_THRESHOLD)  # below it R1 is unknown

RED, GREEN, ORANGE = "red", "green", "orange"


@dataclass(frozen=True)
class Text:
    zh: str
    en: str

    def __call__(self, lang: str) -> str:
        return getattr(self, lang)


@dataclass(frozen=True)
class Panel:
    key: str
    kind: str  # timeseries | stat | table | bargauge | gauge
    title: Text
    description: Text
    sql: str
    format: str  # table | time_series
    unit: str  # Grafana unit id for the value columns
    columns: tuple[str, ...]  # the columns the panel expects, in order ("time" first for time series)
    reads: tuple[str, ...]  # the public tables behind the reader views it reads (for the benchmark)
    column_units: dict[str, str] = field(default_factory=dict)  # per-column units where they differ
    thresholds: tuple[tuple[float | None, str], ...] = ()  # (from value, colour); None = base
    w: int = 12
    h: int = 8
    links: dict[str, tuple[Text, str]] = field(default_factory=dict)  # column -> (title, URL) data link
    enterprise_column: str | None = "enterprise"  # the column naming the enterprise of each row, if any
    value_column: str | None = None  # a bar gauge's bars: this column of each row (the others are its name)


SHARE_STEPS = ((None, RED), (GREEN_SHARE_LINE, GREEN))
COMPLETENESS_STEPS = ((None, RED), (COMPLETENESS_LINE, GREEN))

# -- common SQL ----------------------------------------------------------------------------------

ONE_ENTERPRISE = "SELECT enterprise_id, code, name, timezone FROM reader.enterprise WHERE code = '$enterprise'"
PARK_ENTERPRISES = """SELECT e.enterprise_id, e.code, e.name, e.timezone, p.code AS park
    FROM reader.enterprise e JOIN reader.park p USING (park_id) WHERE p.code = '$park'"""
BUREAU_ENTERPRISES = """SELECT e.enterprise_id, e.code, e.name, e.timezone, p.code AS park
    FROM reader.enterprise e JOIN reader.park p USING (park_id)
    WHERE p.code IN ($park) AND e.code IN ($enterprise)"""

# kind of each device of the selected enterprises, from its counter points' roles
DEVICE_KIND = """SELECT d.device_id, d.name AS device, e.code AS enterprise,
           CASE WHEN bool_or(p.role IN ('grid_import', 'grid_export')) THEN 'grid'
                WHEN bool_or(p.role = 'pv_generation') THEN 'pv'
                WHEN bool_or(p.role IN ('storage_charge', 'storage_discharge')) THEN 'battery' END AS kind
    FROM reader.device d JOIN reader.site s USING (site_id) JOIN e USING (enterprise_id)
    JOIN reader.point p USING (device_id)
    GROUP BY d.device_id, d.name, e.code"""

LIVE_POWER = """SELECT $__timeGroup(r.ts, '1m') AS t, k.enterprise, k.kind, avg(r.value) AS w
    FROM reader.reading r JOIN reader.point p USING (point_id) JOIN k USING (device_id)
    WHERE p.quantity = 'active_power' AND k.kind IS NOT NULL AND r.quality < 2 AND r.value IS NOT NULL
      AND $__timeFilter(r.ts)
    GROUP BY 1, 2, 3"""
# one enterprise's: its few power points named, reaching reading's (point_id, ts) key (see above)
LIVE_POWER_POINTS = LIVE_POWER.replace("""      AND $__timeFilter(r.ts)
""", """      AND $__timeFilter(r.ts)
      AND r.point_id = ANY (ARRAY(SELECT p.point_id FROM reader.point p JOIN k USING (device_id)
                                  WHERE p.quantity = 'active_power' AND k.kind IS NOT NULL))
""")

LOCAL_END_DAY = "(($__timeTo())::timestamptz AT TIME ZONE e.timezone)::date"

BALANCE_COLUMNS = ("consumption_wh", "import_wh", "export_wh", "pv_wh", "pv_self_consumed_wh", "charge_wh",
                   "discharge_wh", "green_wh")

# the rule R2 (recycling line electricity, 晋政规〔2024〕2号 §二(二)) and the storage checks (R3,
# 晋政规〔2024〕2号 §三(一)) are eligibility decisions of these kinds (metrics/policy)
R2_KIND, R3_KIND = "recycling_energy", "pv_storage"

STATUS_UNIT = "string"

# -- Plant ---------------------------------------------------------------------------------------

PLANT = [
    Panel(
        "plant_live_power", "timeseries",
        Text("实时功率：电网、光伏、储能、负荷", "Live power: grid, PV, battery, load"),
        Text("原始读数（有功功率点，1分钟平均）。电网正值=购电，光伏正值=发电，储能正值=充电；负荷=电网+光伏−储能。",
             "Raw readings of the active-power points, 1-minute means. Grid positive = import, PV positive = "
             "generation, battery positive = charging; load = grid + PV − battery."),
        f"""WITH e AS ({ONE_ENTERPRISE}),
k AS ({DEVICE_KIND}),
pw AS ({LIVE_POWER_POINTS})
SELECT t AS "time",
       sum(w) FILTER (WHERE kind = 'grid') AS grid_w,
       sum(w) FILTER (WHERE kind = 'pv') AS pv_w,
       sum(w) FILTER (WHERE kind = 'battery') AS battery_w,
       sum(CASE kind WHEN 'battery' THEN -w ELSE w END) AS load_w
FROM pw GROUP BY t ORDER BY t""",
        "time_series", "watt", ("time", "grid_w", "pv_w", "battery_w", "load_w"), ("reading", "point", "device"),
        w=24, h=9, enterprise_column=None),
    Panel(
        "plant_today_balance", "stat",
        Text("今日电量平衡", "Today's balance"),
        Text("当地今日（时间范围终点所在日）的日电量平衡，来自 daily_balance。",
             "The local day containing the end of the time range, from the stored daily balance."),
        f"""WITH e AS ({ONE_ENTERPRISE})
SELECT {', '.join('b.' + c for c in BALANCE_COLUMNS)}
FROM reader.daily_balance b JOIN e USING (enterprise_id)
WHERE b.day = {LOCAL_END_DAY}""",
        "table", "watth", BALANCE_COLUMNS, ("daily_balance",), w=12, h=5, enterprise_column=None),
    Panel(
        "plant_month_balance", "stat",
        Text("本月电量平衡", "This month's balance"),
        Text("当地本月1日至今日的日电量平衡之和（daily_balance）。",
             "Sum of the stored daily balances from the 1st of the local month to the day of the range end."),
        f"""WITH e AS ({ONE_ENTERPRISE})
SELECT {', '.join(f'sum(b.{c})::bigint AS {c}' for c in BALANCE_COLUMNS)}
FROM reader.daily_balance b JOIN e USING (enterprise_id)
WHERE b.day BETWEEN date_trunc('month', {LOCAL_END_DAY})::date AND {LOCAL_END_DAY}
HAVING count(*) > 0""",
        "table", "watth", BALANCE_COLUMNS, ("daily_balance",), w=12, h=5, enterprise_column=None),
    Panel(
        "plant_ytd_share", "gauge",
        Text("年度绿电占比与年末预测（30%线）", "Year-to-date green share and year-end projection (30 % line)"),
        Text("规则R1（晋政规〔2024〕2号 §三(一)）：本年至今绿电占比与年末预测，30%含本数。",
             "Rule R1 (晋政规〔2024〕2号 §三(一)): the year-to-date green share and its year-end projection; "
             "30 % counts as reached."),
        """WITH e AS (SELECT enterprise_id FROM reader.enterprise WHERE code = '$enterprise')
SELECT g.share AS share, pr.projected_share AS projected_share
FROM reader.green_share_ytd g JOIN e USING (enterprise_id)
LEFT JOIN reader.green_share_projection pr ON pr.enterprise_id = g.enterprise_id AND pr.year = g.year
WHERE g.year = '$year'::int""",
        "table", "percentunit", ("share", "projected_share"), ("green_share_ytd", "green_share_projection"),
        thresholds=SHARE_STEPS, w=8, h=7, enterprise_column=None),
    Panel(
        "plant_ytd_missing", "stat",
        Text("距30%尚缺：电量与绿证", "Still missing for 30 %: energy and certificates"),
        Text("按R1现在尚缺的绿电、需购买的绿证（1证=1 MWh）和按预测到年末尚缺的绿电。",
             "Green energy missing now under R1, certificates to buy (1 certificate = 1 MWh) and the "
             "green energy missing by year end on the projection."),
        """WITH e AS (SELECT enterprise_id FROM reader.enterprise WHERE code = '$enterprise')
SELECT g.missing_wh, g.certificates_to_buy, pr.gap_year_end_wh
FROM reader.green_share_ytd g JOIN e USING (enterprise_id)
LEFT JOIN reader.green_share_projection pr ON pr.enterprise_id = g.enterprise_id AND pr.year = g.year
WHERE g.year = '$year'::int""",
        "table", "watth", ("missing_wh", "certificates_to_buy", "gap_year_end_wh"),
        ("green_share_ytd", "green_share_projection"), column_units={"certificates_to_buy": "none"},
        thresholds=((None, GREEN), (1, RED)), w=8, h=7, enterprise_column=None),
    Panel(
        "plant_ytd_status", "table",
        Text("R1 状态与数据完整度", "R1 status and completeness"),
        Text("状态为 unknown 表示已测区间不足95%。", "Status unknown: fewer than 95 % of the intervals are measured."),
        """WITH e AS (SELECT enterprise_id FROM reader.enterprise WHERE code = '$enterprise')
SELECT g.status, g.completeness, g.green_wh, g.consumption_wh, g.onsite_green_wh, g.trade_wh, g.certificate_wh,
       g.data_through
FROM reader.green_share_ytd g JOIN e USING (enterprise_id)
WHERE g.year = '$year'::int""",
        "table", "watth", ("status", "completeness", "green_wh", "consumption_wh", "onsite_green_wh", "trade_wh",
                           "certificate_wh", "data_through"),
        ("green_share_ytd",), column_units={"status": STATUS_UNIT, "completeness": "percentunit",
                                            "data_through": "dateTimeAsIso"},
        thresholds=COMPLETENESS_STEPS, w=8, h=7, enterprise_column=None),
    Panel(
        "plant_recycling", "table",
        Text("再生资源生产线用电与奖励（R2）", "Recycling line electricity and award (R2)"),
        Text("晋政规〔2024〕2号 §二(二)：回收生产线本年至今电量与奖励金额（资格判定中记录的数值）。",
             "晋政规〔2024〕2号 §二(二): the recycling line's electricity this year and the award, as the "
             "eligibility decision recorded them."),
        f"""WITH e AS (SELECT enterprise_id FROM reader.enterprise WHERE code = '$enterprise')
SELECT c.document, c.clause, c.status, (c.evidence #>> '{{inputs,recycling,energy_wh}}')::bigint AS recycling_wh,
       c.amount AS amount_yuan, c.evidence ->> 'data_through' AS data_through
FROM reader.eligibility_current c JOIN e USING (enterprise_id)
WHERE c.year = '$year'::int AND c.evidence ->> 'kind' = '{R2_KIND}'
ORDER BY c.document, c.clause""",
        "table", "watth", ("document", "clause", "status", "recycling_wh", "amount_yuan", "data_through"),
        ("eligibility_decision",), column_units={"document": STATUS_UNIT, "clause": STATUS_UNIT,
                                                 "status": STATUS_UNIT, "amount_yuan": "currencyCNY",
                                                 "data_through": STATUS_UNIT},
        w=12, h=6, enterprise_column=None),
    Panel(
        "plant_recycling_hourly", "timeseries",
        Text("再生资源生产线逐时电量", "Recycling line energy per hour"),
        Text("子项目计量点的小时电量汇总（energy_hourly）。", "Hourly rollup of the sub-project's meter (energy_hourly)."),
        """WITH e AS (SELECT enterprise_id FROM reader.enterprise WHERE code = '$enterprise')
SELECT $__timeGroupAlias(h.bucket_start, '1h'), sum(h.energy_wh)::bigint AS recycling_wh
FROM reader.energy_hourly h
WHERE h.point_id = ANY (ARRAY(SELECT p.point_id FROM reader.point p JOIN reader.device d USING (device_id)
                              JOIN reader.site s USING (site_id) JOIN e USING (enterprise_id)
                              WHERE p.role = 'subproject'))
  AND $__timeFilter(h.bucket_start)
GROUP BY 1 ORDER BY 1""",
        "time_series", "watth", ("time", "recycling_wh"), ("energy_hourly", "point", "device", "site"),
        w=12, h=6, enterprise_column=None),
    Panel(
        "plant_storage_checks", "table",
        Text("光伏储能补助核查（R3）", "PV and storage subsidy checks (R3)"),
        Text("晋政规〔2024〕2号 §三(一)：每个项目的判定、金额与原因。",
             "晋政规〔2024〕2号 §三(一): each project's decision, amount and reasons."),
        f"""WITH e AS (SELECT enterprise_id FROM reader.enterprise WHERE code = '$enterprise')
SELECT c.document, c.clause, c.subject, c.status, c.amount AS amount_yuan,
       array_to_string(ARRAY(SELECT jsonb_array_elements_text(coalesce(c.evidence -> 'reasons', '[]'))), '; ') AS reasons
FROM reader.eligibility_current c JOIN e USING (enterprise_id)
WHERE c.year = '$year'::int AND c.evidence ->> 'kind' = '{R3_KIND}'
ORDER BY c.document, c.subject""",
        "table", "currencyCNY", ("document", "clause", "subject", "status", "amount_yuan", "reasons"),
        ("eligibility_decision",), column_units={c: STATUS_UNIT for c in ("document", "clause", "subject", "status",
                                                                          "reasons")},
        w=12, h=6, enterprise_column=None),
    Panel(
        "plant_eligibility", "table",
        Text("资格判定：状态与条款", "Eligibility: status and clause"),
        Text("每条规则的当前版本（eligibility_current）。", "The current version of every rule's decision."),
        """WITH e AS (SELECT enterprise_id FROM reader.enterprise WHERE code = '$enterprise')
SELECT c.document, c.clause, c.rule, c.subject, c.status, c.amount AS amount_yuan, c.version, c.reason, c.decided_at
FROM reader.eligibility_current c JOIN e USING (enterprise_id)
WHERE c.year = '$year'::int
ORDER BY c.status = 'qualifies' DESC, c.document, c.clause, c.rule, c.subject""",
        "table", "currencyCNY", ("document", "clause", "rule", "subject", "status", "amount_yuan", "version", "reason",
                                 "decided_at"),
        ("eligibility_decision",),
        column_units={**{c: STATUS_UNIT for c in ("document", "clause", "rule", "subject", "status", "reason")},
                      "version": "none", "decided_at": "dateTimeAsIso"},
        w=24, h=9, enterprise_column=None),
    Panel(
        "plant_device_health", "table",
        Text("设备状态", "Device health"),
        Text("采集器报告的设备连接状态（away=无法连接）与未关闭的设备停更发现。",
             "The collector's view of each device (away = not answering) and any open stale-device finding."),
        """WITH e AS (SELECT enterprise_id FROM reader.enterprise WHERE code = '$enterprise')
SELECT d.name AS device, h.status, h.since, h.last_success, h.consecutive_failures, h.latency_ms, h.last_error,
       f.opened_at AS stale_since
FROM reader.device d JOIN reader.site s USING (site_id) JOIN e USING (enterprise_id)
LEFT JOIN reader.device_health h USING (device_id)
LEFT JOIN reader.dq_finding f ON f.device_id = d.device_id AND f.kind = 'stale_device' AND f.closed_at IS NULL
ORDER BY f.opened_at IS NULL, h.status = 'ok', d.name""",
        "table", "ms", ("device", "status", "since", "last_success", "consecutive_failures", "latency_ms",
                        "last_error", "stale_since"),
        ("device", "site", "device_health", "dq_finding"),
        column_units={"device": STATUS_UNIT, "status": STATUS_UNIT, "since": "dateTimeAsIso",
                      "last_success": "dateTimeAsIso", "consecutive_failures": "none", "last_error": STATUS_UNIT,
                      "stale_since": "dateTimeAsIso"},
        w=12, h=8, enterprise_column=None),
    Panel(
        "plant_dq_open", "table",
        Text("未关闭的数据质量发现", "Open data-quality findings"),
        Text("数据质量流程发现且尚未关闭的问题，以及时间范围内采集器报告的问题。",
             "Findings of the data-quality flow still open, and the collector's findings seen in the time range."),
        """WITH e AS (SELECT enterprise_id FROM reader.enterprise WHERE code = '$enterprise')
SELECT f.kind, d.name AS device, p.name AS point, f.opened_at AS since, f.detail
FROM reader.dq_finding f JOIN reader.device d USING (device_id) JOIN reader.site s USING (site_id)
JOIN e USING (enterprise_id) LEFT JOIN reader.point p ON p.point_id = f.point_id
WHERE f.closed_at IS NULL
UNION ALL
SELECT c.kind, d.name, c.source, c.last_seen, c.detail || ' (×' || c.count || ')'
FROM reader.collector_finding c JOIN reader.device d USING (device_id) JOIN reader.site s USING (site_id)
JOIN e USING (enterprise_id)
WHERE $__timeFilter(c.last_seen)
ORDER BY since DESC""",
        "table", STATUS_UNIT, ("kind", "device", "point", "since", "detail"),
        ("dq_finding", "collector_finding", "device", "site"), column_units={"since": "dateTimeAsIso"},
        w=12, h=8, enterprise_column=None),
]

# -- Park ----------------------------------------------------------------------------------------

PARK = [
    Panel(
        "park_live_load", "timeseries",
        Text("各企业实时负荷", "Live load by enterprise"),
        Text("园区绿色平台（晋政规〔2024〕2号 §一(四)）：各企业负荷=电网+光伏−储能，1分钟平均。",
             "Green-park platform (晋政规〔2024〕2号 §一(四)): each enterprise's load = grid + PV − battery, "
             "1-minute means."),
        f"""WITH e AS ({PARK_ENTERPRISES}),
k AS ({DEVICE_KIND}),
pw AS ({LIVE_POWER})
SELECT t AS "time", enterprise AS metric, sum(CASE kind WHEN 'battery' THEN -w ELSE w END) AS load_w
FROM pw GROUP BY t, enterprise ORDER BY t""",
        "time_series", "watt", ("time", "metric", "load_w"), ("reading", "point", "device"), w=24, h=9,
        enterprise_column="metric"),
    Panel(
        "park_green_ranking", "bargauge",
        Text("绿电占比排名（30%线）", "Green-share ranking (30 % line)"),
        Text("本年至今绿电占比（R1），由高到低；30%线为阈值。", "Year-to-date green share (R1), highest first; "
             "the threshold is the 30 % line."),
        f"""WITH e AS ({PARK_ENTERPRISES})
SELECT e.code AS enterprise, e.name, g.share, g.status
FROM reader.green_share_ytd g JOIN e USING (enterprise_id)
WHERE g.year = '$year'::int
ORDER BY g.share DESC NULLS LAST, e.code""",
        "table", "percentunit", ("enterprise", "name", "share", "status"), ("green_share_ytd",),
        column_units={"enterprise": STATUS_UNIT, "name": STATUS_UNIT, "status": STATUS_UNIT},
        thresholds=SHARE_STEPS, w=12, h=9, value_column="share"),
    Panel(
        "park_stale_devices", "table",
        Text("停更设备", "Stale devices"),
        Text("未关闭的设备停更发现，以及采集器报告无法连接的设备。",
             "Open stale-device findings and devices the collector reports as away."),
        f"""WITH e AS ({PARK_ENTERPRISES})
SELECT e.code AS enterprise, d.name AS device, f.opened_at AS stale_since, h.status, h.last_success
FROM reader.device d JOIN reader.site s USING (site_id) JOIN e USING (enterprise_id)
LEFT JOIN reader.device_health h USING (device_id)
LEFT JOIN reader.dq_finding f ON f.device_id = d.device_id AND f.kind = 'stale_device' AND f.closed_at IS NULL
WHERE f.finding_id IS NOT NULL OR h.status = 'away'
ORDER BY f.opened_at, e.code, d.name""",
        "table", "dateTimeAsIso", ("enterprise", "device", "stale_since", "status", "last_success"),
        ("device", "site", "device_health", "dq_finding"),
        column_units={"enterprise": STATUS_UNIT, "device": STATUS_UNIT, "status": STATUS_UNIT}, w=12, h=9),
    Panel(
        "park_completeness", "bargauge",
        Text("各企业数据完整度", "Completeness per enterprise"),
        Text("本年至今已测区间占比（R1 的完整度，95%线）。", "Share of the year's intervals measured (R1's "
             "completeness; 95 % line)."),
        f"""WITH e AS ({PARK_ENTERPRISES})
SELECT e.code AS enterprise, g.completeness
FROM reader.green_share_ytd g JOIN e USING (enterprise_id)
WHERE g.year = '$year'::int
ORDER BY g.completeness, e.code""",
        "table", "percentunit", ("enterprise", "completeness"), ("green_share_ytd",),
        column_units={"enterprise": STATUS_UNIT}, thresholds=COMPLETENESS_STEPS, w=12, h=8,
        value_column="completeness"),
    Panel(
        "park_intensity", "bargauge",
        Text("能耗强度排名（万元产值综合能耗）", "Energy intensity ranking (kgce per 10,000 yuan)"),
        Text("晋政规〔2024〕2号 §四(五) 分行业排名：年内综合能耗折标煤（外购电力当量值与计量燃料，GB/T 2589-2020）"
             "除以年内登记的工业总产值（万元），由低到高，排名为全行业内；缺产值则不排名。即 greengauge report intensity "
             "的结果（intensity_ytd，由 metrics 流程写入）。",
             "晋政规〔2024〕2号 §四(五), ranked within each industry: the year's comprehensive energy in standard coal "
             "(purchased electricity at equivalent value plus metered fuels, GB/T 2589-2020) over the gross output value "
             "recorded within the year, per 10,000 yuan, lowest first, ranked over the whole industry; no output value, "
             "no rank. What greengauge report intensity gives (intensity_ytd, written by the metrics flow)."),
        f"""WITH e AS ({PARK_ENTERPRISES})
SELECT e.code AS enterprise, i.industry, i.energy_kgce AS coal_equivalent_kgce, i.output_value_yuan,
       i.rows_without_output_value, i.kgce_per_10k_yuan, i.rank_in_industry
FROM reader.intensity_ytd i JOIN e USING (enterprise_id)
WHERE i.year = '$year'::int
ORDER BY i.industry, i.kgce_per_10k_yuan NULLS LAST, e.code""",
        "table", "suffix: kgce/万元", ("enterprise", "industry", "coal_equivalent_kgce", "output_value_yuan",
                                      "rows_without_output_value", "kgce_per_10k_yuan", "rank_in_industry"),
        ("intensity_ytd",),
        column_units={"enterprise": STATUS_UNIT, "industry": STATUS_UNIT, "coal_equivalent_kgce": "suffix: kgce",
                      "output_value_yuan": "currencyCNY", "rows_without_output_value": "none",
                      "rank_in_industry": "none"}, w=12, h=8, value_column="kgce_per_10k_yuan"),
    Panel(
        "park_totals", "stat",
        Text("园区合计", "Park totals"),
        Text("园区各企业本年至今用电、绿电、购电、碳排放（位置法）之和；园区绿电占比=绿电之和/用电之和。",
             "Sums over the park's enterprises this year: consumption, green, grid import, CO2 (location-based); "
             "park green share = sum of green / sum of consumption."),
        f"""WITH e AS ({PARK_ENTERPRISES})
SELECT count(*) AS enterprises, sum(g.consumption_wh)::bigint AS consumption_wh, sum(g.green_wh)::bigint AS green_wh,
       sum(g.green_wh)::numeric / nullif(sum(g.consumption_wh), 0) AS green_share,
       sum(c.grid_import_wh)::bigint AS grid_import_wh, sum(c.location_co2_kg) AS co2_kg
FROM reader.green_share_ytd g JOIN e USING (enterprise_id)
LEFT JOIN reader.carbon_ytd c ON c.enterprise_id = g.enterprise_id AND c.year = g.year
WHERE g.year = '$year'::int
HAVING count(*) > 0""",
        "table", "watth", ("enterprises", "consumption_wh", "green_wh", "green_share", "grid_import_wh", "co2_kg"),
        ("green_share_ytd", "carbon_ytd"),
        column_units={"enterprises": "none", "green_share": "percentunit", "co2_kg": "masskg"},
        thresholds=SHARE_STEPS, w=24, h=5, enterprise_column=None),
]

# -- Bureau --------------------------------------------------------------------------------------

# Links to the bureau API (docs/api.md). Every row links to the enterprise-year's verified figures,
# GET /v1/enterprises/{code}/years/{year}, from which a signed statement is issued (POST
# /v1/statements). When the schema has the API's `statement` table (its migration creates it; the
# tenancy gives it a reader view by enterprise), the row also carries the newest statement's id,
# linked to GET /v1/statements/{id}. Decided from the migrations when the dashboards are built, so
# the committed JSON changes (and the test comparing it with a fresh build fails) the day the table
# lands: run `greengauge dashboards build`.
FIGURES_URL = "${api_url}/v1/enterprises/${__data.fields.enterprise}/years/${__data.fields.year}"
STATEMENT_URL = "${api_url}/v1/statements/${__value.raw}"


def has_statements() -> bool:
    from store.migrate import migrations

    return any(re.search(r"CREATE TABLE\s+statement\s*\(", m.path.read_text(encoding="utf-8"))
               for m in migrations())


HAS_STATEMENTS = has_statements()


def bureau_yearly(with_statements: bool = HAS_STATEMENTS) -> Panel:
    join = """
LEFT JOIN LATERAL (SELECT st.statement_id::text AS statement FROM reader.statement st
                   WHERE st.enterprise_id = g.enterprise_id AND st.year = g.year
                   ORDER BY st.issued_at DESC LIMIT 1) st ON true""" if with_statements else ""
    extra = ("statement",) if with_statements else ()
    return Panel(
        "bureau_yearly", "table",
        Text("各企业年度核定数据", "Verified yearly figures per enterprise"),
        Text("存储的年度结果：绿电（R1）、完整度、碳排放与折标煤；链接到 API 的年度数据与签名报表。",
             "The stored year results: green share (R1), completeness, CO2 and standard coal; links to the API's "
             "year figures and signed statement."),
        f"""WITH e AS ({BUREAU_ENTERPRISES})
SELECT e.park, e.code AS enterprise, e.name, g.year, g.status, g.share, g.completeness, g.green_wh, g.consumption_wh,
       c.location_co2_kg AS co2_location_kg, c.market_co2_kg AS co2_market_kg, c.coal_equivalent_kgce,
       g.data_through, 'API' AS figures{', st.statement' if with_statements else ''}
FROM reader.green_share_ytd g JOIN e USING (enterprise_id)
LEFT JOIN reader.carbon_ytd c ON c.enterprise_id = g.enterprise_id AND c.year = g.year{join}
WHERE g.year = '$year'::int
ORDER BY e.park, e.code""",
        "table", "watth", ("park", "enterprise", "name", "year", "status", "share", "completeness", "green_wh",
                           "consumption_wh", "co2_location_kg", "co2_market_kg", "coal_equivalent_kgce",
                           "data_through", "figures") + extra,
        ("green_share_ytd", "carbon_ytd") + extra,
        column_units={**{c: STATUS_UNIT for c in ("park", "enterprise", "name", "status", "figures") + extra},
                      "year": "none", "share": "percentunit", "completeness": "percentunit",
                      "co2_location_kg": "masskg", "co2_market_kg": "masskg", "coal_equivalent_kgce": "suffix: kgce",
                      "data_through": "dateTimeAsIso"},
        thresholds=SHARE_STEPS, w=24, h=9,
        links={"figures": (Text("API 年度核定数据", "Verified figures in the API"), FIGURES_URL),
               **({"statement": (Text("签名报表", "Signed statement"), STATEMENT_URL)} if with_statements else {})})


BUREAU = [
    bureau_yearly(),
    Panel(
        "bureau_decisions", "table",
        Text("资格判定：版本与原因", "Eligibility decisions with versions and reasons"),
        Text("每一版本（从不覆盖），原因：first/new_data/late_data/ledger_change/rule_change。",
             "Every version (never overwritten) and why it was made: first, new_data, late_data, ledger_change, "
             "rule_change."),
        f"""WITH e AS ({BUREAU_ENTERPRISES})
SELECT e.code AS enterprise, d.document, d.clause, d.rule, d.subject, d.version, d.status, d.amount AS amount_yuan,
       d.reason, d.supersedes, d.decision_id, d.decided_at
FROM reader.eligibility_decision d JOIN e USING (enterprise_id)
WHERE d.year = '$year'::int
ORDER BY e.code, d.document, d.clause, d.rule, d.subject, d.version DESC""",
        "table", "currencyCNY", ("enterprise", "document", "clause", "rule", "subject", "version", "status",
                                 "amount_yuan", "reason", "supersedes", "decision_id", "decided_at"),
        ("eligibility_decision",),
        column_units={**{c: STATUS_UNIT for c in ("enterprise", "document", "clause", "rule", "subject", "status",
                                                  "reason")},
                      "version": "none", "supersedes": "none", "decision_id": "none", "decided_at": "dateTimeAsIso"},
        w=24, h=10),
    Panel(
        "bureau_completeness", "bargauge",
        Text("数据完整度", "Completeness"),
        Text("各企业本年至今已测区间占比（95%线）。", "Share of each enterprise's intervals measured this year "
             "(95 % line)."),
        f"""WITH e AS ({BUREAU_ENTERPRISES})
SELECT e.code AS enterprise, g.completeness
FROM reader.green_share_ytd g JOIN e USING (enterprise_id)
WHERE g.year = '$year'::int
ORDER BY g.completeness, e.code""",
        "table", "percentunit", ("enterprise", "completeness"), ("green_share_ytd",),
        column_units={"enterprise": STATUS_UNIT}, thresholds=COMPLETENESS_STEPS, w=24, h=8,
        value_column="completeness"),
]

DASHBOARDS = {"plant": PLANT, "park": PARK, "bureau": BUREAU}

# -- column headers and status words, in both languages ------------------------------------------

def _t(zh: str, en: str) -> Text:
    return Text(zh, en)


COLUMN_TITLES: dict[str, Text] = {
    "grid_w": _t("电网", "Grid"), "pv_w": _t("光伏", "PV"), "battery_w": _t("储能", "Battery"), "load_w": _t("负荷", "Load"),
    "consumption_wh": _t("用电量", "Consumption"), "import_wh": _t("购电", "Grid import"),
    "export_wh": _t("上网电量", "Grid export"), "pv_wh": _t("光伏发电", "PV generation"),
    "pv_self_consumed_wh": _t("光伏自用", "PV self-consumed"), "charge_wh": _t("储能充电", "Battery charge"),
    "discharge_wh": _t("储能放电", "Battery discharge"), "green_wh": _t("绿电", "Green"),
    "share": _t("绿电占比", "Green share"), "projected_share": _t("年末预测", "Year-end projection"),
    "missing_wh": _t("尚缺绿电", "Green still missing"), "certificates_to_buy": _t("需购绿证（张）", "Certificates to buy"),
    "gap_year_end_wh": _t("按预测年末尚缺", "Missing by year end"), "status": _t("状态", "Status"),
    "completeness": _t("完整度", "Completeness"), "onsite_green_wh": _t("厂内绿电", "On-site green"),
    "trade_wh": _t("绿电交易", "Green-power trades"), "certificate_wh": _t("绿证", "Certificates"),
    "data_through": _t("数据截至", "Data through"), "document": _t("文件", "Document"), "clause": _t("条款", "Clause"),
    "recycling_wh": _t("回收线电量", "Recycling line energy"), "amount_yuan": _t("金额", "Amount"),
    "subject": _t("对象", "Subject"), "reasons": _t("原因", "Reasons"), "rule": _t("规则", "Rule"),
    "version": _t("版本", "Version"), "reason": _t("本版本原因", "Why this version"), "decided_at": _t("判定时间", "Decided at"),
    "device": _t("设备", "Device"), "since": _t("起始", "Since"), "last_success": _t("最后成功", "Last success"),
    "consecutive_failures": _t("连续失败", "Failures in a row"), "latency_ms": _t("延迟", "Latency"),
    "last_error": _t("最后错误", "Last error"), "stale_since": _t("停更自", "Stale since"), "kind": _t("类型", "Kind"),
    "point": _t("计量点", "Point"), "detail": _t("详情", "Detail"), "enterprise": _t("企业", "Enterprise"),
    "name": _t("名称", "Name"), "industry": _t("行业", "Industry"),
    "coal_equivalent_kgce": _t("综合能耗（折标煤）", "Energy (standard coal)"),
    "output_value_yuan": _t("工业总产值", "Gross output value"),
    "rows_without_output_value": _t("缺产值记录", "Rows without output value"),
    "kgce_per_10k_yuan": _t("万元产值综合能耗", "kgce per 10,000 yuan"), "rank_in_industry": _t("行业内排名", "Rank in industry"),
    "enterprises": _t("企业数", "Enterprises"), "grid_import_wh": _t("购电", "Grid import"),
    "green_share": _t("园区绿电占比", "Park green share"), "co2_kg": _t("碳排放（位置法）", "CO2 (location-based)"),
    "park": _t("园区", "Park"), "year": _t("年度", "Year"), "co2_location_kg": _t("碳排放（位置法）", "CO2 location-based"),
    "co2_market_kg": _t("碳排放（市场法）", "CO2 market-based"), "statement": _t("签名报表", "Signed statement"),
    "figures": _t("核定数据", "Figures"),
    "supersedes": _t("替代判定", "Supersedes"), "decision_id": _t("判定编号", "Decision id"),
}
UNTITLED = {"time", "metric"}  # Grafana's own: the time axis, and the series name of a metric column

STATUS_WORDS: dict[str, tuple[Text, str]] = {  # value -> (shown as, colour)
    "qualifies": (_t("符合", "qualifies"), GREEN),
    "does_not_qualify": (_t("不符合", "does not qualify"), RED),
    "unknown": (_t("无法判定", "unknown"), ORANGE),
    "not_applicable": (_t("不适用", "not applicable"), "text"),
    "ok": (_t("正常", "ok"), GREEN),
    "away": (_t("离线", "away"), RED),
}
