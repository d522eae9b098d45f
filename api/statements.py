"""Signed statements: one enterprise-year frozen, as docs/api.md describes.

The payload is canonical JSON (keys sorted, no spaces, UTF-8, exact numbers as strings) of the
figures exactly as :func:`api.figures.year_figures` reads them, plus input digests, the policy
documents' hashes, the code version and ``data_through``. It is signed with
:func:`api.signing.sign` and stored in table ``statement``; the same payload is what
``greengauge statement verify`` compares with the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version as package_version
from typing import Any
from zoneinfo import ZoneInfo

from api import figures
from api.signing import sign

FORMAT = "greengauge-statement/1"
ISSUER = "GreenGauge"


def code_version() -> str:
    try:
        return package_version("greengauge")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _year_bounds(year: int, tz: str) -> tuple[datetime, datetime]:
    z = ZoneInfo(tz)
    return datetime(year, 1, 1, tzinfo=z).astimezone(timezone.utc), datetime(year + 1, 1, 1, tzinfo=z).astimezone(timezone.utc)


def frozen_figures(conn, code: str, year: int) -> dict[str, Any] | None:
    """The part of a statement the database decides: figures, evidence and input digests
    (canonical JSON values). None when the enterprise is not visible."""
    f = figures.year_figures(conn, code, year)
    if f is None:
        return None
    e = f["enterprise"]
    start, end = _year_bounds(year, e["timezone"])
    through = f["data_through"] or start
    inputs = {"interval_energy": figures.interval_digest(conn, e["enterprise_id"], start, min(through, end)),
              **figures.recorded_digests(conn, e["enterprise_id"], year)}
    e = {k: e[k] for k in ("code", "name", "park", "timezone", "industry")}
    return figures.jsonable({**f, "enterprise": e, "inputs": inputs})


def build_payload(conn, code: str, year: int, *, statement_id: str, issued_at: datetime) -> dict[str, Any] | None:
    frozen = frozen_figures(conn, code, year)
    if frozen is None:
        return None
    return {"format": FORMAT, "iss": ISSUER, "statement_id": statement_id, "iat": int(issued_at.timestamp()),
            "issued_at": issued_at.isoformat(), "code_version": code_version(),
            "documents": [{k: d[k] for k in ("number", "title", "source", "sha256")} for d in figures.policy_documents()],
            **frozen}


def issue(conn, code: str, year: int, key) -> tuple[dict[str, Any], str] | None:
    """Build and sign a statement of ``code``'s ``year`` from what the connection may see."""
    sid = str(uuid.uuid4())
    payload = build_payload(conn, code, year, statement_id=sid, issued_at=datetime.now(timezone.utc).replace(microsecond=0))
    if payload is None:
        return None
    return payload, sign(figures.canonical(payload), key)


def payload_of(jws: str) -> dict[str, Any]:
    """The payload of a compact JWS, decoded without checking the signature (for display only)."""
    part = jws.strip().split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def payload_sha256(jws: str) -> str:
    part = jws.strip().split(".")[1]
    return hashlib.sha256(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))).hexdigest()


#: the members of a payload the database decides (compared by ``statement verify``)
COMPARED = ("enterprise", "year", "data_through", "green_share", "ledger", "projection", "carbon", "checks",
            "production", "inputs")


def differences(stated: Any, now: Any, path: str = "") -> list[str]:
    """Every member whose value differs between the statement and a fresh read, as ``path: a -> b``."""
    if isinstance(stated, dict) and isinstance(now, dict):
        out = []
        for k in sorted(set(stated) | set(now)):
            p = f"{path}.{k}" if path else k
            if k not in now:
                out.append(f"{p}: {_short(stated[k])} -> (absent now)")
            elif k not in stated:
                out.append(f"{p}: (absent in the statement) -> {_short(now[k])}")
            else:
                out.extend(differences(stated[k], now[k], p))
        return out
    if isinstance(stated, list) and isinstance(now, list):
        if len(stated) != len(now):
            return [f"{path}: {len(stated)} entries -> {len(now)}"]
        return [d for i, (a, b) in enumerate(zip(stated, now)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if stated == now else [f"{path}: {_short(stated)} -> {_short(now)}"]


def _short(v: Any) -> str:
    s = json.dumps(v, ensure_ascii=False, default=str)
    return s if len(s) <= 80 else s[:77] + "..."


def fujian_indicators(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The yearly indicators metered energy decides, for the Fujian dynamic-management report
    (福建省绿色制造梯度培育管理实施细则 第十四条: listed units report their key green indicators
    each year before 1 April), each with its source in the statement."""
    g, c, p = payload.get("green_share") or {}, payload.get("carbon") or {}, payload.get("projection") or {}
    rows = [
        ("total_electricity_kwh", "综合用电量", "kWh", _kwh(g.get("consumption_wh")), "green_share.consumption_wh"),
        ("green_electricity_kwh", "绿色电力消费量", "kWh", _kwh(g.get("green_wh")), "green_share.green_wh"),
        ("onsite_renewable_kwh", "自发自用可再生能源电量", "kWh", _kwh(g.get("onsite_green_wh")), "green_share.onsite_green_wh"),
        ("green_trade_kwh", "绿电交易电量", "kWh", _kwh(g.get("trade_wh")), "green_share.trade_wh"),
        ("certificate_kwh", "绿证电量", "kWh", _kwh(g.get("certificate_wh")), "green_share.certificate_wh"),
        ("green_share_percent", "绿色电力消费占比", "%", _pct(g.get("share")), "green_share.share"),
        ("green_share_status", "绿电占比30%判定", "", g.get("status"), "green_share.status"),
        ("grid_import_kwh", "外购电量", "kWh", _kwh(c.get("grid_import_wh")), "carbon.grid_import_wh"),
        ("co2_location_t", "外购电力碳排放（基于位置）", "tCO2", _t(c.get("location_co2_kg")), "carbon.location_co2_kg"),
        ("co2_market_t", "外购电力碳排放（基于市场）", "tCO2", _t(c.get("market_co2_kg")), "carbon.market_co2_kg"),
        ("standard_coal_tce", "综合能源消费量（当量值）", "tce", _t(c.get("coal_equivalent_kgce")), "carbon.coal_equivalent_kgce"),
        ("projected_green_share_percent", "年末绿电占比预测", "%", _pct(p.get("projected_share")), "projection.projected_share"),
    ]
    for d in (payload.get("checks") or {}).get("intensity", []):
        rows.append((f"unit_energy:{d.get('subject') or d.get('rule')}", "单位产品综合能耗判定", "", d.get("status"),
                     f"checks.intensity[{d.get('decision_id')}]"))
    return [{"indicator": k, "name_zh": zh, "unit": u, "value": v, "source": src} for k, zh, u, v, src in rows]


def _dec(v):
    return None if v is None else Decimal(str(v))


def _kwh(wh) -> str | None:
    d = _dec(wh)
    return None if d is None else str((d / 1000).quantize(_dec("0.001")))


def _t(kg) -> str | None:
    d = _dec(kg)
    return None if d is None else str((d / 1000).quantize(_dec("0.001")))


def _pct(share) -> str | None:
    d = _dec(share)
    return None if d is None else str((d * 100).quantize(_dec("0.01")))
