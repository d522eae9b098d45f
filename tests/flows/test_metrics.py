"""flows/metrics.py: the flow's figures equal metrics/ and the green-share report called directly."""

from datetime import timedelta
from fractions import Fraction

import pytest

from flows.metrics import enterprise_metrics
from datetime import date

from accounting.site_energy import green_share_report
from metrics.ledger import serial_range
from store.ledger import CertificateEntry, add_entries
from flows.rollup import rollup
from accounting.site_energy import site_energy
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
    r1 = green_share_report(conn, "jj-shoes", day.year, as_of=as_of)  # what `report green-share` says
    ytd = conn.execute("""SELECT onsite_green_wh, green_wh, consumption_wh, status, qualifies, missing_wh
                          FROM green_share_ytd WHERE enterprise_id = %s""", (e.enterprise_id,)).fetchone()
    assert ytd[0] == direct_ytd.totals.green_wh
    assert ytd[1:] == (r1.green_wh, r1.consumption_wh, r1.status, None, r1.missing_wh)
    # one simulated day in June: far below 95 % of the year's intervals measured, so R1 is unknown
    assert r1.status == "unknown"
    proj = conn.execute("SELECT gap_now_wh, projected_consumption_wh, gap_year_end_wh FROM green_share_projection "
                        "WHERE enterprise_id = %s", (e.enterprise_id,)).fetchone()
    assert proj == (r1.missing_wh, r1.projection.consumption_wh, r1.projection.missing_wh)
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


def test_certificates_in_the_ledger_count_in_the_year_to_date(conn, db_url, sim_day):
    """Rule R1 counts certificates retired in the period (2024-2 §三(一), 2025-5 §三(三)): the
    dashboard's year to date must, as the green-share report does."""
    rollup(db_url)
    (e,) = enterprises(conn)
    as_of = sim_day.end + timedelta(minutes=30)
    enterprise_metrics(db_url, e, as_of)
    before = conn.execute("SELECT green_wh, certificate_wh FROM green_share_ytd").fetchone()
    add_entries(conn, [CertificateEntry("jj-shoes", *serial_range("GEC0000000001", "GEC0000000002"),
                                        date(2025, 5, 1), date(2025, 6, 1))])  # 2 MWh retired in June
    add_entries(conn, [CertificateEntry("jj-shoes", *serial_range("GEC0000000003"), date(2025, 5, 1),
                                        date(2025, 7, 1))])  # retired after the period: not yet
    conn.commit()
    m = enterprise_metrics(db_url, e, as_of)
    after = conn.execute("SELECT green_wh, certificate_wh FROM green_share_ytd").fetchone()
    assert after[1] == 2_000_000
    assert after[0] == min(before[0] + 2_000_000, m.share.consumption_wh)
    r1 = green_share_report(conn, "jj-shoes", 2025, as_of=as_of)
    assert (m.share.green_wh, m.share.consumption_wh, m.share.certificate_wh, m.share.status, m.share.missing_wh) == (
        r1.green_wh, r1.consumption_wh, r1.certificate_wh, r1.status, r1.missing_wh)


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


def test_a_closed_year_is_skipped_until_a_stamp_or_an_interval_moves(conn, db_url, sim_day):
    """The pass looks at every closed year it stored: with no interval of it changed and the
    enterprise's input stamp and versions as stored, it is not read at all (an hourly pass over a
    province); a certificate entered late moves the stamp, and the year's R1 counts it, equal to
    the report."""
    from flows.metrics import enterprise_pass

    rollup(db_url)
    # the rollup ran a moment ago: older than the metrics watermark's margin, as an hourly pass finds them
    conn.execute("UPDATE interval_energy SET computed_at = computed_at - interval '1 minute'")
    conn.commit()
    (e,) = enterprises(conn)
    next_year = local_bounds("year", date(2026, 1, 1), e.timezone)[0]
    as_of = next_year + timedelta(days=40)  # February 2026: 2025 is closed and past the January grace
    first = enterprise_pass(db_url, e, as_of)
    assert {m.year for m in first} == {2025, 2026}  # 2025 first computed whole, with its carried parts
    assert [m.year for m in enterprise_pass(db_url, e, as_of + timedelta(hours=1))] == [2026]  # 2025 not read
    add_entries(conn, [CertificateEntry("jj-shoes", *serial_range("GEC0000000001"), date(2025, 5, 1),
                                        date(2025, 6, 1))])  # a 2025 certificate, entered in 2026
    conn.commit()
    again = {m.year: m for m in enterprise_pass(db_url, e, as_of + timedelta(hours=2))}
    assert set(again) == {2025, 2026}
    stored = conn.execute("SELECT certificate_wh, green_wh, status FROM green_share_ytd WHERE year = 2025").fetchone()
    r1 = green_share_report(conn, "jj-shoes", 2025, as_of=as_of)
    assert stored == (1_000_000, r1.green_wh, r1.status) and r1.certificate_wh == 1_000_000
    assert [m.year for m in enterprise_pass(db_url, e, as_of + timedelta(hours=3))] == [2026]
    # a late interval of 2025 re-opens it whatever its age
    conn.execute("UPDATE interval_energy SET energy_wh = energy_wh + 1000, computed_at = now() "
                 "WHERE point_id = %s AND bucket_start = %s", (sim_day.role_points["grid_import"], sim_day.start))
    conn.commit()
    late = {m.year: m for m in enterprise_pass(db_url, e, as_of + timedelta(hours=4))}
    assert set(late) == {2025, 2026} and late[2025].daily
