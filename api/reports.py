"""The Fujian annual report: the indicators metered energy decides, per enterprise-year.

福建省绿色制造梯度培育管理实施细则（暂行）第十四条: every listed unit reports its key green
indicators through the provincial system before 1 April of the following year. Each indicator is
taken from a signed statement (never recomputed) and names its member of the statement payload;
the report carries the statement's JWS, so the province checks it as docs/api.md describes.
"""

from __future__ import annotations

import io
from typing import Any

from api.statements import fujian_indicators

CLAUSE = "福建省绿色制造梯度培育管理实施细则（暂行）第十四条"
#: an Excel cell holds at most 32 767 characters: the JWS is split over rows, to be joined in order
_CELL = 32_000


def fujian_json(s: dict[str, Any]) -> dict[str, Any]:
    p = s["payload"]
    return {"report": "绿色制造名单单位动态管理 年度关键指标 (energy indicators)", "clause": CLAUSE,
            "due_before": f"{s['year'] + 1}-04-01", "enterprise": p.get("enterprise"), "year": s["year"],
            "data_through": p.get("data_through"), "indicators": fujian_indicators(p),
            "statement": {"statement_id": s["statement_id"], "kid": s["kid"], "jws": s["jws"],
                          "keys": "/v1/keys"}}


def fujian_xlsx(s: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    r = fujian_json(s)
    wb = Workbook()
    ws = wb.active
    ws.title = "指标 indicators"
    e = r["enterprise"] or {}
    ws.append(["报告 report", r["report"]])
    ws.append(["依据 clause", CLAUSE])
    ws.append(["企业 enterprise", f"{e.get('name', '')} ({e.get('code', '')})"])
    ws.append(["年度 year", r["year"]])
    ws.append(["数据截至 data through", r["data_through"]])
    ws.append(["报送期限 due before", r["due_before"]])
    ws.append([])
    ws.append(["指标 indicator", "名称", "单位 unit", "数值 value", "来源 source (statement payload)"])
    for c in ws[ws.max_row]:
        c.font = Font(bold=True)
    for i in r["indicators"]:
        ws.append([i["indicator"], i["name_zh"], i["unit"], i["value"], i["source"]])
    ws.column_dimensions["A"].width = 32
    ws.column_dimensions["B"].width = 28
    ws.column_dimensions["E"].width = 36
    sig = wb.create_sheet("签名 signature")
    sig.append(["statement_id", r["statement"]["statement_id"]])
    sig.append(["kid", r["statement"]["kid"]])
    sig.append(["keys", r["statement"]["keys"]])
    sig.append(["jws (join the cells of column B below, in order)"])
    jws = r["statement"]["jws"]
    for n, k in enumerate(range(0, len(jws), _CELL)):
        sig.append([f"part {n + 1}", jws[k:k + _CELL]])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
