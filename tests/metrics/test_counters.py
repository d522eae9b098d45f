"""Counters to energy: rollover, reset, recorded replacement, unexplained drop, spike, completeness.

Known values from issue 4 "Counters to energy" and DESIGN.md ("Counter resets, 32/64-bit rollover
and meter replacement are recognised, never turned into negative or giant energy").
"""

from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.energy import (
    MeterReplacement, completeness, continuous_counter, counter_energy, interval_energy, rollover_wh,
)

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def minutes(*ms):
    return [T0 + timedelta(minutes=m) for m in ms]


def test_32_bit_rollover_is_a_wrap_not_a_reset():
    # meter rollover at 2**32 raw units of 1 Wh: 4294967000 -> 200 is 496 Wh, not a drop
    width = rollover_wh(32, 1.0)
    assert width == 2**32
    ts = minutes(0, 15, 30)
    cont, findings = continuous_counter([2**32 - 800, 2**32 - 296, 200], ts, rollover_wh=width)
    assert [f.kind for f in findings] == ["counter_rollover"]
    assert [iv.energy_wh for iv in interval_energy(ts, cont)] == [504, 496]


def test_16_bit_rollover_with_scale_in_raw_units():
    # a 16-bit register counting 10 Wh per unit wraps at 655 360 Wh
    width = rollover_wh(16, 10.0)
    cont, findings = continuous_counter([655_000.0, 400.0], minutes(0, 15), rollover_wh=width)
    assert cont[1] - cont[0] == 760 and findings[0].kind == "counter_rollover"


def test_a_drop_with_no_width_match_is_a_reset_and_unexplained():
    # reset: the counter restarts low in its range; it is not a wrap (was not in the upper half)
    ts = minutes(0, 15, 30)
    cont, findings = continuous_counter([1_000_000.0, 1_000_400.0, 50.0], ts, rollover_wh=2.0**32)
    assert cont == [1_000_000.0, 1_000_400.0, 1_000_400.0]  # counting on from the new value
    assert [f.kind for f in findings] == ["counter_drop_unexplained"]


def test_a_wrap_implying_power_above_the_rating_is_a_reset():
    # 2**32 - 10 -> 2**31 - 1 would be ~2.1 GWh in 15 min: not a wrap for a 1 MW point
    cont, findings = continuous_counter([2**32 - 10, 2**31 - 1], minutes(0, 15), rollover_wh=2.0**32,
                                        rated_power_w=1_000_000)
    assert findings[0].kind == "counter_drop_unexplained" and cont[1] == cont[0]


def test_recorded_replacement_keeps_energy_continuous():
    # the old meter read 5 000 at 00:15, ended at 5 300 when swapped at 00:20; the new meter
    # started at 12 and reads 212 at 00:30: 300 + 200 Wh across the swap, no finding of a drop
    ts = minutes(0, 15, 30)
    swap = MeterReplacement(T0 + timedelta(minutes=20), 5_300, 12, "meter failed calibration")
    cont, findings = continuous_counter([4_000.0, 5_000.0, 212.0], ts, replacements=[swap])
    assert [iv.energy_wh for iv in interval_energy(ts, cont)] == [1_000, 500]
    assert [f.kind for f in findings] == ["meter_replacement"]


def test_replacement_whose_figures_do_not_fit_is_reported_and_never_negative():
    swap = MeterReplacement(T0 + timedelta(minutes=5), 900, 50, "typo")
    cont, findings = continuous_counter([1_000.0, 60.0], minutes(0, 15), replacements=[swap])
    assert cont[1] - cont[0] == 10
    assert [f.kind for f in findings] == ["replacement_mismatch", "meter_replacement"]


def test_spike_marks_the_interval_suspect_and_the_choice_is_visible():
    # a 100 kW point jumps 1 000 000 Wh in 15 min (4 MW): a spike
    ts = minutes(0, 15, 30, 45, 60)
    values = [0, 25_000, 1_025_000, 1_050_000, 1_075_000]
    start, end = ts[0], ts[-1]
    counted = counter_energy(ts, values, start, end, rated_power_w=100_000)
    assert [f.kind for f in counted.findings] == ["spike"]
    assert [iv.suspect for iv in counted.intervals] == [False, True, False, False]
    assert counted.count_suspect is True and counted.total_wh == 1_075_000
    capped = counter_energy(ts, values, start, end, rated_power_w=100_000, count_suspect=False)
    # the spike step is capped at the rating: 100 kW * 0.25 h = 25 000 Wh
    assert capped.count_suspect is False and capped.total_wh == 100_000
    assert [iv.energy_wh for iv in capped.intervals] == [25_000] * 4
    assert capped.suspect_intervals == 1


def test_completeness_is_the_share_of_measured_intervals():
    # readings cover 00:00-00:30 then a 45-minute gap to 01:15, over a 2 h period
    ts = minutes(0, 15, 30, 75)
    ce = counter_energy(ts, [0, 10, 20, 50], T0, T0 + timedelta(hours=2))
    c = ce.completeness
    assert (c.expected, c.measured, c.estimated, c.missing) == (8, 2, 3, 3)
    assert c.share == Fraction(1, 4)


def test_completeness_rejects_unaligned_bounds():
    with pytest.raises(ValueError, match="not aligned"):
        completeness([], T0 + timedelta(minutes=1), T0 + timedelta(hours=1))


@pytest.mark.parametrize("bits, scale, match", [(24, 1.0, "24 bits"), (32, 0, "scale 0")])
def test_rollover_width_bad_input(bits, scale, match):
    with pytest.raises(ValueError, match=match):
        rollover_wh(bits, scale)


@st.composite
def wrapped_series(draw):
    """A true counter with gaps, reported through a 16-bit register (wraps many times)."""
    n = draw(st.integers(min_value=2, max_value=50))
    ts, true = [T0], [draw(st.integers(min_value=0, max_value=2**16 - 1))]
    for _ in range(n - 1):
        ts.append(ts[-1] + timedelta(seconds=draw(st.integers(min_value=1, max_value=3600))))
        true.append(true[-1] + draw(st.integers(min_value=0, max_value=2**15 - 1)))
    return ts, true


@settings(max_examples=200, deadline=None)
@given(wrapped_series())
def test_energy_through_wrapping_counter_is_conserved_across_gaps(series):
    # totals conserved across gaps, even when the 16-bit register wraps between readings
    ts, true = series
    raw = [v % 2**16 for v in true]
    cont, findings = continuous_counter(raw, ts, rollover_wh=2.0**16)
    assert all(f.kind == "counter_rollover" for f in findings)
    assert sum(iv.energy_wh for iv in interval_energy(ts, cont)) == true[-1] - true[0]


@settings(max_examples=150, deadline=None)
@given(wrapped_series(), st.integers(min_value=0, max_value=240))
def test_splitting_a_period_and_summing_gives_the_whole(series, cut):
    # issue 4 property: [a, m) + [m, b) == [a, b) for the same readings, wraps and gaps included
    ts, true = series
    raw = [v % 2**16 for v in true]
    a = T0
    b = T0 + timedelta(hours=60)
    m = T0 + timedelta(minutes=15 * cut)
    kw = {"rollover_wh": 2.0**16}
    whole = counter_energy(ts, raw, a, b, **kw)
    left, right = counter_energy(ts, raw, a, m, **kw), counter_energy(ts, raw, m, b, **kw)
    assert left.total_wh + right.total_wh == whole.total_wh
    assert left.completeness.measured + right.completeness.measured == whole.completeness.measured
