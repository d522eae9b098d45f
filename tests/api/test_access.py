"""Access: every request runs as the token's database role; another tenant's resource is 404,
a missing, unknown, expired or revoked token 401 (real uvicorn, real PostgreSQL, httpx)."""

from __future__ import annotations

import pytest

#: every GET endpoint taking a tenant's identifier, as a template over one enterprise's seed
#: rows (tests/store/tenancy_seed.py names them after the enterprise code)
TENANT_URLS = [
    "/v1/enterprises/{e}",
    "/v1/enterprises/{e}/sites",
    "/v1/enterprises/{e}/points",
    "/v1/enterprises/{e}/years/2025",
    "/v1/enterprises/{e}/years/2025/eligibility",
    "/v1/enterprises/{e}/daily-balance?from=2025-01-01&to=2025-12-31",
    "/v1/enterprises/{e}/findings",
    "/v1/enterprises/{e}/statements",
    "/v1/points/{e}.main.grid",
    "/v1/points/{e}.main.grid/intervals.csv?from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z",
    "/v1/points/{e}.main.grid/intervals.xlsx?from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z",
    "/v1/points/{e}.main.grid/readings.csv?from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z",
    "/v1/points/{e}.main.grid/readings.xlsx?from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z",
]
PARK_URLS = ["/v1/parks/{p}", "/v1/parks/{p}/enterprises"]


def test_openapi_is_served_without_a_token(api):
    with api.client() as c:
        spec = c.get("/v1/openapi.json").json()
        assert spec["info"]["title"] == "GreenGauge bureau API"
        assert "/v1/enterprises/{code}/years/{year}" in spec["paths"]
        assert c.get("/v1/docs").status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer", "Basic dXNlcjpwdw==", "Bearer ggt_not-a-token", "Bearer xyz"])
def test_missing_or_unknown_token_is_401(api, header):
    with api.client() as c:
        r = c.get("/v1/enterprises", headers={"Authorization": header} if header else {})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["status"] == 401


@pytest.mark.parametrize("token, why", [("expired", "expired"), ("revoked", "revoked")])
@pytest.mark.parametrize("url", ["/v1/enterprises", "/v1/enterprises/EA1", "/v1/enterprises/EA1/years/2025"])
def test_expired_and_revoked_tokens_are_401(api, token, why, url):
    with api.client(token) as c:
        r = c.get(url)
    assert r.status_code == 401, r.text
    assert why in r.json()["detail"]


@pytest.mark.parametrize("token, sees", [
    ("ea1", ["EA1"]), ("ea1-writer", ["EA1"]), ("pa", ["EA1", "EA2"]), ("pb", ["EB1", "EB2"]),
    ("bureau", ["EA1", "EA2", "EB1", "EB2"]),
])
def test_each_token_lists_exactly_its_scope(api, token, sees):
    with api.client(token) as c:
        assert [e["code"] for e in c.get("/v1/enterprises").json()] == sees
        parks = {e["park"] for e in c.get("/v1/enterprises").json()}
        assert {p["code"] for p in c.get("/v1/parks").json()} == parks


@pytest.mark.parametrize("url", TENANT_URLS)
@pytest.mark.parametrize("token, own, other", [
    ("ea1", "EA1", "EA2"),   # same park, another enterprise
    ("ea1", "EA1", "EB1"),   # another park
    ("pa", "EA2", "EB2"),    # a park token, an enterprise of the other park
    ("eb1-writer", "EB1", "EA1"),
])
def test_another_tenants_resource_is_404_and_its_own_is_200(api, url, token, own, other):
    with api.client(token) as c:
        mine = c.get(url.format(e=own))
        theirs = c.get(url.format(e=other))
    assert mine.status_code == 200, mine.text
    assert theirs.status_code == 404, theirs.text
    assert theirs.headers["content-type"].startswith("application/problem+json")
    assert f"secret-{other}" not in theirs.text


def test_another_tenants_decision_history_is_404(api):
    import psycopg

    with psycopg.connect(api.db_url) as conn:
        ids = dict(conn.execute("""SELECT e.code, d.decision_id FROM eligibility_decision d
                                   JOIN enterprise e USING (enterprise_id)""").fetchall())
    with api.client("ea1") as c:
        mine = c.get(f"/v1/decisions/{ids['EA1']}/versions")
        assert mine.status_code == 200 and [v["version"] for v in mine.json()] == [1]
        for other in ("EA2", "EB1"):
            r = c.get(f"/v1/decisions/{ids[other]}/versions")
            assert r.status_code == 404 and f"secret-{other}" not in r.text


@pytest.mark.parametrize("token, sees", [("ea1", {"EA1"}), ("pb", {"EB1", "EB2"}),
                                         ("bureau", {"EA1", "EA2", "EB1", "EB2"})])
def test_changes_since_are_scoped(api, token, sees):
    with api.client(token) as c:
        rows = c.get("/v1/changes?since=0").json()
        assert {r["enterprise"] for r in rows} == sees
        assert c.get(f"/v1/changes?since={max(r['decision_id'] for r in rows)}").json() == []


@pytest.mark.parametrize("url", PARK_URLS)
def test_another_park_is_404(api, url):
    with api.client("pa") as c:
        assert c.get(url.format(p="PA")).status_code == 200
        assert c.get(url.format(p="PB")).status_code == 404


def test_nothing_of_another_tenant_in_any_own_response(api):
    with api.client("ea1") as c:
        for url in TENANT_URLS:
            body = c.get(url.format(e="EA1")).text
            for other in ("EA2", "EB1", "EB2"):
                assert f"secret-{other}" not in body, url


def test_the_request_runs_as_the_tokens_role(api):
    with api.client("pa") as c:
        me = c.get("/v1/whoami").json()
    assert me == {**me, "name": "pa", "kind": "park", "scope_code": "PA", "can_write": False}
