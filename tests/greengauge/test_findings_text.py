"""The text of findings, made at the edge from kind and data, in English and Chinese."""

import string
from datetime import datetime, timezone

import pytest

from greengauge.findings_text import TEXT, describe
from model.findings import Finding, FindingKind, Subject

T0 = datetime(2025, 6, 21, tzinfo=timezone.utc)


@pytest.mark.parametrize("kind", list(FindingKind))
def test_every_kind_reads_in_both_languages_with_the_same_values(kind):
    en, zh = TEXT[kind]["en"], TEXT[kind]["zh"]
    fields = lambda t: {f for _, f, _, _ in string.Formatter().parse(t) if f}  # noqa: E731
    assert fields(en) == fields(zh)
    data = {f: 7 for f in fields(en)}
    for lang in ("en", "zh"):
        text = describe(Finding(kind, Subject(source="x"), T0, data=data), lang)
        assert not text.startswith(f"{kind}:"), text  # the template was used, not the fallback


def test_known_values_and_fallbacks():
    f = Finding(FindingKind.COUNTER_SPIKE, Subject(source="p"), T0,
                data={"step_wh": 10002, "seconds": 10, "implied_w": 3600720, "rated_w": 3600000})
    assert describe(f) == ("counter step of 10002 Wh in 10 s implies 3600720 W, above the rated 3600000 W; "
                           "suspect until the next reading confirms it")
    assert describe(f, "zh").startswith("电量计数 10 秒内增加 10002 Wh")
    # a finding moved from the old tables keeps its sentence
    assert describe(Finding("gap", Subject(1), T0, data={"text": "no reading from a to b"}), "zh") == \
        "no reading from a to b"
    # a kind this table does not know yet, or data a template lacks: the kind and its values, never an error
    assert describe(Finding("client_id_taken", Subject(source="b"), T0, data={"client_id": "gg-1"})) == \
        "client_id_taken: client_id gg-1"
    assert describe(Finding(FindingKind.GAP, Subject(1), T0, data={"from": "a"})) == "gap: from a"
