"""The text of a finding, made here at the edge from its kind and data, in English or Chinese.

A finding (:class:`model.findings.Finding`) carries values, never a sentence; this table turns one
into a line for ``greengauge status``. A kind missing here, or a template whose values are missing
from a finding's data, falls back to the kind and its data as they are — never an error. Rows moved
from the old tables (and findings of callers that still make a sentence) carry ``data["text"]``,
shown as it is.
"""

from __future__ import annotations

from typing import Any

from model.findings import Finding

LANGUAGES = ("en", "zh")

#: kind -> language -> template over the finding's data (str.format); ``{subject}`` is what it is about
TEXT: dict[str, dict[str, str]] = {
    "unknown_topic": {"en": "a message on a topic no subscription or device maps",
                      "zh": "收到无订阅或设备对应的主题消息"},
    "unknown_point": {"en": "the device has no point for this quantity", "zh": "设备没有该量的测点"},
    "malformed_payload": {"en": "payload is not valid for its format", "zh": "消息内容格式不正确"},
    "wrong_type": {"en": "a value of the wrong type", "zh": "数值类型错误"},
    "not_a_number": {"en": "a value that is not a number", "zh": "数值不是数字"},
    "missing_field": {"en": "a mapped field is missing: nothing stored for it", "zh": "缺少映射字段，未存储"},
    "oversized_payload": {"en": "a payload larger than the limit", "zh": "消息内容超过大小上限"},
    "out_of_range": {"en": "a value beyond the plausible range", "zh": "数值超出合理范围"},
    "negative_counter": {"en": "a negative energy counter", "zh": "电量计数为负"},
    "past_timestamp": {"en": "a device timestamp before the sane floor", "zh": "设备时间早于合理下限"},
    "client_id_conflict": {"en": "another collector uses this MQTT client_id", "zh": "另一采集器使用了相同的 MQTT client_id"},
    "future_timestamp": {"en": "device time {device_time} is {ahead_s} s ahead; stored at the collector's time as suspect",
                         "zh": "设备时间 {device_time} 超前 {ahead_s} 秒；按采集器时间存储并标为可疑"},
    "counter_spike": {"en": "counter step of {step_wh} Wh in {seconds} s implies {implied_w} W, above the rated {rated_w} W; "
                      "suspect until the next reading confirms it",
                      "zh": "电量计数 {seconds} 秒内增加 {step_wh} Wh，折合 {implied_w} W，超过额定 {rated_w} W；待下一读数确认前标为可疑"},
    "suspect_drop": {"en": "counter fell from {from_wh} to {to_wh} Wh; suspect until the next reading confirms a reset "
                     "or returns to the counter",
                     "zh": "电量计数从 {from_wh} 降至 {to_wh} Wh；待下一读数确认复位或回到原计数前标为可疑"},
    "device_error": {"en": "{refused} of {values} values refused or not a number", "zh": "{values} 个数值中 {refused} 个被拒读或非数字"},
    "readings_dropped": {"en": "{readings} queued readings dropped ({dropped_total} so far): more than {max_queued} in memory, "
                         "the database {database}, spool {spool}",
                         "zh": "丢弃 {readings} 条排队读数（累计 {dropped_total}）：内存超过 {max_queued} 条，数据库{database}，缓存{spool}"},
    "spool_corrupt": {"en": "{readings} spooled readings set aside as corrupt ({reason}); they are not stored — look at the file",
                      "zh": "{readings} 条缓存读数因文件损坏被隔离（{reason}），未入库，请检查该文件"},
    "readings_rejected": {"en": "{readings} readings refused by the database since the collector started, set aside "
                          "in {set_aside}, not stored (latest: {first})",
                          "zh": "采集器启动以来 {readings} 条读数被数据库拒收，已另存于 {set_aside}，未入库（最近：{first}）"},
    "stale_device": {"en": "no reading since {last_reading} ({polls} poll intervals of {poll_interval_s} s)",
                     "zh": "自 {last_reading} 起无读数（超过 {polls} 个 {poll_interval_s} 秒采集周期）"},
    "gap": {"en": "no reading from {from} to {to}", "zh": "{from} 至 {to} 无读数"},
    "counter_drop": {"en": "counter fell from {from_wh} to {to_wh} Wh; no reset or replacement is recorded",
                     "zh": "电量计数从 {from_wh} 降至 {to_wh} Wh，无复位或换表记录"},
    "spike": {"en": "{readings} suspect readings", "zh": "{readings} 个可疑读数"},
    "clock_skew": {"en": "median arrival delay {median_delay_s} s over {readings} readings (tolerance {tolerance_s} s, "
                   "{ahead_tolerance_s} s ahead)",
                   "zh": "{readings} 个读数的到达延迟中位数 {median_delay_s} 秒（容差 {tolerance_s} 秒，超前 {ahead_tolerance_s} 秒）"},
    "low_completeness": {"en": "{readings} of {expected} expected readings in {window_h} h before {until} (threshold {threshold:.0%})",
                         "zh": "{until} 前 {window_h} 小时内仅 {readings}/{expected} 个读数（阈值 {threshold:.0%}）"},
}

#: words inside templates' values that are themselves translated
_WORDS = {"zh": {"away": "不可用", "slow": "缓慢", "full": "已满", "none": "未配置"}}


def describe(finding: Finding, lang: str = "en") -> str:
    """One line for ``finding`` in ``lang`` ('en' or 'zh')."""
    data: dict[str, Any] = dict(finding.data or {})
    if "text" in data:
        return str(data["text"])
    template = TEXT.get(str(finding.kind), {}).get(lang) or TEXT.get(str(finding.kind), {}).get("en")
    if template is not None:
        words = _WORDS.get(lang, {})
        try:
            return template.format(**{k: words.get(v, v) if isinstance(v, str) else v for k, v in data.items()})
        except (KeyError, IndexError, ValueError):
            pass
    values = ", ".join(f"{k} {v}" for k, v in sorted(data.items()) if k not in ("device", "point"))
    return f"{finding.kind}: {values}" if values else str(finding.kind)


def subject(finding: Finding) -> str:
    """What a finding is about, by name: the point, else the device, else the source."""
    data = finding.data or {}
    return str(data.get("point") or data.get("device") or finding.subject.source or "")
