"""The statement page in headless Chromium (Debian's chromium, driven by playwright): the figures
render from the signed payload, the browser checks the signature against /v1/keys, and a
tampered statement shows as invalid."""

from __future__ import annotations

import base64
import json
import shutil

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def statement(plant_api):
    with plant_api.client("bureau") as c:
        r = c.post("/v1/statements", json={"enterprise": "jj-shoes", "year": 2025})
    assert r.status_code == 201, r.text
    return r.json()


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_statement_page_renders_the_figures_and_a_valid_signature(plant_api, browser, statement):
    ctx = browser.new_context(extra_http_headers={"Authorization": f"Bearer {plant_api.tokens['plant']}"})
    page = ctx.new_page()
    page.goto(f"{plant_api.base}/v1/statements/{statement['statement_id']}/page")
    page.wait_for_function("document.getElementById('check').dataset.state !== 'pending'", timeout=20_000)
    assert page.get_attribute("#check", "data-state") == "valid", page.inner_text("#check")
    g = statement["payload"]["green_share"]
    assert page.inner_text("td[data-k=green_wh]") == str(g["green_wh"])
    assert page.inner_text("td[data-k=consumption_wh]") == str(g["consumption_wh"])
    assert page.inner_text("td[data-k=status]") == g["status"]
    assert "晋江示范鞋业有限公司" in page.inner_text("#ent")
    text = page.inner_text("body")
    assert "绿色电力消费占比" in text and "Green-electricity share" in text  # Chinese and English
    assert "green-share-priority" in text and "§三(一)" in text  # the rule and its clause
    pdf = page.pdf()  # printable
    assert pdf[:4] == b"%PDF"
    ctx.close()


def test_a_tampered_statement_shows_invalid(plant_api, browser, statement):
    head, body, sig = statement["jws"].split(".")
    forged = json.loads(_b64(body))
    forged["green_share"]["green_wh"] += 1000  # more green than was metered
    fb = base64.urlsafe_b64encode(json.dumps(forged, ensure_ascii=False).encode()).rstrip(b"=").decode()
    page = browser.new_page()
    page.goto(f"{plant_api.base}/v1/verify#{head}.{fb}.{sig}")
    page.wait_for_function("['valid', 'invalid'].includes(document.getElementById('check').dataset.state)",
                           timeout=20_000)
    assert page.get_attribute("#check", "data-state") == "invalid"
    assert "INVALID" in page.inner_text("#check")
    # the forged figure is shown, marked by the failed check above it
    assert page.inner_text("td[data-k=green_wh]") == str(statement["payload"]["green_share"]["green_wh"] + 1000)
    # the untouched statement pasted into the same page is valid
    page.fill("#jwsin", statement["jws"])
    page.click("#go")
    page.wait_for_function("document.getElementById('check').dataset.state === 'valid'", timeout=20_000)
    page.close()
