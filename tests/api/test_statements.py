"""Signed statements: issued by the API from stored figures, verified with an independent JOSE
library (jwcrypto; the API signs with joserfc), a tampered byte fails, and
`greengauge statement verify` checks offline and against the database."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import psycopg
import pytest
from jwcrypto import jwk, jws

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def issued(plant_api):
    with plant_api.client("bureau") as c:
        r = c.post("/v1/statements", json={"enterprise": "jj-shoes", "year": 2025})
        assert r.status_code == 201, r.text
        keys = c.get("/v1/keys").json()
    return r.json(), keys


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _jwcrypto_verify(token: str, keys: dict) -> bytes:
    key_set = jwk.JWKSet.from_json(json.dumps(keys))
    header = json.loads(_b64(token.split(".")[0]))
    obj = jws.JWS()
    obj.deserialize(token)
    obj.verify(key_set.get_key(header["kid"]), alg="EdDSA")
    return obj.payload


def test_statement_verifies_with_jwcrypto_and_holds_the_stored_figures(plant_api, issued):
    s, keys = issued
    payload = json.loads(_jwcrypto_verify(s["jws"], keys))
    assert payload == s["payload"]
    header = json.loads(_b64(s["jws"].split(".")[0]))
    assert header["alg"] == "EdDSA" and header["kid"] == s["kid"] == keys["keys"][0]["kid"]
    assert keys["keys"][0]["crv"] == "Ed25519" and "d" not in keys["keys"][0]  # never the private part
    # the stored rows, read by the owner: the statement carries them exactly (integers stay integers)
    with psycopg.connect(plant_api.db_url) as conn:
        green, cons, status, through = conn.execute(
            """SELECT g.green_wh, g.consumption_wh, g.status, g.data_through FROM green_share_ytd g
               JOIN enterprise e USING (enterprise_id) WHERE e.code = 'jj-shoes' AND g.year = 2025""").fetchone()
        n_decisions = conn.execute("""SELECT count(*) FROM eligibility_current c JOIN enterprise e USING (enterprise_id)
                                      WHERE e.code = 'jj-shoes' AND c.year = 2025""").fetchone()[0]
        intervals = conn.execute("""SELECT count(*) FROM interval_energy i JOIN point p USING (point_id)
                                    JOIN device d USING (device_id) JOIN site s USING (site_id)
                                    JOIN enterprise e USING (enterprise_id)
                                    WHERE e.code = 'jj-shoes' AND i.bucket_start < %s""", (through,)).fetchone()[0]
    g = payload["green_share"]
    assert (g["green_wh"], g["consumption_wh"], g["status"]) == (green, cons, status)
    assert cons > 0 and green > 0  # a sunny June day of the demo plant
    assert payload["data_through"] == through.isoformat()
    assert sum(len(v) for v in payload["checks"].values()) == n_decisions > 0
    assert {d["rule"] for d in payload["checks"]["R1"]} == {"green-share-priority"}
    assert [c["serial_prefix"] for c in payload["ledger"]["certificates"]] == ["GEC-PLANT-"]
    assert payload["inputs"]["interval_energy"]["rows"] == intervals > 0
    assert all(len(d["sha256"]) == 64 for d in payload["documents"])
    assert payload["code_version"] and payload["format"] == "greengauge-statement/1"


def test_a_tampered_byte_fails_in_jwcrypto(issued):
    s, keys = issued
    head, body, sig = s["jws"].split(".")
    raw = bytearray(_b64(body))
    i = raw.index(b'"green_wh":') + len(b'"green_wh":')
    raw[i] = ord("9") if raw[i] != ord("9") else ord("8")  # one digit of the green energy changed
    forged = ".".join([head, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode(), sig])
    with pytest.raises(jws.InvalidJWSSignature):
        _jwcrypto_verify(forged, keys)
    sig_bytes = bytearray(_b64(sig))
    sig_bytes[0] ^= 1  # one bit of the signature
    with pytest.raises(jws.InvalidJWSSignature):
        _jwcrypto_verify(".".join([head, body, base64.urlsafe_b64encode(bytes(sig_bytes)).rstrip(b"=").decode()]), keys)


def test_get_statement_is_tenant_scoped(plant_api, issued):
    s, _ = issued
    url = f"/v1/statements/{s['statement_id']}"
    with plant_api.client("plant") as c:
        assert c.get(url).json()["jws"] == s["jws"]
        r = c.get(url, headers={"Accept": "application/jose"})
        assert r.headers["content-type"].startswith("application/jose") and r.text == s["jws"]
    for other in ("ea1", "pa", "pb"):
        with plant_api.client(other) as c:
            assert c.get(url).status_code == 404
            assert c.get(url + "/fujian.json").status_code == 404
            assert c.get(url + "/page").status_code == 404
            # and none may freeze another tenant's enterprise
            assert c.post("/v1/statements", json={"enterprise": "jj-shoes", "year": 2025}).status_code == 404


def test_a_year_without_stored_figures_is_not_stated(plant_api):
    with plant_api.client("plant") as c:
        r = c.post("/v1/statements", json={"enterprise": "jj-shoes", "year": 2031})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "year"


def _cli(*args, env_url=None, cwd=None):
    import os

    env = {**os.environ, **({"GREENGAUGE_DATABASE_URL": env_url} if env_url else {})}
    return subprocess.run([sys.executable, "-m", "greengauge", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def test_cli_verifies_offline_and_against_the_database(plant_api, issued, tmp_path):
    s, keys = issued
    (tmp_path / "s.jws").write_text(s["jws"])
    (tmp_path / "s.json").write_text(json.dumps(s))
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    for f in ("s.jws", "s.json"):
        r = _cli("statement", "verify", str(tmp_path / f), "--jwks", str(tmp_path / "keys.json"))
        assert r.returncode == 0, r.stderr
        assert "valid" in r.stdout and s["statement_id"] in r.stdout
    # the keys straight from the server's URL
    r = _cli("statement", "verify", str(tmp_path / "s.jws"), "--jwks", plant_api.base + "/v1/keys")
    assert r.returncode == 0, r.stderr
    r = _cli("statement", "verify", str(tmp_path / "s.jws"), "--jwks", str(tmp_path / "keys.json"), "--database",
             env_url=plant_api.db_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "every figure, status and input digest equals the database now" in r.stdout
    assert "rule R1 and the projection give the stated figures" in r.stdout  # recomputed by the metrics flow's functions
    assert "recomputed carbon and standard coal: the stated figures" in r.stdout  # flows.metrics.carbon_row
    assert "re-evaluated by the policy engine: every stated decision's status and amount" in r.stdout
    # tampered: invalid, exit 1
    head, body, sig = s["jws"].split(".")
    forged = json.loads(_b64(body))
    forged["green_share"]["green_wh"] += 1
    fb = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    (tmp_path / "forged.jws").write_text(f"{head}.{fb}.{sig}")
    r = _cli("statement", "verify", str(tmp_path / "forged.jws"), "--jwks", str(tmp_path / "keys.json"))
    assert r.returncode == 1 and "INVALID" in r.stderr
    # the database moves on: a trade is entered for the year; the statement is still valid, the
    # ledger (and its digest) now differ, and verify says what
    with plant_api.client("plant-writer") as c:
        w = c.post("/v1/enterprises/jj-shoes/ledger",
                   json={"entries": [{"kind": "trade", "reference": "T-LATE-1", "settled_on": "2025-06-21",
                                      "mwh": "1.5"}]})
        assert w.status_code == 201, w.text
    r = _cli("statement", "verify", str(tmp_path / "s.jws"), "--jwks", str(tmp_path / "keys.json"), "--database",
             env_url=plant_api.db_url)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "differs: inputs.ledger.sha256" in r.stdout and "differs: ledger.trades: 0 entries -> 1" in r.stdout
    # the recomputation counts the new trade: 1.5 MWh more green than stated
    assert f"green_share.trade_wh recomputed from interval energy: 0 -> 1500000" in r.stdout
    # and the year-end projection counts it (not scaled: 15873575 + 1500000)
    assert "projection.projected_green_wh recomputed from interval energy: 15873575 -> 17373575" in r.stdout
    # and carbon: the trade covers 1.5 MWh more of the purchased electricity, market-based CO2 falls
    assert "differs: carbon.green_trade_wh recomputed: 0 -> 1500000" in r.stdout
    assert "differs: carbon.market_covered_wh recomputed: 2000000 -> 3500000" in r.stdout
    with psycopg.connect(plant_api.db_url) as conn:  # the stored figures never counted it: take it back out
        conn.execute("DELETE FROM green_trade WHERE reference = 'T-LATE-1'")


def test_cli_verify_re_evaluates_the_stated_decisions(plant_api, tmp_path):
    # a statement issued now (whatever earlier tests added), so it equals the database
    with plant_api.client("bureau") as c:
        r = c.post("/v1/statements", json={"enterprise": "jj-shoes", "year": 2025})
        assert r.status_code == 201, r.text
        (tmp_path / "keys.json").write_text(json.dumps(c.get("/v1/keys").json()))
    (tmp_path / "s.jws").write_text(r.json()["jws"])
    args = ("statement", "verify", str(tmp_path / "s.jws"), "--jwks", str(tmp_path / "keys.json"), "--database")
    r = _cli(*args, env_url=plant_api.db_url)
    assert r.returncode == 0, r.stdout + r.stderr
    # after the statement the plant records a national green factory listing of 2025-03-01
    # (inside the decisions' period): the policy engine now qualifies it under 晋政规〔2024〕2号 §一(一)
    with psycopg.connect(plant_api.db_url) as conn:
        conn.execute("""INSERT INTO enterprise_fact (enterprise_id, kind, fact_date, level, reference)
                        SELECT enterprise_id, 'green_factory', '2025-03-01', 'national', 'T-GF-1' FROM enterprise
                        WHERE code = 'jj-shoes'""")
        decisions = conn.execute("SELECT count(*) FROM eligibility_decision").fetchone()[0]
    try:
        r = _cli(*args, env_url=plant_api.db_url)
        assert r.returncode == 3, r.stdout + r.stderr
        out = " ".join(r.stdout.split())  # rich wraps long lines
        assert "differs: decision 晋政规〔2024〕2号 §一(一) green-factory-national re-evaluated: " \
               "status does_not_qualify [year 2025] -> qualifies [fact green_factory/national 2025-03-01], " \
               "amount None -> 200000.00" in out, out
        assert "inputs.facts" in out  # the recorded facts' digest moved too
        with psycopg.connect(plant_api.db_url) as conn:  # verifying wrote no decision
            assert conn.execute("SELECT count(*) FROM eligibility_decision").fetchone()[0] == decisions
    finally:
        with psycopg.connect(plant_api.db_url) as conn:
            conn.execute("DELETE FROM enterprise_fact WHERE reference = 'T-GF-1'")
    r = _cli(*args, env_url=plant_api.db_url)
    assert r.returncode == 0, r.stdout + r.stderr


def test_fujian_report_json_and_xlsx_carry_the_signature(plant_api, issued):
    import io

    from openpyxl import load_workbook

    s, keys = issued
    with plant_api.client("plant") as c:
        j = c.get(f"/v1/statements/{s['statement_id']}/fujian.json").json()
        x = c.get(f"/v1/statements/{s['statement_id']}/fujian.xlsx")
    assert j["statement"]["jws"] == s["jws"] and j["due_before"] == "2026-04-01"
    ind = {i["indicator"]: i for i in j["indicators"]}
    # kWh from the statement's exact Wh, three decimals, no float on the way
    assert ind["total_electricity_kwh"]["value"] == f"{s['payload']['green_share']['consumption_wh'] / 1000:.3f}"
    assert ind["green_share_status"]["value"] == s["payload"]["green_share"]["status"]
    wb = load_workbook(io.BytesIO(x.content))
    rows = {r[0]: r for r in wb["指标 indicators"].iter_rows(values_only=True) if r}
    assert rows["total_electricity_kwh"][3] == ind["total_electricity_kwh"]["value"]
    parts = [r[1] for r in wb["签名 signature"].iter_rows(values_only=True) if r[0] and str(r[0]).startswith("part ")]
    assert "".join(parts) == s["jws"]
    _jwcrypto_verify("".join(parts), keys)  # the signature carried in the workbook verifies
