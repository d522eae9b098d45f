"""Counters to energy: rollover, reset, recorded replacement, unexplained drop, spike, completeness.

Known values from issue 4 "Counters to energy" and DESIGN.md ("Counter resets, 32/64-bit rollover
and meter replacement are recognised, never turned into negative or giant energy").
"""

from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.counters import MeterReplacement, continuous_counter, rollover_wh
from metrics.intervals import completeness, counter_energy, floor_interval, interval_energy

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def minutes(*ms):
    return [T0 + timedelta(minutes=m) for m in ms]


def test_32_bit_rollover_is_a_wrap_not_a_reset():
    # meter rollover at 2**32 raw units of 1 Wh: 4294967000 -> 200 is 496 Wh, not a drop;
    # the next reading (700) continues the wrapped sequence, which confirms the wrap
    width = rollover_wh(32, 1.0)
    assert width == 2**32
    ts = minutes(0, 15, 30, 45)
    cont, findings = continuous_counter([2**32 - 800, 2**32 - 296, 200, 700], ts, rollover_wh=width)
    assert [f.kind for f in findings] == ["counter_rollover"]
    assert [iv.energy_wh for iv in interval_energy(ts, cont)] == [504, 496, 500]


def test_16_bit_rollover_with_scale_in_raw_units():
    # a 16-bit register counting 10 Wh per unit wraps at 655 360 Wh
    width = rollover_wh(16, 10.0)
    cont, findings = continuous_counter([655_000.0, 400.0, 900.0], minutes(0, 15, 30), rollover_wh=width)
    assert cont[1] - cont[0] == 760 and findings[0].kind == "counter_rollover"


def test_a_drop_with_no_width_match_is_a_reset_and_unexplained():
    # reset: the counter restarts low in its range; it is not a wrap (was not in the upper half)
    # (the next reading, 100, continues from the low value: that confirms the reset)
    ts = minutes(0, 15, 30, 45)
    cont, findings = continuous_counter([1_000_000.0, 1_000_400.0, 50.0, 100.0], ts, rollover_wh=2.0**32)
    assert cont == [1_000_000.0, 1_000_400.0, 1_000_400.0, 1_000_450.0]  # counting on from the new value
    assert [f.kind for f in findings] == ["counter_drop_unexplained"]


def test_a_wrap_implying_power_above_the_rating_is_a_reset():
    # 2**32 - 10 -> 2**31 - 1 would be ~2.1 GWh in 15 min: not a wrap for a 1 MW point
    cont, findings = continuous_counter([2**32 - 10, 2**31 - 1, 2**31 + 99], minutes(0, 15, 30), rollover_wh=2.0**32,
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


def test_a_replacement_at_the_instant_of_the_final_reading_starts_the_new_meter_after_it():
    # the old meter's final reading 5 300 Wh is taken at 00:30, the very instant the swap is
    # recorded; the new meter starts at 12 and reads 212 at 00:45. That reading is the old meter's:
    # 300 Wh then 200 Wh, not 5 300 - 12 Wh of the whole old counter
    ts = minutes(0, 15, 30, 45)
    swap = MeterReplacement(T0 + timedelta(minutes=30), 5_300, 12, "meter failed calibration")
    cont, findings = continuous_counter([4_700.0, 5_000.0, 5_300.0, 212.0], ts, replacements=[swap])
    assert [iv.energy_wh for iv in interval_energy(ts, cont)] == [300, 300, 200]
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
    """A true counter with gaps, reported through a 16-bit register (wraps many times); with no
    rating, a step is at most 1/8 of the width (more is a reset: UNRATED_WRAP_SHARE)."""
    n = draw(st.integers(min_value=2, max_value=50))
    ts, true = [T0], [draw(st.integers(min_value=0, max_value=2**16 - 1))]
    for _ in range(n - 1):
        ts.append(ts[-1] + timedelta(seconds=draw(st.integers(min_value=1, max_value=3600))))
        true.append(true[-1] + draw(st.integers(min_value=0, max_value=2**13)))
    return ts, true


@settings(max_examples=200, deadline=None)
@given(wrapped_series())
def test_energy_through_wrapping_counter_is_conserved_across_gaps(series):
    # totals conserved across gaps, even when the 16-bit register wraps between readings
    ts, true = series
    raw = [v % 2**16 for v in true]
    cont, findings = continuous_counter(raw, ts, rollover_wh=2.0**16)
    # a wrap at the very last reading is provisional (no later reading confirms it): not counted yet
    last_wraps = raw[-1] < raw[-2]
    assert [f.kind for f in findings] == (["counter_rollover"] * (len(findings) - last_wraps)
                                          + ["counter_drop_provisional"] * last_wraps)
    expected = (true[-2] if last_wraps else true[-1]) - true[0]
    assert sum(iv.energy_wh for iv in interval_energy(ts, cont)) == expected


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


# --- outliers: one glitch reading never becomes huge energy -----------------------------------

def total(ts, values, **kw):
    """Total energy of all the readings' intervals."""
    start = ts[0].replace(minute=0, second=0)
    return counter_energy(ts, values, start, start + timedelta(days=2), **kw)


def test_a_single_drop_to_zero_is_an_outlier_not_a_reset():
    # 50 000 000 ... then one reading of 0 and straight back to 50 000 300: before the fix the drop
    # was a reset and the return 0 -> 50 000 300 counted as 50 MWh; the counter only moved 400 Wh
    ts = minutes(0, 15, 30, 45, 60, 75)
    values = [50_000_000, 50_000_100, 50_000_200, 0, 50_000_300, 50_000_400]
    ce = total(ts, values)
    assert ce.total_wh == 400
    assert [(f.kind, f.ts) for f in ce.findings] == [("counter_outlier", ts[3])]
    # continuous_counter keeps one value per reading: the outlier gets the interpolated counter
    cont, _ = continuous_counter(values, ts)
    assert cont == [50_000_000, 50_000_100, 50_000_200, 50_000_250, 50_000_300, 50_000_400]


def test_a_single_upward_spike_is_an_outlier():
    # 1 200 -> 4e9 -> 1 300: one garbage reading, not 4 GWh; the counter moved 1 000 -> 1 500
    ts = minutes(0, 15, 30, 45, 60, 75)
    values = [1_000, 1_100, 1_200, 4e9, 1_300, 1_500]
    ce = total(ts, values)
    assert ce.total_wh == 500
    assert [f.kind for f in ce.findings] == ["counter_outlier"]


def test_an_upward_spike_below_the_32_bit_width_is_not_taken_as_a_wrap():
    # with a 2**32 width, 1 200 -> 3e9 -> 1 300 looked like a rise then a wrap (~1.3 GWh): it is
    # one outlier, and 1 300 follows 1 200
    ts = minutes(0, 15, 30, 45, 60)
    ce = total(ts, [1_100, 1_200, 3e9, 1_300, 1_400], rollover_wh=2.0**32)
    assert ce.total_wh == 300
    assert [f.kind for f in ce.findings] == ["counter_outlier"]


def test_a_reset_is_accepted_when_the_next_reading_continues_from_the_low_value():
    # 1 000 400 -> 50 -> 150: the counter really restarted; the drop adds nothing, 50 -> 150 counts
    ts = minutes(0, 15, 30, 45)
    ce = total(ts, [1_000_000, 1_000_400, 50, 150])
    assert ce.total_wh == 400 + 100
    assert [f.kind for f in ce.findings] == ["counter_drop_unexplained"]


def test_a_drop_that_keeps_falling_is_not_a_reset():
    # 1 100 -> 50 -> 30 -> 1 200: neither low reading is continued from; both are skipped
    ts = minutes(0, 15, 30, 45, 60)
    ce = total(ts, [1_000, 1_100, 50, 30, 1_200])
    assert ce.total_wh == 200
    assert [f.kind for f in ce.findings] == ["counter_outlier", "counter_outlier"]


def test_a_wrap_is_accepted_only_when_the_next_reading_continues_it():
    width = 2.0**16
    ts = minutes(0, 15, 30, 45)
    # 65 000 -> 300 -> 800: a wrap (836 Wh) confirmed by 800, then 500 Wh
    wrapped = total(ts, [64_500, 65_000, 300, 800], rollover_wh=width)
    assert wrapped.total_wh == 500 + 836 + 500
    assert [f.kind for f in wrapped.findings] == ["counter_rollover"]
    # 65 000 -> 300 -> 65 200: back at the level, so 300 was a glitch, not a wrap
    glitch = total(ts, [64_500, 65_000, 300, 65_200], rollover_wh=width)
    assert glitch.total_wh == 700
    assert [f.kind for f in glitch.findings] == ["counter_outlier"]


def test_a_drop_at_the_last_reading_is_provisional_and_adds_nothing():
    # no reading follows the drop: reset, wrap or glitch cannot be told apart yet. It is not used
    # (no interval after the last reading used) and reported; a later reading decides it
    ts = minutes(0, 15, 30)
    ce = total(ts, [2**32 - 800, 2**32 - 296, 200], rollover_wh=2.0**32)
    assert ce.total_wh == 504
    assert [f.kind for f in ce.findings] == ["counter_drop_provisional"]
    assert len(ce.intervals) == 1
    later = total(minutes(0, 15, 30, 45), [2**32 - 800, 2**32 - 296, 200, 700], rollover_wh=2.0**32)
    assert later.total_wh == 504 + 496 + 500


def test_a_wrap_beyond_the_rating_is_a_reset_and_a_rise_beyond_it_a_spike():
    # 10 kW for 15 min is at most 2 500 Wh: a "wrap" of 65 000 -> 30 000 (30 536 Wh) is a reset
    width = 2.0**16
    ts = minutes(0, 15, 30, 45)
    ce = total(ts, [64_000, 65_000, 30_000, 31_000], rollover_wh=width, rated_power_w=10_000)
    assert ce.total_wh == 1_000 + 0 + 1_000
    assert [f.kind for f in ce.findings] == ["counter_drop_unexplained"]
    # a rise above the rating that the next readings confirm is kept, as a spike, suspect
    sp = total(ts, [0, 1_000, 20_000, 21_000], rated_power_w=10_000, count_suspect=False)
    assert [f.kind for f in sp.findings] == ["spike"] and sp.suspect_intervals == 1
    assert sp.total_wh == 1_000 + 2_500 + 1_000


def test_a_spike_as_the_second_last_reading_is_skipped_when_beyond_the_rating():
    # 1 200 -> 4e9 -> 1 300 at the end of the series: nothing after 1 300 to look at, but 4e9 is
    # far beyond what a 10 kW point can do in 15 min, so it is an outlier
    ts = minutes(0, 15, 30, 45)
    ce = total(ts, [1_100, 1_200, 4e9, 1_300], rated_power_w=10_000)
    assert ce.total_wh == 200
    assert [f.kind for f in ce.findings] == ["counter_outlier"]


@st.composite
def series_with_outlier(draw):
    """A monotone counter (steps within a 10 kW rating) and one reading of any value inserted at a
    time of its own, anywhere (before the first, between two, after the last)."""
    n = draw(st.integers(min_value=3, max_value=30))
    ts, values = [T0], [draw(st.integers(min_value=0, max_value=2**31))]
    for _ in range(n - 1):
        dt = draw(st.integers(min_value=60, max_value=1800))
        ts.append(ts[-1] + timedelta(seconds=dt))
        values.append(values[-1] + draw(st.integers(min_value=0, max_value=10_000 * dt // 3600)))
    k = draw(st.integers(min_value=0, max_value=n))
    lo = ts[k - 1] if k > 0 else ts[0] - timedelta(seconds=1800)
    hi = ts[k] if k < n else ts[-1] + timedelta(seconds=1800)
    at = lo + timedelta(seconds=draw(st.integers(min_value=1, max_value=int((hi - lo).total_seconds()) - 1)))
    bad = draw(st.integers(min_value=0, max_value=2**32 - 1))
    return ts, values, k, at, bad


@settings(max_examples=300, deadline=None)
@given(series_with_outlier())
def test_one_outlier_never_moves_the_total_by_more_than_the_rating_allows(s):
    ts, values, k, at, bad = s
    rated = 10_000
    kw = {"rated_power_w": rated, "count_suspect": False, "rollover_wh": 2.0**32}
    a = floor_interval(ts[0]) - timedelta(hours=1)
    b = a + timedelta(days=1)
    clean = counter_energy(ts, values, a, b, **kw).total_wh
    ts2, v2 = ts[:k] + [at] + ts[k:], values[:k] + [bad] + values[k:]
    dirty = counter_energy(ts2, v2, a, b, **kw).total_wh
    isolated = 0 < k < len(ts) - 1 and (bad < values[k - 1] or bad > values[k + 1])
    if isolated:
        # below the reading before it, or above the two after it: skipped, the total is unchanged
        assert dirty == clean
    else:
        # first, last, or a reading the next ones do not show to be out of line (with one reading
        # after it, a rise there and a drop of the last reading cannot be told apart yet): at
        # most the rated power over the gap around it
        lo = ts[k - 1] if k > 0 else at
        hi = ts[k] if k < len(ts) else at
        if k == 0:
            # an outlier before the first reading has no reading before it to be judged by: when the
            # first true reading then looks like the drop, that one is skipped instead, so the
            # energy at stake runs to the reading after it (found: [3454 | 2577, 3454, 3454, …])
            hi = ts[1]
        assert abs(dirty - clean) <= rated * (hi - lo).total_seconds() / 3600 + 1


def test_an_outlier_before_the_first_reading_is_bounded_by_the_next_gap():
    # found by the property above: a glitch 3454 before a series 2577, 3454, 3454… cannot be told
    # from a true 3454 followed by a glitch 2577; either way at most the rating over the gap to the
    # reading after the first (10 kW × 631 s) is at stake, never giant energy
    t = [T0 + timedelta(seconds=s) for s in (-315, 0, 316, 376, 436)]
    kw = {"rated_power_w": 10_000, "count_suspect": False, "rollover_wh": 2.0**32}
    a, b = floor_interval(T0) - timedelta(hours=1), floor_interval(T0) + timedelta(hours=23)
    clean = counter_energy(t[1:], [2577, 3454, 3454, 3454], a, b, **kw).total_wh
    dirty = counter_energy(t, [3454, 2577, 3454, 3454, 3454], a, b, **kw).total_wh
    assert clean == 877
    assert abs(dirty - clean) <= 10_000 * 631 / 3600


def test_without_a_rating_a_drop_far_below_the_top_is_a_reset():
    # a 32-bit register of 10 Wh per unit wraps at 42.9 GWh; a counter at 30 GWh (upper half, but
    # 12.9 GWh below the top) falling to 0 is a reset: a wrap would invent 12.9 GWh in 15 min
    width = rollover_wh(32, 10.0)
    cont, findings = continuous_counter([30e9 - 100, 30e9, 0.0, 100.0], minutes(0, 15, 30, 45), rollover_wh=width)
    assert [f.kind for f in findings] == ["counter_drop_unexplained"]
    assert cont[-1] - cont[0] == 200
    # near the top it still wraps: 1 000 Wh below the top to 500 Wh is 1 500 Wh
    cont, findings = continuous_counter([width - 2000, width - 1000, 500.0, 900.0], minutes(0, 15, 30, 45),
                                        rollover_wh=width)
    assert [f.kind for f in findings] == ["counter_rollover"] and cont[2] - cont[1] == 1500


def test_a_rise_beyond_the_rating_at_the_newest_reading_waits_for_the_next():
    # a 100 kW point reads 4e9 Wh at its newest reading: not counted yet (provisional), as a drop is
    ts = minutes(0, 15, 30)
    cont, findings = continuous_counter([1_000.0, 26_000.0, 4e9], ts, rated_power_w=100_000)
    assert [f.kind for f in findings] == ["counter_rise_provisional"] and cont[-1] == cont[1]
    # the next reading falls back: an isolated outlier, never energy
    cont, findings = continuous_counter([1_000.0, 26_000.0, 4e9, 76_000.0], minutes(0, 15, 30, 45),
                                        rated_power_w=100_000)
    assert [f.kind for f in findings] == ["counter_outlier"] and cont[-1] - cont[0] == 75_000
    # a rise within the rating at the newest reading is used at once
    cont, findings = continuous_counter([1_000.0, 26_000.0, 51_000.0], ts, rated_power_w=100_000)
    assert findings == [] and cont[-1] == 51_000


# --- the rules decided reading by reading, as they were written before knot_columns ----------
# (plus runs of up to GLITCH_RUN unusual readings, and the guard that a counter made continuous never falls by the rounding of a moved offset)

import math  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from metrics.counters import GLITCH_RUN, CounterFinding, _is_wrap  # noqa: E402


def reference_knots(
    values: Sequence[float],
    timestamps: Sequence[datetime],
    rollover_wh: float | None,
    replacements: Sequence[MeterReplacement],
    rated_power_w: float | None,
) -> tuple[list[float | None], list[CounterFinding]]:
    """The continuous counter at each reading used as a knot, None at each reading skipped."""
    if len(values) != len(timestamps):
        raise ValueError(f"{len(timestamps)} timestamps but {len(values)} values")
    for r in replacements:
        if r.ts.tzinfo is None:
            raise ValueError(f"meter replacement at {r.ts} has no time zone")
    events = sorted(replacements, key=lambda r: r.ts)
    n = len(values)

    def swapped(t0: datetime, t1: datetime) -> list[MeterReplacement]:
        # a reading at the very instant of a swap is the old meter's final reading: the new meter
        # starts after it (docs/accounting.md "Meter replacement")
        return [r for r in events if t0 <= r.ts < t1]

    def ahead(i: int, k: int) -> float | None:
        """The reading ``k`` after ``i``, when there is one and no replacement lies in between."""
        j = i + k
        if j >= n or swapped(timestamps[i], timestamps[j]):
            return None
        return values[j]

    def within_rating(step_wh: float, t0: datetime, t1: datetime) -> bool:
        return rated_power_w is None or step_wh <= rated_power_w * (t1 - t0).total_seconds() / 3600 + 1

    out: list[float | None] = []
    findings: list[CounterFinding] = []
    offset = 0.0
    prev = prev_ts = None  # the last reading used as a knot
    for i, (v, ts) in enumerate(zip(values, timestamps)):
        if prev is None:
            out.append(v + offset)
            prev, prev_ts = v, ts
            continue
        here = swapped(prev_ts, ts)
        nxt = ahead(i, 1)
        if here:
            # several swaps between two readings: chain them
            last = prev
            step = 0.0
            for r in here:
                part = r.old_final_wh - last
                if part < 0:
                    findings.append(CounterFinding(
                        "replacement_mismatch", r.ts,
                        f"old meter's final reading {r.old_final_wh} is below the last reading {last}; taken as 0"))
                    part = 0.0
                step += part
                last = r.new_initial_wh
                findings.append(CounterFinding(
                    "meter_replacement", r.ts,
                    f"meter replaced (old final {r.old_final_wh}, new initial {r.new_initial_wh}): {r.reason}"))
            tail = v - last
            if tail < 0:
                findings.append(CounterFinding(
                    "replacement_mismatch", ts,
                    f"reading {v} is below the new meter's initial reading {last}; taken as 0"))
                tail = 0.0
            last_knot = next(c for c in reversed(out) if c is not None)
            offset = last_knot + step + tail - v
        elif v >= prev:
            if nxt is None and not within_rating(v - prev, prev_ts, ts):
                # a rise beyond the rating at the newest reading waits for the next one, as a drop does
                findings.append(CounterFinding(
                    "counter_rise_provisional", ts,
                    f"counter rose from {prev} to {v}, beyond the rating, and no later reading (before the end of "
                    "the series or a recorded replacement) says whether it is a glitch: reading not used (yet)"))
                out.append(None)
                continue
            # an upward spike: the next reading falls back to between the level before and the spike,
            # and the one after it (if any) does not climb back to the spike — or the rise itself is
            # beyond the rating (then a later return to the same level does not vouch for it)
            # (a run: the first of the next GLITCH_RUN readings back between the two)
            k = next((k for k in range(1, GLITCH_RUN + 1)
                      if ahead(i, k) is not None and prev <= ahead(i, k) < v), None)
            back, after = (None, None) if k is None else (ahead(i, k), ahead(i, k + 1))
            if (back is not None
                    and ((after is not None and after < v)
                         or not within_rating(v - prev, prev_ts, ts))):
                findings.append(CounterFinding(
                    "counter_outlier", ts,
                    f"reading {v} is an isolated outlier: the counter went from {prev} back to {back}"
                    + ("" if k == 1 else f" {k} readings later") + "; reading not used"))
                out.append(None)
                continue
        else:
            # a drop: decided by what the counter does next
            if nxt is None:
                findings.append(CounterFinding(
                    "counter_drop_provisional", ts,
                    f"counter fell from {prev} to {v} and no later reading (before the end of the series or a "
                    "recorded replacement) says whether it is a reset, a wrap or a glitch: reading not used (yet)"))
                out.append(None)
                continue
            # (a run: back at or above the level before within GLITCH_RUN readings)
            # (unless the low readings count on from the drop: rising within the rating up to the
            # return, climbing more than the counter gained over the level before)
            k = next((k for k in range(1, GLITCH_RUN + 1) if ahead(i, k) is not None and ahead(i, k) >= prev),
                     None)
            counts_on = k is not None and k > 1 and all(
                values[m + 1] >= values[m] and within_rating(values[m + 1] - values[m], timestamps[m], timestamps[m + 1])
                for m in range(i, i + k)) and values[i + k - 1] - values[i] > values[i + k] - prev
            if k is not None and not counts_on:
                findings.append(CounterFinding(
                    "counter_outlier", ts,
                    f"reading {v} is an isolated outlier: the counter fell from {prev} and returned to {ahead(i, k)}"
                    + ("" if k == 1 else f" {k} readings later") + "; reading not used"))
                out.append(None)
                continue
            if nxt < v:
                findings.append(CounterFinding(
                    "counter_outlier", ts,
                    f"counter fell from {prev} to {v} and the next reading {nxt} does not continue from it; "
                    "reading not used"))
                out.append(None)
                continue
            # the next reading continues from the low value: a wrap or a reset
            dt_s = (ts - prev_ts).total_seconds()
            if _is_wrap(prev, v, rollover_wh, dt_s, rated_power_w):
                findings.append(CounterFinding(
                    "counter_rollover", ts, f"counter wrapped at {rollover_wh:.0f} Wh: {prev} -> {v}"))
                offset += rollover_wh
            else:
                findings.append(CounterFinding(
                    "counter_drop_unexplained", ts,
                    f"counter fell from {prev} to {v} with no recorded replacement; "
                    "treated as a reset (counting on from the new value)"))
                offset += prev - v
        c = v + offset  # (the guard knot_columns adds: rounding never makes the counter fall)
        last_knot = next((x for x in reversed(out) if x is not None), None)
        if last_knot is not None and c < last_knot:
            offset = last_knot - v
            while v + offset < last_knot:
                offset = math.nextafter(offset, math.inf)
        out.append(v + offset)
        prev, prev_ts = v, ts
    return out, findings


@st.composite
def unruly_series(draw):
    """Readings of a counter with everything the rules decide: steps within and above a rating,
    flat stretches, zero and giant glitches, two unusual readings in a row, resets, wraps of a
    16-bit register, drops at the end, and recorded replacements (some at a reading's instant,
    some with figures that do not fit), at microsecond times."""
    n = draw(st.integers(min_value=1, max_value=60))
    t = T0 + timedelta(microseconds=draw(st.integers(0, 10**6)))
    true = float(draw(st.integers(0, 2**16 - 1)))
    ts, values = [], []
    for _ in range(n):
        t += timedelta(seconds=draw(st.integers(1, 1800)), microseconds=draw(st.integers(0, 999_999)))
        kind = draw(st.sampled_from(["ok"] * 6 + ["flat", "big", "zero", "huge", "reset", "wrap"]))
        if kind == "ok":
            true += draw(st.floats(min_value=0, max_value=3000, allow_nan=False))
        elif kind == "big":
            true += draw(st.floats(min_value=3000, max_value=60_000, allow_nan=False))
        elif kind == "reset":
            true = float(draw(st.integers(0, 500)))
        elif kind == "wrap":
            true = true % 2**16
        ts.append(t)
        values.append({"zero": 0.0, "huge": 4e9}.get(kind, true))
    reps = []
    for _ in range(draw(st.integers(0, 2))):
        k = draw(st.integers(0, n - 1))
        at = ts[k] - timedelta(microseconds=draw(st.sampled_from([0, 0, 1, 10**6])))
        reps.append(MeterReplacement(at, draw(st.sampled_from([values[max(k - 1, 0)] + 50.0, 0.0])),
                                     draw(st.sampled_from([0.0, values[k] - 10.0, values[k] + 10.0])), "swap"))
    return ts, values, reps


@settings(max_examples=400, deadline=None)
@given(unruly_series(), st.sampled_from([None, 2.0**16]), st.sampled_from([None, 10_000.0, 1e6]))
def test_the_rules_skipping_ordinary_readings_decide_as_reading_by_reading(s, width, rated):
    # knot_columns takes runs of ordinary readings at once and decides only the others one by one:
    # the same knots, continuous counter and findings (kind, time and text) as deciding every
    # reading, and as the rules' earlier reading-by-reading code (kept above as the reference)
    import numpy as np

    from metrics.counters import _knots, knot_columns

    ts, values, reps = s
    want = reference_knots(values, ts, width, reps, rated)
    assert _knots(values, ts, width, reps, rated) == want
    us = np.array([(t - T0) // timedelta(microseconds=1) for t in ts], dtype=np.int64)
    for fast in (True, False):
        knot, cont, findings = knot_columns(
            us, np.array(values), lambda r: (r.ts - T0) // timedelta(microseconds=1), rollover_wh=width,
            replacements=reps, rated_power_w=rated, value=values.__getitem__, time=ts.__getitem__,
            fast_forward=fast)
        assert ([c if k else None for k, c in zip(knot.tolist(), cont.tolist())], findings) == want


def test_a_second_reset_never_makes_the_counter_fall_by_rounding():
    # two resets of a counter read in fractional Wh (a float register): the second moved offset,
    # added in floating point, put the continuous counter 1 ulp below the knot before it, and
    # interval_energy refused the series ("counter falls"), aborting the rollup. The falls add no
    # energy, as every reset: 3 × 50.5 Wh, from 6.7 GWh down to 121 Wh, up, down to 84 Wh and up
    from metrics.intervals import counter_intervals

    values = [6710536161.394, 121.112, 171.612, 84.013, 134.513, 185.013]
    cont, findings = continuous_counter(values, minutes(0, 15, 30, 45, 60, 75))
    assert all(b >= a for a, b in zip(cont, cont[1:]))
    assert [f.kind for f in findings] == ["counter_drop_unexplained"] * 2
    ivs, _ = counter_intervals(minutes(0, 15, 30, 45, 60, 75), values)
    assert [iv.energy_wh for iv in ivs] == [0, 51, 0, 50, 51]  # whole Wh at each boundary: 152 in all
