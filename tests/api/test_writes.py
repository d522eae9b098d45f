"""Data entry through the API: the store's validation, all or nothing, idempotent retries,
RFC 9457 problems naming the field; writes stay inside the token's scope (real PostgreSQL)."""

from __future__ import annotations

import uuid

import psycopg
import pytest


def _count(api, sql, *args):
    with psycopg.connect(api.db_url) as conn:
        return conn.execute(sql, args).fetchone()[0]


def test_ledger_entry_is_written_and_a_retry_with_the_same_key_writes_nothing_twice(api):
    key = str(uuid.uuid4())
    body = {"entries": [
        {"kind": "trade", "reference": "T-API-1", "settled_on": "2025-05-02", "mwh": "2.5"},
        {"kind": "gec", "serial_first": "GECAPI000001", "serial_last": "GECAPI000002", "production_month": "2025-04",
         "used_on": "2025-05-03", "trade": "T-API-1"},
    ]}
    with api.client("ea1-writer") as c:
        first = c.post("/v1/enterprises/EA1/ledger", json=body, headers={"Idempotency-Key": key})
        again = c.post("/v1/enterprises/EA1/ledger", json=body, headers={"Idempotency-Key": key})
        other = c.post("/v1/enterprises/EA1/ledger", json={"entries": body["entries"][:1]},
                       headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert first.json() == {"written": {"trades": 1, "certificate_ranges": 1}, "idempotency_key": key}
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert _count(api, "SELECT count(*) FROM green_trade WHERE reference = 'T-API-1'") == 1  # 2.5 MWh exact
    assert _count(api, "SELECT settled_wh FROM green_trade WHERE reference = 'T-API-1'") == 2_500_000
    assert _count(api, "SELECT count(*) FROM certificate WHERE serial_prefix = 'GECAPI'") == 1


def test_a_bad_entry_names_its_field_and_nothing_is_written(api):
    body = {"entries": [
        {"kind": "trade", "reference": "T-API-OK", "settled_on": "2025-05-02", "mwh": "1"},
        {"kind": "trade", "reference": "T-API-BAD", "settled_on": "2025-05-02", "mwh": "0.0000001"},
    ]}
    with api.client("ea1-writer") as c:
        r = c.post("/v1/enterprises/EA1/ledger", json=body)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    p = r.json()
    assert p["status"] == 422 and p["title"] and p["instance"] == "/v1/enterprises/EA1/ledger"
    # the pattern allows at most 6 decimals (exact Wh): refused before the store is asked
    assert p["errors"][0]["field"] == "entries/1/trade/mwh"
    assert _count(api, "SELECT count(*) FROM green_trade WHERE reference LIKE 'T-API-%%' AND reference <> 'T-API-1'") == 0


def test_the_store_refuses_and_the_whole_request_rolls_back(api):
    # the second trade repeats a reference the ledger already holds: the first is not kept either
    body = {"entries": [
        {"kind": "trade", "reference": "T-API-NEW", "settled_on": "2025-05-02", "mwh": "1"},
        {"kind": "trade", "reference": "T-secret-EA1", "settled_on": "2025-05-02", "mwh": "1"},
    ]}
    with api.client("ea1-writer") as c:
        r = c.post("/v1/enterprises/EA1/ledger", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "entries/1", "message": "trade 'T-secret-EA1' is already in the ledger"}]
    assert _count(api, "SELECT count(*) FROM green_trade WHERE reference = 'T-API-NEW'") == 0


def test_a_certificate_serial_counts_once_ever_even_across_tenants(api):
    # EA1 retires GECX000100; EB1 cannot use it again, and is not told whose it is
    body = {"entries": [{"kind": "gec", "serial_first": "GECX000100", "production_month": "2025-01",
                         "used_on": "2025-03-01"}]}
    with api.client("ea1-writer") as c:
        assert c.post("/v1/enterprises/EA1/ledger", json=body).status_code == 201
    with api.client("eb1-writer") as c:
        r = c.post("/v1/enterprises/EB1/ledger", json=body)
    assert r.status_code == 422, r.text
    assert "counts once, ever" in r.json()["detail"] and "EA1" not in r.text


def test_facts_and_production_use_the_import_validation(api):
    with api.client("ea1-writer") as c:
        ok = c.post("/v1/enterprises/EA1/facts", json={"rows": [
            {"record": "fact", "kind": "green_factory", "date": "2025-02-01", "level": "provincial",
             "reference": "FJ-2025-1"}]})
        bad = c.post("/v1/enterprises/EA1/facts", json={"rows": [
            {"record": "fact", "kind": "green_factory", "date": "2025-02-01"},
            {"record": "fact", "kind": "no-such-kind", "date": "2025-13-01"}]})
        prod = c.post("/v1/enterprises/EA1/production", json={"rows": [
            {"product": "shoes", "period_start": "2025-02-01", "period_end": "2025-02-28", "quantity": "12.5",
             "unit": "万双", "output_value_yuan": "1000000.00"}]})
        overlap = c.post("/v1/enterprises/EA1/production", json={"rows": [
            {"product": "shoes", "period_start": "2025-02-15", "period_end": "2025-03-15", "quantity": "1",
             "unit": "万双"}]})
    assert ok.status_code == 201, ok.text
    assert ok.json()["written"] == {"facts": 1, "pv_projects": 0}
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"rows/1/kind", "rows/1/date"} <= fields, bad.json()
    assert prod.status_code == 201, prod.text
    assert overlap.status_code == 422 and overlap.json()["errors"][0]["field"] == "rows/0/period_start"
    assert _count(api, "SELECT count(*) FROM enterprise_fact WHERE reference = 'FJ-2025-1'") == 1
    assert _count(api, "SELECT count(*) FROM production WHERE period_start = '2025-02-01'") == 1


def test_meter_replacement_is_recorded(api):
    # before the point's rollup watermark (01:45 UTC in the seed): the database moves it back
    body = {"ts": "2025-03-01T08:30:00+08:00", "old_final_wh": 1234.5, "new_initial_wh": 0, "reason": "meter swapped"}
    with api.client("ea1-writer") as c:
        r = c.post("/v1/points/EA1.main.grid/replacements", json=body, headers={"Idempotency-Key": "swap-1"})
        again = c.post("/v1/points/EA1.main.grid/replacements", json=body, headers={"Idempotency-Key": "swap-1"})
        dup = c.post("/v1/points/EA1.main.grid/replacements", json=body)
        naive = c.post("/v1/points/EA1.main.grid/replacements", json={**body, "ts": "2025-03-01T18:00:00"})
    assert r.status_code == 201, r.text
    assert again.json() == r.json()
    assert dup.status_code == 422 and dup.json()["errors"][0]["field"] == "ts"
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "ts"
    assert _count(api, "SELECT count(*) FROM meter_replacement WHERE reason = 'meter swapped'") == 1
    assert _count(api, """SELECT last_reading_ts = '2025-03-01 00:30+00' FROM rollup_watermark
                          JOIN point USING (point_id) WHERE name = 'EA1.main.grid'""")


@pytest.mark.parametrize("path, body", [
    ("/v1/enterprises/{e}/ledger", {"entries": [{"kind": "trade", "reference": "T-X", "settled_on": "2025-05-02",
                                                 "mwh": "1"}]}),
    ("/v1/enterprises/{e}/facts", {"rows": [{"record": "fact", "kind": "green_factory", "date": "2025-01-01"}]}),
    ("/v1/enterprises/{e}/production", {"rows": [{"product": "shoes", "period_start": "2025-06-01",
                                                  "period_end": "2025-06-30", "quantity": "1", "unit": "万双"}]}),
    ("/v1/points/{e}.main.grid/replacements", {"ts": "2025-03-01T19:00:00+08:00", "old_final_wh": 1,
                                              "new_initial_wh": 0, "reason": "x"}),
])
def test_writes_are_scoped(api, path, body):
    with api.client("ea1-writer") as c:
        assert c.post(path.format(e="EB1"), json=body).status_code == 404  # another tenant's
    with api.client("ea1") as c:
        r = c.post(path.format(e="EA1"), json=body)
        assert r.status_code == 403 and "--write" in r.json()["detail"]  # a reading token
    with api.client("expired") as c:
        assert c.post(path.format(e="EA1"), json=body).status_code == 401


def test_concurrent_retries_with_one_key_enter_once(api):
    from concurrent.futures import ThreadPoolExecutor

    body = {"entries": [{"kind": "trade", "reference": "T-API-RACE", "settled_on": "2025-05-04", "mwh": "3"}]}

    def post(_):
        with api.client("ea1-writer") as c:
            return c.post("/v1/enterprises/EA1/ledger", json=body, headers={"Idempotency-Key": "race-1"})

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, range(4)))
    assert [r.status_code for r in answers] == [201] * 4, [r.text for r in answers]
    assert len({r.text for r in answers}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 3
    assert _count(api, "SELECT count(*) FROM green_trade WHERE reference = 'T-API-RACE'") == 1
