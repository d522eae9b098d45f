from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.counters import continuous_counter
from metrics.intervals import floor_interval, interval_energy, sum_by_interval
from tests.metrics.test_counters import unruly_series

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def minutes(*ms):
    return [T0 + timedelta(minutes=m) for m in ms]


def test_steady_load_gives_equal_intervals():
    # 400 kW steady, read every minute for an hour: 100 kWh per quarter hour
    ts = minutes(*range(0, 61))
    values = [1_000_000 + 400_000 * m / 60 for m in range(0, 61)]
    ivs = interval_energy(ts, values)
    assert [iv.start for iv in ivs] == minutes(0, 15, 30, 45)
    assert [iv.energy_wh for iv in ivs] == [100_000] * 4
    assert not any(iv.estimated for iv in ivs)


def test_gap_spanning_several_intervals_conserves_energy_and_is_estimated():
    # readings at 00:00, 00:10, then nothing until 01:20 (a 70-minute gap), then 01:30
    ts = minutes(0, 10, 80, 90)
    values = [0, 1_000, 8_000, 9_000]
    ivs = interval_energy(ts, values)
    assert sum(iv.energy_wh for iv in ivs) == 9_000  # total conserved
    by_start = {iv.start: iv for iv in ivs}
    # 00:00-00:15 contains the start of the gap, 00:15..01:15 lie inside it, 01:15-01:30 its end
    assert [by_start[t].estimated for t in minutes(0, 15, 30, 45, 60, 75)] == [True] * 6
    # the gap's energy is spread linearly: 100 Wh/min
    assert by_start[minutes(30)[0]].energy_wh == 1_500


def test_partial_first_and_last_intervals_are_estimated():
    ts = minutes(5, 15, 30, 40)
    ivs = interval_energy(ts, [0, 100, 250, 350])
    assert [(iv.energy_wh, iv.estimated) for iv in ivs] == [(100, True), (150, False), (100, True)]


def test_interval_alignment_is_local_quarter_hours_in_shanghai():
    # 2024-12-31T16:30Z is 2025-01-01 00:30 in Shanghai: its interval starts 00:30 local
    ts = datetime(2024, 12, 31, 16, 37, tzinfo=timezone.utc)
    assert floor_interval(ts) == datetime(2024, 12, 31, 16, 30, tzinfo=timezone.utc)


def test_counter_reset_never_gives_negative_energy():
    ts = minutes(0, 15, 30, 45)
    cont, findings = continuous_counter([500.0, 900.0, 20.0, 120.0], ts)
    assert cont == [500.0, 900.0, 900.0, 1000.0]
    # no replacement recorded: a reset counting on from 20, and a finding (issue 4)
    assert [f.kind for f in findings] == ["counter_drop_unexplained"]
    assert [iv.energy_wh for iv in interval_energy(ts, cont)] == [400, 0, 100]


@pytest.mark.parametrize("ts, values, match", [
    (minutes(0, 1), [0], "2 timestamps but 1 values"),
    (minutes(1, 0), [0, 1], "not increasing"),
    (minutes(0, 1), [5, 4], "counter falls"),
    ([datetime(2025, 1, 1), datetime(2025, 1, 2)], [0, 1], "no time zone"),
])
def test_bad_input_raises_naming_the_value(ts, values, match):
    with pytest.raises(ValueError, match=match):
        interval_energy(ts, values)


def test_sum_by_interval_adds_points_and_keeps_estimated():
    a = interval_energy(minutes(0, 15, 30), [0, 10, 20])
    b = interval_energy(minutes(0, 15, 50), [0, 5, 15])
    total = sum_by_interval([a, b])
    # b has a 35-minute gap (15 -> 50): its 15:00, 30:00 and partial 45:00 intervals are estimated
    assert [(iv.energy_wh, iv.estimated) for iv in total.values()] == [(15, False), (14, True), (5, True), (1, True)]


@st.composite
def counter_series(draw):
    n = draw(st.integers(min_value=2, max_value=60))
    gaps = draw(st.lists(st.integers(min_value=1, max_value=7200), min_size=n - 1, max_size=n - 1))
    steps = draw(st.lists(st.integers(min_value=0, max_value=2_000_000), min_size=n - 1, max_size=n - 1))
    start = T0 + timedelta(seconds=draw(st.integers(min_value=0, max_value=86_400)))
    ts, values = [start], [draw(st.integers(min_value=0, max_value=2**32))]
    for g, s in zip(gaps, steps):
        ts.append(ts[-1] + timedelta(seconds=g))
        values.append(values[-1] + s)
    return ts, values


@settings(max_examples=300, deadline=None)
@given(counter_series())
def test_energy_is_conserved_across_gaps(series):
    ts, values = series
    ivs = interval_energy(ts, values)
    assert sum(iv.energy_wh for iv in ivs) == values[-1] - values[0]
    assert all(iv.energy_wh >= 0 for iv in ivs)
    starts = [iv.start for iv in ivs]
    assert starts == sorted(set(starts))


@settings(max_examples=100, deadline=None)
@given(counter_series(), st.integers(min_value=1, max_value=58))
def test_splitting_the_readings_and_summing_gives_the_whole(series, cut):
    ts, values = series
    k = 1 + cut % (len(ts) - 1) if len(ts) > 2 else 1
    whole = sum(iv.energy_wh for iv in interval_energy(ts, values))
    parts = sum(iv.energy_wh for iv in interval_energy(ts[: k + 1], values[: k + 1]))
    parts += sum(iv.energy_wh for iv in interval_energy(ts[k:], values[k:]))
    assert parts == whole


@st.composite
def plain_series(draw):
    """A counter that never falls, read at uneven times (microseconds included), maybe with gaps."""
    from datetime import datetime, timezone

    n = draw(st.integers(min_value=2, max_value=80))
    t = datetime(2025, 6, 21, tzinfo=timezone.utc) + timedelta(microseconds=draw(st.integers(0, 10**9)))
    v = draw(st.floats(min_value=0, max_value=1e12, allow_nan=False))
    ts, vs = [t], [v]
    for _ in range(n - 1):
        t += timedelta(microseconds=draw(st.integers(1, 4 * 3600 * 10**6)))
        v += draw(st.one_of(st.integers(0, 10**6).map(float), st.floats(min_value=0, max_value=1e6)))
        ts.append(t)
        vs.append(v)
    return ts, vs


@settings(max_examples=200, deadline=None)
@given(plain_series(), st.sampled_from([None, 1e6, 1e9]), st.sampled_from([900, 3600]), st.booleans())
def test_the_numpy_path_gives_exactly_the_reading_by_reading_result(series, rated, max_gap, stated):
    # the vectorised path of counter_intervals (a plain series) against interval_energy, the
    # reading-by-reading reference: the same intervals, Wh and flags, exactly
    from metrics.intervals import Resolution, _plain_counter_intervals, counter_intervals

    ts, vs = series
    res = [Resolution(ts[0], ts[len(ts) // 2], 7200)] if stated else []
    fast = _plain_counter_intervals(ts, vs, (), rated, 900, max_gap, res)
    ref = interval_energy(ts, vs, max_gap_s=max_gap, rated_power_w=rated, resolutions=res)
    steps_ok = rated is None or all(b - a <= rated * (tb - ta).total_seconds() / 3600 + 1
                                    for a, b, ta, tb in zip(vs, vs[1:], ts, ts[1:]))
    if steps_ok:
        assert fast == ref
        assert counter_intervals(ts, vs, rated_power_w=rated, max_gap_s=max_gap, resolutions=res) == (ref, [])
    else:
        assert fast is None  # a step above the rating takes the reading-by-reading path (a spike)


@settings(max_examples=200, deadline=None)
@given(plain_series(), st.sampled_from([None, 1e6, 1e9]), st.sampled_from([900, 3600]), st.booleans())
def test_the_columns_are_the_intervals_of_counter_intervals(series, rated, max_gap, stated):
    # counter_interval_columns (the rollup's path: times as int64 microseconds, values as float64,
    # intervals as columns) gives what counter_intervals gives, to the microsecond, Wh and flag;
    # a step above the rating (a spike) takes the reading-by-reading path in both
    import numpy as np

    from metrics.intervals import IntervalColumns, Resolution, counter_interval_columns, counter_intervals, epoch_us

    ts, vs = series
    res = [Resolution(ts[0], ts[len(ts) // 2], 7200)] if stated else []
    ref, ref_findings = counter_intervals(ts, vs, rated_power_w=rated, max_gap_s=max_gap, resolutions=res)
    cols, findings = counter_interval_columns(epoch_us(ts), np.array(vs), rated_power_w=rated, max_gap_s=max_gap,
                                              resolutions=res)
    assert cols.intervals() == ref and findings == ref_findings
    assert cols.energy_wh.dtype == np.int64 and cols.start_us.dtype == np.int64
    again = IntervalColumns.of(ref)
    assert [c.tolist() for c in (again.start_us, again.energy_wh, again.estimated, again.suspect)] == \
        [c.tolist() for c in (cols.start_us, cols.energy_wh, cols.estimated, cols.suspect)]
    assert epoch_us(ts).tolist() == [(t - T0) // timedelta(microseconds=1) + int(T0.timestamp()) * 10**6 for t in ts]


@settings(max_examples=300, deadline=None)
@given(unruly_series(), st.sampled_from([None, 2.0**16]), st.sampled_from([None, 10_000.0, 1e6]), st.booleans(),
       st.sampled_from([900, 3600]))
def test_the_columns_of_any_series_are_the_reading_by_reading_intervals(series, width, rated, count_suspect, max_gap):
    # outliers, resets, wraps, replacements and spikes (suspect, or capped at the rating): the columns
    # path (knot_columns, then the intervals on columns) gives counter_intervals' intervals and
    # findings exactly, count_suspect either way
    import numpy as np

    from metrics.intervals import counter_interval_columns, counter_intervals, epoch_us

    ts, values, reps = series
    kw = {"rollover_wh": width, "replacements": reps, "rated_power_w": rated, "count_suspect": count_suspect,
          "max_gap_s": max_gap}
    ref, ref_findings = counter_intervals(ts, values, **kw)
    cols, findings = counter_interval_columns(epoch_us(ts), np.array(values), **kw)
    assert cols.intervals() == ref
    assert findings == ref_findings
