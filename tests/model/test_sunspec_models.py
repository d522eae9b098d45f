"""collectors/sunspec_models/models.yaml against the SunSpec Alliance's own model definitions.

pysunspec2 (the Alliance's Python library, a dev dependency) ships the official JSON definition
of every model. Each model in our file must be laid out exactly as there: the same points in the
same order, at the same offsets, of the same type and size, with the same scale-factor point, and
the same length; where we state a unit it is the official one (in our spelling). A model written
from memory cannot pass: model 702 once lacked PFOvrExt/PFUndExt, so every scale factor after them
was read two registers early and a 500 kW inverter's rating came out as 50 W.
"""

from __future__ import annotations

import pytest
from sunspec2 import device as ssdevice
from sunspec2 import mdef

from model.sunspec_models import models

#: the official unit spellings we write differently; None (no unit) is a plain ratio, "1"
OUR_SPELLING = {
    None: "1", "Pct": "%", "%WHRtg": "%", "% WChaMax/sec": "%", "% WChaMax": "%", " % WChaMax": "%",
    "% AhrRtg": "%", "% WDisChaMax": "%", "Var": "var", "Varh": "varh", "AH": "Ah", "WH": "Wh",
    "cos()": "1", "PF": "1", "Secs": "s",
}


def official_layout(model_id: int) -> tuple[int, list[tuple[str, int, str, int, str | None, str | None]]]:
    """(length, [(name, offset, type, size, sf, unit)]) from the official definition; offsets
    count from the first register after ID and L, as ours do."""
    group = ssdevice.get_model_def(model_id)[mdef.GROUP]
    assert not group.get(mdef.GROUPS), f"model {model_id} has repeating groups, which we do not decode"
    points, offset = [], 0
    for p in group[mdef.POINTS]:
        if p[mdef.NAME] not in ("ID", "L"):
            points.append((p[mdef.NAME], offset - 2, p[mdef.TYPE], int(p[mdef.SIZE]), p.get(mdef.SF), p.get(mdef.UNITS)))
        offset += int(p[mdef.SIZE])
    return offset - 2, points


@pytest.mark.parametrize("model_id", sorted(models()))
def test_model_matches_the_official_definition(model_id):
    ours = models()[model_id]
    length, official = official_layout(model_id)
    assert ours.length == length, f"model {model_id}: length {ours.length}, officially {length}"
    assert [(p.name, p.offset, p.type, p.width, p.sf) for p in ours.points] == [o[:5] for o in official]
    for p, (name, *_, unit) in zip(ours.points, official):
        if p.unit is not None:
            assert OUR_SPELLING.get(unit, unit) == p.unit, f"model {model_id} point {name}: unit {p.unit!r}, officially {unit!r}"


def test_every_quantity_point_states_a_unit_the_definition_agrees_with():
    # the points that feed stored quantities are the ones that must never be off by a unit
    for m in models().values():
        _, official = official_layout(m.id)
        units = {o[0]: o[5] for o in official}
        for p in m.points:
            if p.quantity is not None:
                assert p.unit == OUR_SPELLING.get(units[p.name], units[p.name]), (m.id, p.name)


def test_702_and_701_known_defects_stay_fixed():
    m702 = {p.name: p for p in models()[702].points}
    assert models()[702].length == 50
    assert (m702["PFOvrExt"].offset, m702["PFUndExt"].offset, m702["W_SF"].offset) == (40, 41, 43)
    m701 = {p.name: p for p in models()[701].points}
    # voltages are unsigned: 0xFFFF is "not implemented", not -0.1 V
    assert {m701[n].type for n in ("LLV", "LNV", "VL1", "VL2", "VL3", "VL1L2", "VL2L3", "VL3L1")} == {"uint16"}
