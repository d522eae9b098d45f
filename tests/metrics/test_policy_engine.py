"""The policy engine over the packaged documents: windows, candidates and the choice.

Every case names the clause it comes from. 晋政规〔2024〕2号 is "2024-2", 晉政規〔2025〕5號 "2025-5".
"""

from datetime import date
from decimal import Decimal

import pytest

from metrics.intensity import ReferenceValues
from metrics.policy import (
    Check,
    EnterpriseYear,
    Fact,
    ProductYear,
    PvProject,
    Storage,
)
from metrics.policy import evaluate as _evaluate
from model import CODE_VERSION
from model.tables import load_documents


def evaluate(ey, documents=None):
    """The engine over the packaged documents unless others are given."""
    return _evaluate(ey, load_documents() if documents is None else documents, code_version=CODE_VERSION)

D2024 = "晋政规〔2024〕2号"
D2025 = "晉政規〔2025〕5號"
GWH = 1_000_000_000
RECYCLING = Fact("miit_norm", date(2023, 3, 1), scope="再生资源综合利用", reference="工信部公告2023年第5号")


def pick(result, document, rule, subject=None):
    found = [c for c in result.candidates if c.document == document and c.rule == rule
             and (subject is None or c.subject == subject)]
    assert len(found) == 1, found
    return found[0]


def chosen_in(result, group):
    return [c for c in result.chosen if c.group == group]


# ---- R2 recycling --------------------------------------------------------------------------------

def test_recycling_cap_hit():
    # 2024-2 §二(二): 6 GWh × 0.1 = 600,000, capped at 500,000 (reached at 5 GWh)
    r = evaluate(EnterpriseYear("E1", 2024, recycling_wh=6 * GWH, facts=(RECYCLING,)))
    c = pick(r, D2024, "recycling-electricity")
    assert c.status == "qualifies" and c.amount == Decimal("500000") and c.chosen
    assert c.evidence["uncapped"] == Decimal("600000.00") and c.evidence["capped"] is True
    assert c.evidence["energy_wh"] == 6 * GWH


def test_recycling_4_2_gwh():
    # 2024-2 §二(二): 4.2 GWh × 0.1 yuan/kWh = 420,000
    r = evaluate(EnterpriseYear("E1", 2024, recycling_wh=4_200_000_000, facts=(RECYCLING,)))
    assert pick(r, D2024, "recycling-electricity").amount == Decimal("420000.00")
    assert r.total == Decimal("420000.00")


def test_recycling_2024_retroactive_from_january():
    # 2024-2 §五(三): in force from 2024-05-07, cases from 2024-01-01 may apply: 2024 is reached
    c = pick(evaluate(EnterpriseYear("E1", 2024, recycling_wh=GWH, facts=(RECYCLING,))), D2024, "recycling-electricity")
    assert "2024-01-01..2024-12-31" in c.evidence["reach"]


def test_recycling_without_status():
    # 2024-2 §二(二) needs the 再生资源综合利用行业规范 status; none recorded
    c = pick(evaluate(EnterpriseYear("E1", 2024, recycling_wh=GWH)), D2024, "recycling-electricity")
    assert c.status == "does_not_qualify" and c.amount is None


def test_recycling_energy_unknown():
    # the status is held but no sub-metered recycling energy exists: unknown, not "does not qualify"
    c = pick(evaluate(EnterpriseYear("E1", 2024, facts=(RECYCLING,))), D2024, "recycling-electricity")
    assert c.status == "unknown"


def test_2025_both_jinjiang_documents_reach_higher_chosen():
    # 2025: 2024-2 reaches 2025-01-01..2025-06-14 (repealed by 2025-5 on 2025-06-15); 2025-5
    # reaches 2025-01-01 (retroactive) onwards. Both candidates are computed (issue 5 reading):
    # 2024-2 §二(二) 4.2 GWh → 420,000; 2025-5 §三(一) newly listed → 200,000. 就高不重复: 420,000.
    listing = Fact("miit_norm", date(2025, 3, 10), scope="再生资源综合利用")
    r = evaluate(EnterpriseYear("E1", 2025, recycling_wh=4_200_000_000, facts=(listing,)))
    old = pick(r, D2024, "recycling-electricity")
    new = pick(r, D2025, "miit-norm-listing")
    assert (old.status, old.amount) == ("qualifies", Decimal("420000.00"))
    assert (new.status, new.amount) == ("qualifies", Decimal("200000"))
    assert old.chosen and not new.chosen
    assert "not paid" in new.choice and D2024 in new.choice  # the loser stays, with why
    assert chosen_in(r, "miit-norm") == [old]


def test_2025_listing_beats_small_recycling_award():
    # same, but 1 GWh → 100,000 under 2024-2 §二(二): 2025-5 §三(一)'s 200,000 is higher
    listing = Fact("miit_norm", date(2025, 3, 10), scope="再生资源综合利用")
    r = evaluate(EnterpriseYear("E1", 2025, recycling_wh=GWH, facts=(listing,)))
    assert [c.document for c in chosen_in(r, "miit-norm")] == [D2025]
    assert r.total == Decimal("200000")


def test_2026_only_the_new_document():
    # 2024-2 does not reach 2026 (repealed 2025-06-15): not applicable; 2025-5 §三(一) needs a new listing
    r = evaluate(EnterpriseYear("E1", 2026, recycling_wh=4 * GWH, facts=(RECYCLING,)))
    old = pick(r, D2024, "recycling-electricity")
    assert old.status == "not_applicable" and "repealed" in old.reasons[0]
    assert pick(r, D2025, "miit-norm-listing").status == "does_not_qualify"
    assert chosen_in(r, "miit-norm") == []


def test_2023_no_jinjiang_document():
    r = evaluate(EnterpriseYear("E1", 2023, recycling_wh=4 * GWH, facts=(RECYCLING,)))
    assert pick(r, D2024, "recycling-electricity").status == "not_applicable"
    assert r.total == 0


# ---- R3 PV and storage -----------------------------------------------------------------------------

def pv(pv_w, storage=None, commissioned=date(2024, 9, 1), checks=()):
    st = Storage(*storage, commissioned) if storage else None
    return PvProject("pv1", pv_w, commissioned, st, checks)


def pv_candidate(project, year=None):
    r = evaluate(EnterpriseYear("E1", year or project.commissioned.year, projects=(project,)))
    return pick(r, D2024, "pv-storage-subsidy", "project pv1"), r


def test_pv_storage_passes():
    # 2024-2 §三(一): PV 0.8 MW → 32,000 (pro rata below 1 MW); storage 0.1 MW / 0.2 MWh → 10,000
    c, r = pv_candidate(pv(800_000, (100_000, 200_000)))
    assert c.status == "qualifies" and c.chosen
    assert (c.evidence["pv_amount"], c.evidence["storage_amount"], c.amount) == (
        Decimal("32000.00"), Decimal("10000.00"), Decimal("42000.00"))


def test_pv_below_half_megawatt():
    # 2024-2 §三(一) "装机容量≥0.5兆瓦": 0.4 MW fails
    c, _ = pv_candidate(pv(400_000))
    assert c.status == "does_not_qualify" and c.amount is None


def test_storage_below_ten_percent_of_pv():
    # 2024-2 §三(一) "不小于项目规模10%": 0.08 MW storage for 1 MW PV → only the PV's 40,000
    c, _ = pv_candidate(pv(1_000_000, (80_000, 160_000)))
    assert c.status == "qualifies" and c.amount == Decimal("40000.00")
    assert c.evidence["storage_amount"] == 0


def test_storage_short_of_two_hours():
    # 2024-2 §三(一) "时长不低于2小时": 0.2 MW / 0.3 MWh is 1.5 h → only the PV's 40,000
    c, _ = pv_candidate(pv(1_000_000, (200_000, 300_000)))
    assert c.amount == Decimal("40000.00")


def test_pv_and_storage_past_the_cap():
    # 2024-2 §三(一) "单个项目最高不超过30万元": 6 MW PV (240,000) + 1 MW / 2 MWh (100,000) → 300,000
    c, _ = pv_candidate(pv(6_000_000, (1_000_000, 2_000_000)))
    assert c.evidence["uncapped"] == Decimal("340000.00")
    assert c.amount == Decimal("300000") and c.evidence["capped"] is True


def test_pv_commissioned_after_repeal_has_no_subsidy():
    # PV commissioned 2025-08-01: 2024-2 was repealed on 2025-06-15, and 2025-5 has no PV subsidy
    c, r = pv_candidate(pv(800_000, (100_000, 200_000), commissioned=date(2025, 8, 1)))
    assert c.status == "not_applicable" and "repealed" in " ".join(c.reasons)
    assert chosen_in(r, "pv-storage") == []
    assert all(x.document != D2025 for x in r.candidates if x.group == "pv-storage")


def test_pv_commissioned_before_repeal_in_2025():
    # commissioned 2025-06-14, the last day 2024-2 reaches
    c, _ = pv_candidate(pv(800_000, commissioned=date(2025, 6, 14)))
    assert c.status == "qualifies" and c.amount == Decimal("32000.00")


def test_pv_commissioned_retroactive_window():
    # 2024-2 §五(三): 2024-03-01 is before 2024-05-07 but inside the retroactive window
    c, _ = pv_candidate(pv(800_000, commissioned=date(2024, 3, 1)))
    assert c.status == "qualifies" and "retroactive" in c.evidence["reach"]


def test_battery_observed_discharge_short_of_two_hours():
    # 2024-2 §三(一) "时长不低于2小时": the nameplate says 2 h, telemetry's longest discharge was 1.5 h
    short = Check("storage_discharge_duration", "fail", "the largest continuous discharge delivered 150000 Wh, short of 190000 Wh",
                  {"episode_energy_wh": 150_000})
    c, _ = pv_candidate(pv(800_000, (100_000, 200_000), checks=(short,)))
    assert c.status == "qualifies" and c.amount == Decimal("32000.00")  # PV only
    assert any("telemetry disproves" in x for x in c.reasons)
    assert c.evidence["checks"][0]["status"] == "fail"


def test_pv_not_producing_disqualifies():
    dead = Check("pv_produced_after_commissioning", "fail", "no PV energy")
    c, _ = pv_candidate(pv(800_000, checks=(dead,)))
    assert c.status == "does_not_qualify"


def test_unverified_telemetry_is_listed():
    unk = Check("pv_produced_after_commissioning", "unknown", "no PV readings")
    c, _ = pv_candidate(pv(800_000, checks=(unk,)))
    assert c.status == "qualifies" and any("not verified" in x for x in c.reasons)


def test_storage_commissioned_after_repeal_not_paid():
    project = PvProject("pv1", 800_000, date(2025, 6, 1), Storage(100_000, 200_000, date(2025, 7, 1)))
    c, _ = pv_candidate(project)
    assert c.amount == Decimal("32000.00")


# ---- R1 and listings -------------------------------------------------------------------------------

def test_green_share_exactly_30_percent_both_documents():
    # 2024-2 §三(一) and 2025-5 §三(三): "在30%以上" includes 30 %; the same benefit, the newer is chosen
    r = evaluate(EnterpriseYear("E1", 2025, green_wh=3_000, consumption_wh=10_000))
    old = pick(r, D2024, "green-share-priority")
    new = pick(r, D2025, "green-share-priority")
    assert old.status == new.status == "qualifies"
    assert new.chosen and not old.chosen and "superseded" in old.choice


def test_green_share_below():
    r = evaluate(EnterpriseYear("E1", 2024, green_wh=2_999, consumption_wh=10_000))
    assert pick(r, D2024, "green-share-priority").status == "does_not_qualify"


def test_green_share_unknown_without_data():
    assert pick(evaluate(EnterpriseYear("E1", 2024)), D2024, "green-share-priority").status == "unknown"


def test_carbon_footprint_2025_higher_old_amount_wins():
    # 2024-2 §四(三) 50,000 vs 2025-5 §三(二) 30,000 for a certificate of 2025-03-01: both reach it, 就高
    r = evaluate(EnterpriseYear("E1", 2025, facts=(Fact("carbon_footprint_cert", date(2025, 3, 1)),)))
    assert [(c.document, c.amount) for c in chosen_in(r, "carbon-footprint-cert")] == [(D2024, Decimal("50000"))]


def test_carbon_footprint_after_repeal():
    # certified 2025-08-01: only 2025-5 §三(二) reaches it
    r = evaluate(EnterpriseYear("E1", 2025, facts=(Fact("carbon_footprint_cert", date(2025, 8, 1)),)))
    assert [(c.document, c.amount) for c in chosen_in(r, "carbon-footprint-cert")] == [(D2025, Decimal("30000"))]


def test_green_factory_equal_amounts_newer_document():
    # 2024-2 §一(一) and 2025-5 §三(一) both pay 200,000 for a national green factory: 从新
    r = evaluate(EnterpriseYear("E1", 2025, facts=(Fact("green_factory", date(2025, 2, 1), level="national"),)))
    [c] = chosen_in(r, "green-factory.national")
    assert c.document == D2025 and c.amount == Decimal("200000")
    assert "older document" in pick(r, D2024, "green-factory-national", c.subject).choice


def test_energy_management_first_time():
    # 2025-5 §三(二) "首次通过": a repeat certification does not qualify, an unrecorded one is unknown
    facts = (Fact("energy_management_cert", date(2026, 4, 1), first_time=False),)
    assert pick(evaluate(EnterpriseYear("E1", 2026, facts=facts)), D2025, "energy-management-cert").status == "does_not_qualify"
    facts = (Fact("energy_management_cert", date(2026, 4, 1)),)
    assert pick(evaluate(EnterpriseYear("E1", 2026, facts=facts)), D2025, "energy-management-cert").status == "unknown"


def test_fengze_topup_in_fengze_only():
    # 泉丰政办综〔2022〕2号 三(八): 30 % of a provincial grant of 500,000 = 150,000, capped at 100,000
    grant = Fact("energy_saving_fund", date(2023, 5, 1), amount=Decimal("500000"))
    r = evaluate(EnterpriseYear("F1", 2023, region="福建省/泉州市/丰泽区", facts=(grant,)))
    c = pick(r, "泉丰政办综〔2022〕2号", "energy-saving-topup")
    assert c.amount == Decimal("100000") and c.chosen
    # a Jinjiang enterprise is outside the district
    r = evaluate(EnterpriseYear("E1", 2023, facts=(grant,)))
    assert pick(r, "泉丰政办综〔2022〕2号", "energy-saving-topup").status == "not_applicable"


def test_fujian_document_without_dates_is_unknown():
    # 福建 002: its issue date is not recorded, so its rules cannot be placed in time
    ref = ReferenceValues("t", limit=Decimal("100"), advanced=Decimal("80"))
    r = evaluate(EnterpriseYear("E1", 2025, products=(ProductYear("yarn", Decimal("7900"), Decimal("100"), ref),)))
    assert pick(r, "福建省绿色制造梯度培育管理实施细则（暂行）", "green-factory-candidate-energy").status == "unknown"


def test_unit_energy_rule_with_dated_document():
    # 002 第七条 3 with a window given: 79 kgce/t ≤ advanced 80 qualifies
    docs = [d if not d.number.startswith("福建") else d.model_copy(update={
        "issued": date(2024, 6, 1), "in_force": d.in_force.model_copy(update={"start": date(2024, 6, 1)})})
        for d in load_documents()]
    ref = ReferenceValues("t", limit=Decimal("100"), advanced=Decimal("80"))
    ok = evaluate(EnterpriseYear("E1", 2025, products=(ProductYear("yarn", Decimal("7900"), Decimal("100"), ref),)), docs)
    assert pick(ok, "福建省绿色制造梯度培育管理实施细则（暂行）", "green-factory-candidate-energy").status == "qualifies"
    bad = evaluate(EnterpriseYear("E1", 2025, products=(ProductYear("yarn", Decimal("8100"), Decimal("100"), ref),)), docs)
    assert pick(bad, "福建省绿色制造梯度培育管理实施细则（暂行）", "green-factory-candidate-energy").status == "does_not_qualify"


# ---- the result as a whole --------------------------------------------------------------------------

def test_every_candidate_has_document_clause_status():
    r = evaluate(EnterpriseYear("E1", 2025, recycling_wh=GWH, facts=(RECYCLING,)))
    assert r.candidates
    for c in r.candidates:
        assert c.document and c.clause and c.status in ("qualifies", "does_not_qualify", "unknown", "not_applicable")
        assert c.reasons
    d = r.to_dict()
    assert d["total"] == str(r.total)
    import json
    json.dumps(d, ensure_ascii=False)  # evidence is serialisable


def test_one_chosen_per_group():
    facts = (Fact("miit_norm", date(2025, 3, 10), scope="再生资源综合利用"), RECYCLING,
             Fact("carbon_footprint_cert", date(2025, 3, 1)))
    r = evaluate(EnterpriseYear("E1", 2025, recycling_wh=3 * GWH, green_wh=1, consumption_wh=2, facts=facts))
    keys = [c.key for c in r.chosen]
    assert len(keys) == len(set(keys))


def test_bad_year():
    with pytest.raises(ValueError, match="year"):
        evaluate(EnterpriseYear("E1", 25))


def test_digest_is_reproducible():
    # DESIGN: every published figure carries its evidence and a hash a bureau can recompute
    ey = EnterpriseYear("E1", 2025, recycling_wh=GWH, facts=(RECYCLING,))
    a, b = evaluate(ey).to_dict(), evaluate(ey).to_dict()
    assert a["digest"] == b["digest"] and len(a["digest"]) == 64
    assert a["inputs"]["recycling_wh"] == GWH and a["code_version"]
    assert evaluate(EnterpriseYear("E1", 2025, recycling_wh=GWH + 1, facts=(RECYCLING,))).to_dict()["digest"] != a["digest"]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10 * GWH))
def test_2025_recycling_choice_is_the_higher(wh):
    # 2025 with a new listing: paid = max(min(kWh × 0.1, 500,000), 200,000); never above the cap
    listing = Fact("miit_norm", date(2025, 3, 10), scope="再生资源综合利用")
    r = evaluate(EnterpriseYear("E1", 2025, recycling_wh=wh, facts=(listing,)))
    [c] = chosen_in(r, "miit-norm")
    expected = max(min((Decimal(wh) / 10_000).quantize(Decimal("0.01"), rounding="ROUND_DOWN"), Decimal(500000)),
                   Decimal(200000))
    assert c.amount == expected <= Decimal("500000")
