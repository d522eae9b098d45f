"""flows/rollup.py: interval energy equals metrics/ called directly; late readings are corrected;
a rerun changes nothing; hourly and daily sums follow."""

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.rollup import compute_intervals, rollup
from accounting.site_energy import point_intervals
from store.ingest import write_readings
from store.rollups import PointReadings
from store.sites import site_points
from tests.flows.conftest import make_sim_day, sim_readings, suspect


def clear_rollups(conn, *, readings: bool = False) -> None:
    """Empty the rollup's base tables. In TimescaleDB mode energy_hourly is a continuous aggregate
    and energy_daily a view: neither can be truncated, and both follow interval_energy."""
    from store.db import storage_mode

    tables = ["interval_energy", "rollup_watermark"] + (["reading"] if readings else [])
    if storage_mode(conn) == "postgresql":
        tables += ["energy_hourly", "energy_daily"]
    conn.execute("TRUNCATE " + ", ".join(tables))


def stored(conn, pid, start=None, end=None):
    rows = conn.execute(
        """SELECT bucket_start, energy_wh, estimated, suspect FROM interval_energy WHERE point_id = %s
           AND (%s::timestamptz IS NULL OR bucket_start >= %s) AND (%s::timestamptz IS NULL OR bucket_start < %s)
           ORDER BY bucket_start""", (pid, start, start, end, end)).fetchall()
    return rows


def test_intervals_equal_metrics_called_directly(conn, db_url, sim_day):
    result = rollup(db_url)
    assert result.points == 6 and result.intervals_written > 0
    points = site_points(conn, "jj-shoes")
    counters = [p for p in points if p.kind == "counter"]
    direct, _ = point_intervals(conn, counters, sim_day.start, sim_day.end)
    for p in counters:
        rows = stored(conn, p.point_id, sim_day.start, sim_day.end)
        assert [(r[0], r[1], r[2]) for r in rows] == [(iv.start, iv.energy_wh, iv.estimated) for iv in direct[p.point_id]]
        assert len(rows) == 96
    # hourly and daily sums are the sums of the intervals
    pid = sim_day.role_points["grid_import"]
    day_total = sum(iv.energy_wh for iv in direct[pid])
    daily = conn.execute("SELECT energy_wh, intervals, day FROM energy_daily WHERE point_id = %s AND bucket_start = %s",
                         (pid, sim_day.start)).fetchone()
    assert daily == (day_total, 96, sim_day.start.astimezone(sim_day.plant.tz).date())
    hourly = conn.execute("""SELECT sum(energy_wh), count(*) FROM energy_hourly WHERE point_id = %s
                             AND bucket_start >= %s AND bucket_start < %s""", (pid, sim_day.start, sim_day.end)).fetchone()
    assert hourly == (day_total, 24)


def test_rerun_changes_nothing(conn, db_url, sim_day):
    rollup(db_url)
    before = conn.execute("SELECT point_id, bucket_start, energy_wh, estimated, computed_at FROM interval_energy ORDER BY 1, 2").fetchall()
    conn.commit()
    again = rollup(db_url)
    assert not again.changed and again.hours_changed == 0 and again.days_changed == 0
    after = conn.execute("SELECT point_id, bucket_start, energy_wh, estimated, computed_at FROM interval_energy ORDER BY 1, 2").fetchall()
    assert after == before  # not even computed_at moved: no row was rewritten


def test_late_readings_correct_an_already_rolled_up_hour(conn, db_url):
    sd = make_sim_day(conn)
    pid = sd.role_points["grid_import"]
    # drop 20 minutes of readings near the end of the data, as if they were still in a spool
    hole_from = sd.data_to - timedelta(minutes=50)
    hole_to = hole_from + timedelta(minutes=20)
    held = [r for r in conn.execute("SELECT point_id, ts, value FROM reading WHERE ts >= %s AND ts < %s",
                                    (hole_from, hole_to)).fetchall()]
    conn.execute("DELETE FROM reading WHERE ts >= %s AND ts < %s", (hole_from, hole_to))
    conn.commit()
    first = rollup(db_url)
    gap_rows = stored(conn, pid, hole_from - timedelta(minutes=15), hole_to + timedelta(minutes=15))
    assert any(r[2] for r in gap_rows)  # estimated across the hole
    conn.commit()
    from model.readings import Reading
    write_readings(conn, [Reading(p, t, v) for p, t, v in held])
    conn.commit()
    second = rollup(db_url)
    assert second.intervals_written > 0 and second.hours_changed > 0
    fresh = point_intervals(conn, [p for p in site_points(conn, "jj-shoes") if p.point_id == pid],
                            sd.data_from, sd.data_to)[0][pid]
    expect = {iv.start: (iv.energy_wh, iv.estimated) for iv in fresh}
    for start, wh, est, _ in stored(conn, pid, hole_from - timedelta(hours=1), hole_to + timedelta(minutes=15)):
        assert (wh, est) == expect[start]
    hour_sum = conn.execute("""SELECT sum(energy_wh) FROM interval_energy WHERE point_id = %s
                               AND bucket_start >= date_bin('1 hour', %s::timestamptz, timestamptz 'epoch')
                               AND bucket_start < date_bin('1 hour', %s::timestamptz, timestamptz 'epoch') + interval '1 hour'""",
                            (pid, hole_from, hole_from)).fetchone()[0]
    hourly = conn.execute("""SELECT energy_wh FROM energy_hourly WHERE point_id = %s
                             AND bucket_start = date_bin('1 hour', %s::timestamptz, timestamptz 'epoch')""",
                          (pid, hole_from)).fetchone()[0]
    assert hourly == hour_sum
    assert first.readings > second.readings  # the second run re-read only the trailing window


def test_new_readings_extend_incrementally(conn, db_url):
    sd = make_sim_day(conn, write_until=None)
    rollup(db_url)
    conn.commit()
    more = sim_readings(sd, sd.data_to, sd.data_to + timedelta(hours=1))
    write_readings(conn, more)
    conn.commit()
    r = rollup(db_url)
    assert r.readings < 6 * 4 * 60  # the trailing window and the new hour, not the whole day
    pid = sd.role_points["pv_generation"]
    assert stored(conn, pid)[-1][0] >= sd.data_to + timedelta(minutes=45)


def test_backfill_range_recomputes_only_that_range(conn, db_url, sim_day):
    rollup(db_url)
    conn.execute("UPDATE interval_energy SET energy_wh = energy_wh + 1 WHERE bucket_start >= %s", (sim_day.start,))
    conn.commit()
    r = rollup(db_url, start=sim_day.start, end=sim_day.start + timedelta(hours=2))
    assert r.intervals_written == 6 * 8
    r = rollup(db_url, start=sim_day.start, end=sim_day.end + timedelta(hours=2))
    assert r.intervals_written == 6 * (96 - 8 + 4)  # the rest of the day and the hour after it
    assert not rollup(db_url, start=sim_day.start, end=sim_day.end).changed


@pytest.mark.parametrize("flags, marked", [
    ([False] * 5, set()),
    ([False, False, True, False, False], {1, 2, 3}),  # a suspect reading taints the intervals it interpolates
])
def test_suspect_readings_mark_intervals(flags, marked):
    from datetime import datetime, timezone
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    ts = [t0 + timedelta(minutes=15 * i) for i in range(5)]
    r = PointReadings(1, ts, [0.0, 10.0, 20.0, 30.0, 40.0], flags)
    rows, findings = compute_intervals(r, None, None)
    assert [row[1] for row in rows] == [10, 10, 10, 10]
    assert {i for i, row in enumerate(rows) if row[3]} == marked
    assert findings == []


def test_a_failed_run_leaves_no_partial_result(conn, db_url, sim_day, monkeypatch):
    import store.rollups

    def boom(self):
        self.flush()  # intervals are merged into the table, then the run fails before commit
        raise RuntimeError("database went away")

    monkeypatch.setattr(store.rollups.IntervalWriter, "finish", boom)
    with pytest.raises(RuntimeError, match="went away"):
        rollup(db_url)
    assert conn.execute("SELECT count(*) FROM interval_energy").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM rollup_watermark").fetchone()[0] == 0


def test_suspect_reading_marks_stored_intervals(conn, db_url):
    sd = make_sim_day(conn, write_until=None)
    pid = sd.role_points["grid_import"]
    t = sd.data_to
    write_readings(conn, [suspect(r) for r in sim_readings(sd, t, t + timedelta(minutes=1)) if r.point_id == pid])
    write_readings(conn, [r for r in sim_readings(sd, t + timedelta(minutes=1), t + timedelta(minutes=30))])
    conn.commit()
    rollup(db_url)
    # (the simulated plant also exceeds some points' rated power now and then: those spike
    # intervals are suspect too, as in the report, so look only around the suspect reading)
    marked = conn.execute("""SELECT bucket_start FROM interval_energy WHERE suspect AND point_id = %s
                             AND bucket_start BETWEEN %s AND %s ORDER BY 1""",
                          (pid, t - timedelta(minutes=30), t + timedelta(minutes=30))).fetchall()
    assert [m[0] for m in marked] == [t - timedelta(minutes=15), t]  # the readings around it span both
    assert conn.execute("SELECT suspect_intervals FROM energy_hourly WHERE point_id = %s AND bucket_start = %s",
                        (pid, t)).fetchone() == (1,)



@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(6)), replays=st.lists(st.integers(0, 5), max_size=3))
def test_arrival_order_and_replays_never_change_the_result(conn, db_url, order, replays):
    """Readings arriving in any order of batches, some replayed, with a rollup after each batch,
    end with the same intervals and sums as one rollup of everything (late data inside the window)."""
    from datetime import datetime, timezone

    from model.readings import Reading
    from greengauge.demo import DEMO_SITE
    from model.site import load_site
    from store.sites import apply_site

    clear_rollups(conn, readings=True)
    ids = apply_site(conn, load_site(str(DEMO_SITE)))
    pid = ids["jj-shoes.main.grid.energy_import"]
    t0 = datetime(2025, 6, 21, 0, 7, tzinfo=timezone.utc)
    readings = [Reading(pid, t0 + timedelta(minutes=i), 1000.0 + 37 * i + (i * i) % 11) for i in range(180)]
    batches = [readings[k::6] for k in range(6)]  # interleaved: every batch spans the whole period
    conn.commit()
    for k in list(order) + replays:
        write_readings(conn, batches[k])
        conn.commit()
        rollup(db_url, trailing_window=timedelta(hours=4))
    state = lambda: (conn.execute("SELECT point_id, bucket_start, energy_wh, estimated FROM interval_energy ORDER BY 1, 2").fetchall(),  # noqa: E731
                     conn.execute("SELECT point_id, bucket_start, energy_wh, intervals FROM energy_hourly ORDER BY 1, 2").fetchall())
    incremental = state()
    conn.commit()
    clear_rollups(conn)
    conn.commit()
    rollup(db_url)
    assert state() == incremental
    assert sum(r[2] for r in incremental[0]) == round(readings[-1].value) - round(readings[0].value)


def test_wrap_replacement_and_outlier_give_the_same_intervals_in_rollup_and_report(conn, db_url):
    # The rollup used to call continuous_counter bare: a 16-bit wrap became a reset (energy lost),
    # a recorded replacement an unexplained drop, a glitch a reset plus a giant step. Both paths now
    # take the point's settings through the same function; the stored intervals equal the report's.
    from model.readings import Reading
    from store.events import record_replacement

    sd = make_sim_day(conn)
    names = {pid: name for name, pid in sd.point_ids.items()}
    wrap_pid, swap_pid = sd.role_points["grid_import"], sd.role_points["pv_generation"]
    conn.execute("DELETE FROM reading WHERE point_id = ANY(%s)", ([wrap_pid, swap_pid],))
    conn.execute("UPDATE point SET counter_rollover_wh = 65536 WHERE point_id = %s", (wrap_pid,))
    t0, n = sd.data_from, int((sd.data_to - sd.data_from).total_seconds()) // 300
    ts = [t0 + timedelta(minutes=5 * i) for i in range(n + 1)]
    # wrap point: the true counter climbs 100 Wh per 5 min from 60 000, through a 16-bit register
    # (wraps at 65 536 Wh after about 4.6 h), with one glitch reading of 0 at 12:00 local
    wrap = [(60_000 + 100 * i) % 65_536 for i in range(n + 1)]
    glitch = ts.index(sd.start + timedelta(hours=12))
    wrap[glitch] = 0
    # replacement point: 200 Wh per 5 min; the meter is swapped half-way between two readings at
    # 06:02:30 local; the old meter ended 100 Wh after its last reading, the new one started 100 Wh
    # before its first
    k = ts.index(sd.start + timedelta(hours=6, minutes=5))
    swap_at = ts[k] - timedelta(seconds=150)
    old = [5_000 + 200 * i for i in range(k)]
    new = [10 + 100 + 200 * (i - k) for i in range(k, n + 1)]
    write_readings(conn, [Reading(wrap_pid, t, float(v)) for t, v in zip(ts, wrap)]
                   + [Reading(swap_pid, t, float(v)) for t, v in zip(ts, old + new)])
    record_replacement(conn, names[swap_pid], swap_at, old[-1] + 100, 10, "meter failed calibration")
    conn.commit()

    rollup(db_url)
    counters = [p for p in site_points(conn, "jj-shoes") if p.point_id in (wrap_pid, swap_pid)]
    direct, findings = point_intervals(conn, counters, sd.start, sd.end)
    for pid in (wrap_pid, swap_pid):
        rows = stored(conn, pid, sd.start, sd.end)
        assert [tuple(r) for r in rows] == [(iv.start, iv.energy_wh, iv.estimated, iv.suspect) for iv in direct[pid]]
        assert len(rows) == 96
    # the known values: 100 Wh per 5 min is 28 800 Wh a day through the wraps and the glitch,
    # 200 Wh per 5 min is 57 600 Wh a day across the replacement
    assert sum(r[1] for r in stored(conn, wrap_pid, sd.start, sd.end)) == 28_800
    assert sum(r[1] for r in stored(conn, swap_pid, sd.start, sd.end)) == 57_600
    assert {f.kind for f in findings} == {"counter_rollover", "counter_outlier", "meter_replacement"}
    daily = conn.execute("SELECT energy_wh FROM energy_daily WHERE point_id = %s AND bucket_start = %s",
                         (wrap_pid, sd.start)).fetchone()
    assert daily == (28_800,)


def test_a_glitch_just_after_a_backfill_range_is_judged_as_in_a_full_run(conn, db_url):
    # a reading of 4e9 Wh at the very end of the day (the first reading at or after the range's
    # end): with only that one reading after the range, the spike was the series' last knot and
    # its 4 GWh landed in the day's last quarter hour. The range's stream now takes the readings
    # after it too, so the spike is seen to be an isolated outlier, as in a full run.
    sd = make_sim_day(conn)
    pid = sd.role_points["grid_import"]
    conn.execute("UPDATE reading SET value = 4e9 WHERE point_id = %s AND ts = %s", (pid, sd.end))
    conn.commit()
    rollup(db_url, start=sd.start, end=sd.end)
    ranged = stored(conn, pid, sd.start, sd.end)
    conn.commit()
    rollup(db_url)  # the whole series
    assert stored(conn, pid, sd.start, sd.end) == ranged
    assert max(r[1] for r in ranged) < 2_000_000 * 0.25  # no quarter hour above the 2 MW rating
