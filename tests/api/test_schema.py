"""schemathesis over the served OpenAPI: generated requests (bounded, derandomized) against the
real server and database; no 500, and every response matches the schema it documents.

Requests are sent with httpx and validated by schemathesis: its own requests transport breaks
when urllib3-future (pulled in by grafana-client for the dashboards) replaces urllib3's pools."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from tests.api.conftest import TLS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served_schema(api):
    return schemathesis.openapi.from_url(api.base + "/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("served_schema")


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case, api):
    # writes as a writer of EA1 (the seed's enterprise), reads as the bureau (sees every tenant)
    token = api.tokens["ea1-writer" if case.method == "POST" else "bureau"]
    kw = case.as_transport_kwargs(base_url=api.base, headers={"Authorization": f"Bearer {token}"})
    send = {k: kw[k] for k in ("method", "url", "headers", "params", "json", "files") if k in kw}
    if "data" in kw:
        send["content" if isinstance(kw["data"], (bytes, str)) else "data"] = kw["data"]
    with httpx.Client(timeout=30, cookies=kw.get("cookies") or None, verify=TLS) as c:
        response = c.request(**send)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance,
                                             content_type_conformance])
