"""The one finding type: kinds, origins, and kinds not known yet."""

from model.findings import EVENTS, STATES, FindingKind, kind_of


def test_every_kind_has_one_origin_and_the_quality_kinds_are_states_or_events():
    quality = {k for k in FindingKind if k.origin == "quality"}
    assert quality == set(STATES) | set(EVENTS) and not set(STATES) & set(EVENTS)
    assert FindingKind.SPOOL_CORRUPT.origin == "collector" and FindingKind.GAP.origin == "quality"


def test_a_kind_not_known_yet_stays_a_string_rather_than_failing():
    assert kind_of("gap") is FindingKind.GAP
    assert kind_of("a_new_kind") == "a_new_kind" and not isinstance(kind_of("a_new_kind"), FindingKind)
