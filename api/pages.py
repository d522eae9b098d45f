"""The statement page: figures, status, clause, evidence summary and the signature's check, in
Chinese and English, printable.

The page renders what the signed payload says (decoded in the browser, not from the server's
tables) and verifies the JWS itself with the browser's WebCrypto Ed25519 against ``/v1/keys``:
a statement whose bytes were changed shows as invalid even when the server serving it is not
trusted. ``/v1/verify`` is the same page without a statement: paste one, or pass it after ``#``.
"""

from __future__ import annotations

import re
from typing import Any

_COMPACT = re.compile(r"^[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*$|^$")

_PAGE = r"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>绿色制造能源数据声明 Energy statement</title>
<style>
 body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#111;max-width:60em}
 h1{font-size:1.4em} table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}
 td,th{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top;font-size:.92em}
 th{background:#eee} .en{color:#555;font-size:.85em} .num{text-align:right;font-variant-numeric:tabular-nums}
 #check{padding:.6em 1em;font-weight:bold;border:2px solid #999}
 #check.valid{border-color:#080;color:#080} #check.invalid{border-color:#b00;color:#b00}
 textarea{width:100%;height:6em;font-family:monospace} .mono{font-family:monospace;word-break:break-all;font-size:.8em}
 @media print{textarea,#paste,button{display:none} body{margin:0}}
</style></head><body>
<h1>绿色制造能源数据声明 <span class="en">Signed energy statement</span></h1>
<div id="check" data-state="pending">签名校验中… <span class="en">checking the signature…</span></div>
<div id="paste"><p>粘贴声明 (JWS) <span class="en">paste a statement (JWS compact)</span></p>
<textarea id="jwsin"></textarea><button id="go">校验 Verify</button></div>
<div id="out"></div>
<script type="application/jose" id="jws">__JWS__</script>
<script>
"use strict";
const L = {
 enterprise:["企业","Enterprise"], year:["年度","Year"], data_through:["数据截至","Data through"],
 code_version:["程序版本","Code version"], statement_id:["声明编号","Statement"], issued_at:["签发时间","Issued"],
 green_share:["绿色电力消费占比（规则R1）","Green-electricity share (rule R1)"],
 share:["占比","Share"], status:["判定","Status"], green_wh:["绿电量 Wh","Green Wh"],
 consumption_wh:["总用电量 Wh","Consumption Wh"], onsite_green_wh:["自发自用绿电 Wh","On-site green Wh"],
 trade_wh:["绿电交易 Wh","Green trades Wh"], certificate_wh:["绿证 Wh","Certificates Wh"],
 completeness:["数据完整率","Completeness"], missing_wh:["距30%尚缺 Wh","Missing to 30 % Wh"],
 carbon:["碳排放与标准煤","Carbon and standard coal"], grid_import_wh:["外购电量 Wh","Grid import Wh"],
 location_co2_kg:["碳排放（基于位置）kg","CO2 location-based kg"], market_co2_kg:["碳排放（基于市场）kg","CO2 market-based kg"],
 coal_equivalent_kgce:["标准煤（当量值）kgce","Standard coal (equivalent) kgce"], note:["说明","Note"],
 projection:["年末预测","Year-end projection"], projected_share:["预测占比","Projected share"],
 gap_year_end_wh:["年末缺口 Wh","Gap at year end Wh"],
 checks:["资格判定","Eligibility checks"], inputs:["输入摘要","Input digests"], documents:["政策文件","Policy documents"]
};
const b64u = s => { s = s.replace(/-/g,"+").replace(/_/g,"/"); while (s.length % 4) s += "=";
  return Uint8Array.from(atob(s), c => c.charCodeAt(0)); };
const esc = v => String(v ?? "—").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const lab = k => L[k] ? `${L[k][0]} <span class="en">${L[k][1]}</span>` : esc(k);
function pct(v){ return v == null ? "—" : (Number(v) * 100).toFixed(2) + " %"; }
function table(obj, keys){
  if (!obj) return "<p>—（无数据 <span class=en>no stored figure</span>）</p>";
  return "<table>" + keys.filter(k => k in obj).map(k =>
    `<tr><th>${lab(k)}</th><td class="num" data-k="${k}">${esc(k.includes("share") && !k.includes("wh") ? pct(obj[k]) : obj[k])}</td></tr>`
  ).join("") + "</table>";
}
function render(p){
  const e = p.enterprise || {};
  let h = `<table><tr><th>${lab("enterprise")}</th><td id="ent">${esc(e.name)} (${esc(e.code)})</td></tr>
   <tr><th>${lab("year")}</th><td id="year">${esc(p.year)}</td></tr>
   <tr><th>${lab("data_through")}</th><td>${esc(p.data_through)}</td></tr>
   <tr><th>${lab("statement_id")}</th><td class="mono">${esc(p.statement_id)}</td></tr>
   <tr><th>${lab("issued_at")}</th><td>${esc(p.issued_at)}</td></tr>
   <tr><th>${lab("code_version")}</th><td>${esc(p.code_version)}</td></tr></table>`;
  h += `<h2>${lab("green_share")}</h2>` + table(p.green_share, ["share","status","green_wh","consumption_wh",
        "onsite_green_wh","trade_wh","certificate_wh","completeness","missing_wh"]);
  h += `<h2>${lab("projection")}</h2>` + table(p.projection, ["projected_share","gap_year_end_wh"]);
  h += `<h2>${lab("carbon")}</h2>` + table(p.carbon, ["status","grid_import_wh","location_co2_kg","market_co2_kg",
        "coal_equivalent_kgce","note"]);
  const rows = [];
  for (const [g, ds] of Object.entries(p.checks || {})) for (const d of ds) rows.push(
    `<tr><td>${esc(g)}</td><td>${esc(d.document)} ${esc(d.clause)}</td><td>${esc(d.rule)} ${esc(d.subject)}</td>
     <td class="status">${esc(d.status)}</td><td class="num">${esc(d.amount)}</td><td>v${esc(d.version)} ${esc(d.reason)}</td>
     <td class="mono">${esc((d.evidence_hash||"").slice(0,16))}…</td></tr>`);
  h += `<h2>${lab("checks")}</h2><table><tr><th>组 group</th><th>文件条款 document, clause</th><th>规则 rule</th>
        <th>判定 status</th><th>金额 amount (元)</th><th>版本 version</th><th>证据 evidence sha256</th></tr>${rows.join("")}</table>`;
  const inp = Object.entries(p.inputs || {}).map(([k, v]) =>
    `<tr><th>${esc(k)}</th><td class="mono">${esc(v.sha256)}</td><td class="num">${esc(v.rows)}</td></tr>`).join("");
  h += `<h2>${lab("inputs")}</h2><table>${inp}</table>`;
  const docs = (p.documents || []).map(d => `<tr><td>${esc(d.number)}</td><td>${esc(d.title)}</td>
        <td class="mono">${esc(d.sha256)}</td></tr>`).join("");
  h += `<h2>${lab("documents")}</h2><table>${docs}</table>`;
  document.getElementById("out").innerHTML = h;
}
function mark(ok, why){
  const c = document.getElementById("check");
  c.className = ok ? "valid" : "invalid"; c.dataset.state = ok ? "valid" : "invalid";
  c.innerHTML = ok ? `签名有效 <span class="en">signature valid</span> (${esc(why)})`
                   : `签名无效 <span class="en">signature INVALID</span>: ${esc(why)}`;
}
async function check(jws){
  jws = jws.trim();
  const parts = jws.split(".");
  if (parts.length !== 3) { mark(false, "not a JWS compact serialisation"); return; }
  let header, payload;
  try { header = JSON.parse(new TextDecoder().decode(b64u(parts[0])));
        payload = JSON.parse(new TextDecoder().decode(b64u(parts[1]))); }
  catch (e) { mark(false, "the statement cannot be decoded"); return; }
  render(payload);
  try {
    if (header.alg !== "EdDSA") throw new Error("algorithm " + header.alg);
    const jwks = await (await fetch("/v1/keys")).json();
    const jwk = jwks.keys.find(k => k.kid === header.kid);
    if (!jwk) throw new Error("key " + header.kid + " is not in /v1/keys");
    const key = await crypto.subtle.importKey("jwk", {kty: jwk.kty, crv: jwk.crv, x: jwk.x}, {name: "Ed25519"}, false, ["verify"]);
    const ok = await crypto.subtle.verify({name: "Ed25519"}, key, b64u(parts[2]),
                                          new TextEncoder().encode(parts[0] + "." + parts[1]));
    mark(ok, ok ? "Ed25519, key " + header.kid : "the signature does not match the content");
  } catch (e) { mark(false, e.message); }
}
const embedded = document.getElementById("jws").textContent.trim();
const fromHash = decodeURIComponent(location.hash.slice(1));
if (embedded) { document.getElementById("paste").style.display = "none"; check(embedded); }
else if (fromHash) { check(fromHash); }
else { const c = document.getElementById("check"); c.dataset.state = "waiting";
       c.innerHTML = "请粘贴声明 <span class=en>paste a statement</span>"; }
document.getElementById("go").onclick = () => check(document.getElementById("jwsin").value);
</script></body></html>
"""


def statement_html(s: dict[str, Any] | None) -> str:
    jws = s["jws"] if s else ""
    # a compact JWS is base64url and dots only, so it cannot end the script element it sits in
    if not _COMPACT.match(jws):
        jws = ""
    return _PAGE.replace("__JWS__", jws)
