"""Rooftop PV and storage subsidy, 晋政规〔2024〕2号 §三(一), and the telemetry checks behind it."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.intervals import IntervalEnergy
from metrics.policy.pv_storage import (
    Interval,
    check_pv_produced_after,
    check_storage_duration,
    check_storage_power_ratio,
    discharge_episodes,
    pv_storage_award,
)

MW = 1_000_000  # W
MWH = 1_000_000  # Wh
CST = timezone(timedelta(hours=8))


def test_pv_and_storage_pass():
    # §三(一): PV 0.8 MW ≥ 0.5 MW → 0.8 × 40,000 = 32,000 ("不足1兆瓦的按比例");
    # storage 0.1 MW = 12.5 % of PV ≥ 10 %, 0.2 MWh / 0.1 MW = 2 h ≥ 2 h → 0.1 × 100,000 = 10,000
    a = pv_storage_award(800_000, 100_000, 200_000)
    assert (a.pv_amount, a.storage_amount, a.amount) == (Decimal("32000.00"), Decimal("10000.00"), Decimal("42000.00"))
    assert a.pv_ok and a.storage_ok and not a.capped


def test_pv_below_floor():
    # §三(一) "装机容量≥0.5兆瓦": 0.4 MW fails, and its storage is not paid either (同步配套)
    a = pv_storage_award(400_000, 100_000, 200_000)
    assert not a.pv_ok and a.storage_ok is False
    assert a.amount == 0
    assert any("below the 500000 W floor" in r for r in a.reasons)


def test_pv_exactly_at_floor():
    # §三(一) "≥0.5兆瓦" is inclusive: 0.5 MW → 20,000
    assert pv_storage_award(500_000).amount == Decimal("20000.00")


def test_storage_below_ten_percent():
    # §三(一) "不小于项目规模10%": 0.08 MW for 1 MW PV is 8 % → storage not paid, PV still is
    a = pv_storage_award(1 * MW, 80_000, 160_000)
    assert a.storage_ok is False
    assert (a.pv_amount, a.storage_amount, a.amount) == (Decimal("40000.00"), Decimal("0.00"), Decimal("40000.00"))
    assert any("below 10%" in r for r in a.reasons)


def test_storage_exactly_ten_percent():
    # "不小于" is inclusive: 0.1 MW for 1 MW is exactly 10 %
    assert pv_storage_award(1 * MW, 100_000, 200_000).storage_ok is True


def test_storage_short_of_two_hours():
    # §三(一) "时长不低于2小时": 0.3 MWh / 0.2 MW = 1.5 h → storage not paid
    a = pv_storage_award(1 * MW, 200_000, 300_000)
    assert a.storage_ok is False
    assert a.amount == Decimal("40000.00")
    assert any("1.5 h, below 2 h" in r for r in a.reasons)


def test_cap_per_project():
    # §三(一) "单个项目最高不超过30万元": 5 MW PV (200,000) + 1.5 MW / 3 MWh storage (150,000) = 350,000 → 300,000
    a = pv_storage_award(5 * MW, 1_500_000, 3 * MWH)
    assert a.uncapped == Decimal("350000.00")
    assert a.amount == Decimal("300000") and a.capped


def test_pro_rata_is_linear_above_one_mw():
    # reading of "按比例": linear in capacity; 1.25 MW → 50,000 (not rounded to whole MW)
    assert pv_storage_award(1_250_000).amount == Decimal("50000.00")


def test_only_one_storage_figure():
    with pytest.raises(ValueError, match="storage_power_w and storage_energy_wh"):
        pv_storage_award(MW, 100_000, None)


@pytest.mark.parametrize("bad", [0, -5, 0.8, None])
def test_bad_pv(bad):
    with pytest.raises(ValueError, match="pv_w"):
        pv_storage_award(bad)


@given(st.integers(1, 50 * MW), st.integers(1, 10 * MW), st.integers(1, 40 * MWH))
def test_award_never_exceeds_cap(pv, sp, se):
    assert pv_storage_award(pv, sp, se).amount <= Decimal("300000")


@given(st.integers(1, 20 * MW), st.integers(0, 5 * MW))
def test_monotone_in_pv(pv, more):
    assert pv_storage_award(pv).amount <= pv_storage_award(pv + more).amount


# ---- telemetry ---------------------------------------------------------------------------------

T0 = datetime(2024, 6, 1, 0, 0, tzinfo=CST)


def series(energies, start=T0, length_s=900, estimated=()):
    return [Interval(start + timedelta(seconds=i * length_s), e, length_s, i in estimated) for i, e in enumerate(energies)]


def test_pv_produced_after_commissioning():
    ivs = series([0, 0, 500, 800])
    c = check_pv_produced_after(ivs, date(2024, 6, 1))
    assert c.status == "pass" and c.data["energy_after_wh"] == 1300


def test_pv_not_producing_fails():
    assert check_pv_produced_after(series([0, 0, 0]), date(2024, 6, 1)).status == "fail"


def test_pv_no_readings_after_is_unknown():
    c = check_pv_produced_after(series([100, 100]), date(2024, 7, 1))
    assert c.status == "unknown" and c.data["energy_before_wh"] == 200


def test_pv_commissioning_day_is_local():
    # a reading at 23:45 UTC on May 31 is 07:45 on June 1 in Asia/Shanghai: it is after commissioning
    ivs = [Interval(datetime(2024, 5, 31, 23, 45, tzinfo=timezone.utc), 10)]
    assert check_pv_produced_after(ivs, date(2024, 6, 1)).status == "pass"


def test_storage_full_two_hour_discharge_passes():
    # §三(一) "时长不低于2小时": 100 kW battery, 8 quarter hours at 25 kWh = 200 kWh = 2 h × rated
    c = check_storage_duration(series([0] + [25_000] * 8 + [0]), 100_000)
    assert c.status == "pass"
    assert c.data["episode_energy_wh"] == 200_000 and c.data["episode_hours"] == 2.0


def test_storage_discharge_short_of_two_hours_fails():
    # §三(一): the nameplate says 2 h, but the longest discharge delivered 1.5 h × rated (150 kWh)
    c = check_storage_duration(series([0] + [25_000] * 6 + [0] + [25_000] * 4), 100_000)
    assert c.status == "fail"
    assert c.data["episode_energy_wh"] == 150_000 and c.data["episodes"] == 2
    assert "short of" in c.detail


def test_storage_within_tolerance_passes():
    # 192 kWh is 4 % short of 200 kWh: inside the stated 5 % tolerance
    assert check_storage_duration(series([24_000] * 8), 100_000).status == "pass"
    assert check_storage_duration(series([24_000] * 8), 100_000, tolerance=Decimal("0.02")).status == "fail"


def test_storage_half_power_for_four_hours_passes():
    # energy decides: 50 kW for 4 h is 2 h × 100 kW
    assert check_storage_duration(series([12_500] * 16), 100_000).status == "pass"


def test_storage_gap_breaks_episode():
    # a missing interval splits two 1 h runs: neither reaches 2 h
    ivs = series([25_000] * 4) + series([25_000] * 4, start=T0 + timedelta(hours=1, minutes=15))
    assert len(discharge_episodes(ivs)) == 2
    assert check_storage_duration(ivs, 100_000).status == "fail"


def test_storage_passing_only_on_estimated_intervals_is_unknown():
    assert check_storage_duration(series([25_000] * 8, estimated={3}), 100_000).status == "unknown"


def test_storage_telemetry_without_discharge_is_evidence_against():
    # 9 §3g: a period of telemetry with no discharge at all is a fail, not "unknown, nameplate decides";
    # only no telemetry at all is unknown
    assert check_storage_duration(series([0, 0]), 100_000).status == "fail"
    assert check_storage_duration([], 100_000).status == "unknown"


def test_storage_energy_above_rating_and_suspect_intervals_do_not_count():
    # 100 kW battery: 8 quarter hours of 25 kWh = 2 h × rated → pass; one meter step of 60 kWh in a
    # quarter hour counts only 25 kWh (rated × 15 min); a suspect interval breaks the discharge
    assert check_storage_duration(series([25_000] * 8), 100_000).status == "pass"
    capped = check_storage_duration(series([60_000] * 4), 100_000)
    assert capped.status == "fail" and capped.data["episode_energy_wh"] == 100_000  # 1 h, capped
    ivs = series([25_000] * 8)
    ivs[4] = Interval(ivs[4].start, ivs[4].energy_wh, suspect=True)
    assert check_storage_duration(ivs, 100_000).status == "fail"  # two 1 h runs, not one of 2 h


def test_two_hours_means_one_continuous_discharge_of_two_hours():
    # half power for 4 h delivers 2 h × rated energy and lasts ≥ 2 h: passes; full power for 1.75 h
    # plus tolerance on the energy does not make 2 h (the tolerance is on energy only)
    assert check_storage_duration(series([12_500] * 16), 100_000).status == "pass"
    short = check_storage_duration(series([25_000] * 7), 100_000, tolerance=Decimal("0.2"))
    assert short.status == "fail" and "short of 2 h" in short.detail


def test_storage_check_takes_interval_energy():
    ivs = [IntervalEnergy(T0 + timedelta(minutes=15 * i), 25_000, False) for i in range(8)]
    assert check_storage_duration(ivs, 100_000).status == "pass"


def test_power_ratio():
    # §三(一) "不小于项目规模10%": 30 kWh in 15 min = 120 kW ≥ 10 % of 1 MW
    assert check_storage_power_ratio(series([10_000, 30_000]), MW).status == "pass"
    c = check_storage_power_ratio(series([10_000, 20_000]), MW)  # 80 kW = 8 %
    assert c.status == "fail" and c.data["max_mean_power_w"] == 80_000
    assert check_storage_power_ratio([], MW).status == "unknown"


def test_telemetry_checks_feed_the_engine():
    from metrics.policy import telemetry_checks

    checks = telemetry_checks(800_000, date(2024, 6, 1), pv_intervals=series([0, 300]),
                              discharge_intervals=series([25_000] * 6), storage_power_w=100_000)
    assert [(c.name, c.status) for c in checks] == [
        ("pv_produced_after_commissioning", "pass"),
        ("storage_discharge_duration", "fail"),  # 1.5 h × rated only
        ("storage_power_ratio", "pass"),  # 100 kW = 12.5 % of 0.8 MW
    ]
    assert [c.status for c in telemetry_checks(800_000, date(2024, 6, 1))] == ["unknown"]
