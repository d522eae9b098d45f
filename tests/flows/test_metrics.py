"""flows/metrics.py and flows/projection.py: the flow's figures equal metrics/ called directly."""

from datetime import timedelta
from fractions import Fraction

import pytest

from flows.metrics import enterprise_metrics
from flows.projection import gap_to_threshold, project_year_end
from flows.rollup import rollup
from flows.site_energy import site_energy
from metrics.periods import local_bounds
from store.results import enterprises


def test_daily_balance_and_ytd_equal_metrics_called_directly(conn, db_url, sim_day):
    rollup(db_url)
    (e,) = enterprises(conn)
    as_of = sim_day.end + timedelta(minutes=30)
    m = enterprise_metrics(db_url, e, as_of)
    day = sim_day.start.astimezone(sim_day.plant.tz).date()
    assert day in m.daily
    direct_day = site_energy(conn, "jj-shoes", sim_day.start, sim_day.end)
    row = conn.execute("""SELECT import_wh, export_wh, pv_wh, charge_wh, discharge_wh, consumption_wh,
                                 pv_self_consumed_wh, green_wh, intervals, estimated_intervals
                          FROM daily_balance WHERE enterprise_id = %s AND day = %s""", (e.enterprise_id, day)).fetchone()
    t = direct_day.totals
    assert row == (t.import_wh, t.export_wh, t.pv_wh, t.charge_wh, t.discharge_wh, t.consumption_wh,
                   t.pv_self_consumed_wh, t.green_wh, t.intervals, t.estimated_intervals)
    ystart, _ = local_bounds("year", day, e.timezone)
    direct_ytd = site_energy(conn, "jj-shoes", ystart, as_of)
    ytd = conn.execute("SELECT green_wh, consumption_wh, qualifies, share FROM green_share_ytd WHERE enterprise_id = %s",
                       (e.enterprise_id,)).fetchone()
    assert ytd[:3] == (direct_ytd.totals.green_wh, direct_ytd.totals.consumption_wh, direct_ytd.share.qualifies)
    assert abs(float(ytd[3]) - float(direct_ytd.share.share)) < 1e-12
    proj = conn.execute("SELECT gap_now_wh, projected_consumption_wh FROM green_share_projection WHERE enterprise_id = %s",
                        (e.enterprise_id,)).fetchone()
    assert proj[0] == gap_to_threshold(direct_ytd.totals.green_wh, direct_ytd.totals.consumption_wh)
    assert proj[1] > direct_ytd.totals.consumption_wh  # the rest of the year adds consumption
    conn.commit()
    # nothing changed: no day is recomputed
    assert enterprise_metrics(db_url, e, as_of).daily == {}


def test_late_interval_change_recomputes_only_that_day(conn, db_url, sim_day):
    rollup(db_url)
    (e,) = enterprises(conn)
    as_of = sim_day.end + timedelta(minutes=30)
    first = enterprise_metrics(db_url, e, as_of)
    assert len(first.daily) == 3  # the hour before, the day, and the hour after (local days)
    conn.execute("UPDATE interval_energy SET energy_wh = energy_wh + 1000, computed_at = now() "
                 "WHERE point_id = %s AND bucket_start = %s", (sim_day.role_points["grid_import"], sim_day.start + timedelta(hours=3)))
    conn.commit()
    second = enterprise_metrics(db_url, e, as_of)
    day = sim_day.start.astimezone(sim_day.plant.tz).date()
    assert list(second.daily) == [day]
    assert second.daily[day][0].import_wh == first.daily[day][0].import_wh + 1000


@pytest.mark.parametrize("green, consumption, gap", [
    (30, 100, 0),  # exactly 30 %: reached (inclusive)
    (29, 100, 1),
    (0, 7, 3),  # ceil(2.1) = 3
    (0, 0, 0),
])
def test_gap_to_threshold(green, consumption, gap):
    assert gap_to_threshold(green, consumption) == gap


def test_projection_extends_the_recent_rate():
    p = project_year_end(100, 1000, 10, 100, recent_s=86400, remaining_s=2 * 86400)
    assert (p.projected_green_wh, p.projected_consumption_wh) == (120, 1200)
    assert p.projected_share == Fraction(1, 10) and p.projected_qualifies is False
    assert p.gap_year_end_wh == 240 and p.gap_now_wh == 200
    with pytest.raises(ValueError, match="recent_s"):
        project_year_end(0, 0, 0, 0, recent_s=0, remaining_s=1)


def test_a_failed_write_leaves_no_partial_result(conn, db_url, sim_day, monkeypatch):
    import flows.metrics

    rollup(db_url)
    (e,) = enterprises(conn)

    def boom(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(flows.metrics, "write_projection", boom)  # after the daily and YTD rows
    with pytest.raises(RuntimeError, match="disk full"):
        enterprise_metrics(db_url, e, sim_day.end)
    assert conn.execute("SELECT count(*) FROM daily_balance").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM green_share_ytd").fetchone()[0] == 0
