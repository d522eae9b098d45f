"""Readings from other systems: CSV import through the collectors' writer (issue 4 Interfaces)."""

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greengauge.demo import DEMO_SITE
from model.site import load_site
from store.readings_import import ImportError_, import_readings, parse_readings
from store.sites import apply_site

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
POINT = "jj-shoes.main.grid.energy_import"
GAUGE = "jj-shoes.main.grid.active_power"


@pytest.fixture
def ids(conn):
    ids = apply_site(conn, load_site(DEMO_SITE))
    conn.commit()
    return ids


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10**9)), min_size=1, max_size=40,
                unique_by=lambda r: r[0]))
def test_importing_the_same_data_twice_changes_nothing(conn, ids, tmp_path, rows):
    # property: idempotent on (point, timestamp) (a power gauge: any values are possible) — a second import adds no row, changes no value
    conn.execute("TRUNCATE reading")
    conn.commit()
    f = tmp_path / "r.csv"
    f.write_text("point,ts,value\n" + "".join(
        f"{GAUGE},{(T0 + timedelta(minutes=m)).astimezone(timezone(timedelta(hours=8))).isoformat()},{v}\n"
        for m, v in rows))
    assert import_readings(conn, f, unit="W") == (len(rows), len(rows), 0)
    before = conn.execute("SELECT point_id, ts, value FROM reading ORDER BY 1, 2").fetchall()
    assert import_readings(conn, f, unit="W") == (len(rows), 0, 0)
    assert conn.execute("SELECT point_id, ts, value FROM reading ORDER BY 1, 2").fetchall() == before


def test_a_bad_row_anywhere_writes_nothing(conn, ids, tmp_path):
    f = tmp_path / "r.csv"
    f.write_text(f"point,ts,value\n{POINT},2025-01-01T00:00:00+08:00,1\n{POINT},2025-01-01T00:15:00+08:00,nan\n")
    with pytest.raises(ImportError_, match="r.csv line 3: field 'value': 'nan' is not a finite number"):
        import_readings(conn, f, unit="Wh")
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM reading").fetchone()[0] == 0


def test_time_without_offset_is_refused():
    with pytest.raises(ImportError_, match="line 2: field 'ts'"):
        parse_readings("point,ts,value\np,2025-01-01 00:00,1\n", {"p": 1}, unit="Wh")


OTHER_SITE = """
enterprise: {code: other-co, name: Other, timezone: Asia/Shanghai}
site: {code: main, name: Main}
devices:
  - {name: grid, profile: generic-3ph-meter, host: 127.0.0.1, port: 15030,
     points: [{quantity: energy_import, role: grid_import, rated_power_w: 500000}]}
"""


UNRATED_SITE = """
enterprise: {code: other-co, name: Other, timezone: Asia/Shanghai}
site: {code: main, name: Main}
devices:
  - {name: grid, profile: generic-3ph-meter, host: 127.0.0.1, port: 15030,
     points: [{quantity: energy_export}]}
"""
UNRATED = "other-co.main.grid.energy_export"


def csv_file(tmp_path, body, header="point,ts,value"):
    f = tmp_path / "h.csv"
    f.write_text(header + "\n" + body)
    return f


def test_the_unit_converts_and_is_required(conn, ids, tmp_path):
    # 1.5 kWh is stored as 1 500 Wh; a unit column overrides --unit row by row
    f = csv_file(tmp_path, f"{POINT},2025-01-01T00:00:00+08:00,1.5\n{POINT},2025-01-01T00:15:00+08:00,0.0016,MWh\n",
                 header="point,ts,value,unit")
    with pytest.raises(ImportError_, match="line 2: field 'unit': empty, and no --unit given"):
        import_readings(conn, f)
    conn.rollback()
    assert import_readings(conn, f, unit="kWh") == (2, 2, 0)
    assert [r[0] for r in conn.execute("SELECT value FROM reading ORDER BY ts")] == [1500.0, 1600.0]
    g = csv_file(tmp_path, f"{POINT},2025-01-01T00:00:00+08:00,1\n")
    with pytest.raises(ImportError_, match="h.csv: say the values' unit: --unit kWh"):
        import_readings(conn, g)
    with pytest.raises(ImportError_, match="line 2: field 'unit': unit 'kW' does not fit quantity 'energy_import'"):
        import_readings(conn, g, unit="kW")


def test_values_impossible_in_the_stated_unit_are_refused_with_the_line(conn, ids, tmp_path):
    # a grid meter (rated 2 MW) whose Wh readings are declared MWh would rise at GW: refused, naming
    # the first line of such a rise; a single glitch in a plausible file does not trip it
    rows = "".join(f"{POINT},{(T0 + timedelta(minutes=15 * k)).isoformat()},{1_000 + 100 * k}\n" for k in range(6))
    with pytest.raises(ImportError_, match=r"h.csv line 2: field 'value': .* rise at a typical 400,000,000 W"):
        import_readings(conn, csv_file(tmp_path, rows), unit="MWh")
    conn.rollback()
    assert import_readings(conn, csv_file(tmp_path, rows), unit="Wh") == (6, 6, 0)
    # 1e400 kWh is not finite, -5 is a negative counter, 2e9 MWh is past the grid meter's 32-bit
    # Wh register (it wraps at 4.29 GWh)
    for value, match in (("1e400", "not a finite number"), ("-5", "is negative"),
                         ("2000000000", "beyond the counter's wrap width 4.29497e\\+09 Wh")):
        bad = csv_file(tmp_path, f"{POINT},2025-02-01T00:00:00+08:00,{value}\n")
        with pytest.raises(ImportError_, match=f"h.csv line 2: field 'value': .*{match}"):
            import_readings(conn, bad, unit="MWh")
        conn.rollback()
    # a counter of no known width: 2e12 MWh is beyond any meter (1 PWh)
    with pytest.raises(ImportError_, match="line 2: field 'value': .*beyond what any meter counts"):
        parse_readings("point,ts,value\np,2025-01-01T00:00:00+08:00,2000000000\n", {"p": 1}, unit="MWh")


def test_a_value_past_the_width_the_rollup_uses_is_refused(conn, ids, tmp_path):
    # the importer checks the width the rollup wraps the counter at, not only the site file's own
    # counter_rollover_wh: here the device profile's uint32 Wh register (2**32 Wh = 4.29 GWh)
    from accounting.site_energy import point_rollover

    width = point_rollover(conn, [ids[POINT]])[ids[POINT]]
    assert width == 2**32
    # an export point with no rating (no rate check): 20 000 MWh = 20 TWh on a 4.29 GWh register
    site = tmp_path / "other.yaml"
    site.write_text(UNRATED_SITE)
    apply_site(conn, load_site(site))
    conn.commit()
    rows = "".join(f"{UNRATED},{(T0 + timedelta(hours=h)).isoformat()},{20000 + 100 * h}\n" for h in range(4))
    f = csv_file(tmp_path, rows)
    with pytest.raises(ImportError_, match=r"^h\.csv line 2: field 'value': 20000 MWh = 2e\+10 Wh is beyond the "
                                           r"counter's wrap width 4\.29497e\+09 Wh \(device profile "
                                           r"generic-3ph-meter's register\) for other-co\.main\.grid\.energy_export: "
                                           r"is the unit right\?$"):
        import_readings(conn, f, unit="MWh")
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM reading").fetchone()[0] == 0
    assert import_readings(conn, f, unit="Wh") == (4, 4, 0)  # the same numbers in Wh are fine
    # a rated point, one reading (no rate to judge): 5 000 000 kWh = 5 GWh is past the 4.29 GWh wrap
    one = csv_file(tmp_path, f"{POINT},2025-03-01T00:00:00+08:00,5000000\n")
    with pytest.raises(ImportError_, match=r"h\.csv line 2: field 'value': 5000000 kWh = 5e\+09 Wh is beyond the "
                                           r"counter's wrap width 4\.29497e\+09 Wh .*is the unit right\?"):
        import_readings(conn, one, unit="kWh")
    conn.rollback()
    assert import_readings(conn, csv_file(tmp_path, f"{POINT},2025-03-01T00:00:00+08:00,4000000\n"),
                           unit="kWh") == (1, 1, 0)  # 4 GWh: below the wrap


def test_the_site_files_own_width_wins_over_the_profile(conn, ids, tmp_path):
    # counter_rollover_wh in the site file is the width the rollup uses: the import checks that one
    site = tmp_path / "other.yaml"
    site.write_text(UNRATED_SITE.replace("quantity: energy_export}",
                                         "quantity: energy_export, counter_rollover_wh: 100000000000}"))
    apply_site(conn, load_site(site))
    conn.commit()
    ok = csv_file(tmp_path, f"{UNRATED},2025-01-01T00:00:00+08:00,90000\n")
    assert import_readings(conn, ok, unit="MWh") == (1, 1, 0)  # 90 GWh: past the register's, within the file's
    bad = csv_file(tmp_path, f"{UNRATED},2025-01-01T01:00:00+08:00,200000\n")
    with pytest.raises(ImportError_, match=r"wrap width 1e\+11 Wh \(the site file's counter_rollover_wh\)"):
        import_readings(conn, bad, unit="MWh")


def test_the_same_point_and_time_twice_with_different_values_names_both_lines(conn, ids, tmp_path):
    # the same instant written in two offsets, two values: an error naming both lines, nothing written
    f = csv_file(tmp_path, f"{POINT},2025-01-01T00:00:00+08:00,100\n{POINT},2025-01-01T00:15:00+08:00,110\n"
                           f"{POINT},2024-12-31T16:00:00+00:00,105\n")
    with pytest.raises(ImportError_, match=r"h.csv lines 2 and 4: point .* has two values \(100 and 105 Wh\)"):
        import_readings(conn, f, unit="Wh")
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM reading").fetchone() == (0,)
    # the same value twice is one reading
    same = csv_file(tmp_path, f"{POINT},2025-01-01T00:00:00+08:00,100\n{POINT},2024-12-31T16:00:00Z,100\n")
    assert import_readings(conn, same, unit="Wh") == (2, 1, 1)  # the second line repeats the first: not "already stored"
    blank = csv_file(tmp_path, f"{POINT},2025-01-01T00:30:00+08:00,120\n\n\n")  # Excel's trailing blank lines
    assert import_readings(conn, blank, unit="Wh") == (1, 1, 0)
    # against what is stored: a different value is an error naming the stored one, not "already stored"
    other = csv_file(tmp_path, f"{POINT},2025-01-01T00:00:00+08:00,101\n")
    with pytest.raises(ImportError_, match="is already stored as 100, the file says 101"):
        import_readings(conn, other, unit="Wh")


def test_unknown_columns_times_out_of_range_and_foreign_points(conn, ids, tmp_path):
    from model.site import load_site

    with pytest.raises(ImportError_, match="line 1: unknown column\\(s\\) 'quality'"):
        import_readings(conn, csv_file(tmp_path, f"{POINT},2025-01-01T00:00:00+08:00,1,0\n",
                                       header="point,ts,value,quality"), unit="Wh")
    for ts in ("1999-12-31T23:00:00+00:00", "2999-01-01T00:00:00+08:00"):
        with pytest.raises(ImportError_, match=f"line 2: field 'ts': '{re.escape(ts)}' is outside the sane range"):
            import_readings(conn, csv_file(tmp_path, f"{POINT},{ts},1\n"), unit="Wh")
    o = tmp_path / "other.yaml"
    o.write_text(OTHER_SITE)
    apply_site(conn, load_site(o))
    conn.commit()
    # "unknown point" lists the file's enterprise's points only, never another enterprise's
    with pytest.raises(ImportError_, match="line 3: field 'point': no point 'x' in enterprise 'jj-shoes'") as e:
        import_readings(conn, csv_file(tmp_path, f"{POINT},2025-01-01T00:00:00+08:00,1\nx,2025-01-01T00:00:00+08:00,1\n"),
                        unit="Wh")
    assert "jj-shoes.main.pv.energy_export" in str(e.value) and "other-co" not in str(e.value)
    with pytest.raises(ImportError_, match="line 3: field 'point': 'other-co.main.grid.energy_import' belongs to "
                                           "enterprise 'other-co', the file to 'jj-shoes'"):
        import_readings(conn, csv_file(tmp_path, f"{POINT},2025-01-01T00:00:00+08:00,1\n"
                                                 "other-co.main.grid.energy_import,2025-01-01T00:00:00+08:00,1\n"),
                        unit="Wh")
    with pytest.raises(ImportError_, match="no point 'zz' in enterprise 'other-co' \\(its points: other-co.main"):
        import_readings(conn, csv_file(tmp_path, "zz,2025-01-01T00:00:00+08:00,1\n"), unit="Wh", enterprise="other-co")


def test_hourly_history_with_its_resolution_is_measured_time(conn, ids, tmp_path, db_url):
    # a day of hourly readings (36 kWh an hour): without a stated resolution every quarter hour is
    # estimated (readings an hour apart); imported with --resolution 1h they are measured, and the
    # stored rollup and the report agree on it
    from accounting.site_energy import point_energy
    from flows.rollup import rollup
    from store.readings_import import parse_resolution
    from store.sites import site_points

    pid = ids[POINT]
    rows = "".join(f"{POINT},{(T0 + timedelta(hours=h)).isoformat()},{36 * h}\n" for h in range(25))
    f = csv_file(tmp_path, rows)
    assert import_readings(conn, f, unit="kWh") == (25, 25, 0)
    conn.commit()
    rollup(db_url)
    est = conn.execute("SELECT count(*) FILTER (WHERE estimated), count(*) FROM interval_energy WHERE point_id = %s",
                       (pid,)).fetchone()
    assert est == (96, 96)
    assert import_readings(conn, f, unit="kWh", resolution_s=parse_resolution("1h")) == (25, 0, 0)
    conn.commit()
    rollup(db_url)  # the stated resolution marked the point: its intervals are recomputed
    assert conn.execute("""SELECT count(*) FILTER (WHERE estimated), sum(energy_wh) FROM interval_energy
                           WHERE point_id = %s""", (pid,)).fetchone() == (0, 864_000)
    p = [x for x in site_points(conn, "jj-shoes") if x.point_id == pid]
    ce = point_energy(conn, p, T0, T0 + timedelta(days=1))[pid]
    assert (ce.completeness.measured, ce.completeness.expected, ce.resolution_s) == (96, 96, 3600)


def test_hourly_history_in_two_files_is_measured_across_the_hour_between_them(conn, ids, tmp_path, db_url):
    # hourly.csv ends at 01-10 00:00 and hourly2.csv starts at 01-10 01:00, both imported with
    # --resolution 1h: each file's range is stored, and the hour between them (readings 1 h apart,
    # hourly on both sides) is measured too — in the stored intervals and in the report alike
    from accounting.site_energy import point_energy
    from flows.rollup import rollup
    from store.sites import site_points

    pid = ids[POINT]
    t1 = T0 + timedelta(days=9)  # 2025-01-10 00:00 UTC
    first = tmp_path / "hourly.csv"
    first.write_text("point,ts,value\n" + "".join(
        f"{POINT},{(T0 + timedelta(hours=h)).isoformat()},{10 * h}\n" for h in range(9 * 24 + 1)))
    second = tmp_path / "hourly2.csv"
    second.write_text("point,ts,value\n" + "".join(
        f"{POINT},{(t1 + timedelta(hours=h)).isoformat()},{10 * (9 * 24 + h)}\n" for h in range(1, 24 * 2)))
    assert import_readings(conn, first, unit="kWh", resolution_s=3600) == (217, 217, 0)
    conn.commit()
    rollup(db_url)
    assert import_readings(conn, second, unit="kWh", resolution_s=3600) == (47, 47, 0)
    conn.commit()
    rollup(db_url)
    # two stored ranges, one per file
    assert conn.execute("SELECT count(*) FROM reading_resolution WHERE point_id = %s", (pid,)).fetchone()[0] == 2
    day = conn.execute("""SELECT count(*), count(*) FILTER (WHERE estimated), sum(energy_wh) FROM interval_energy
                          WHERE point_id = %s AND bucket_start >= %s AND bucket_start < %s""",
                       (pid, t1, t1 + timedelta(days=1))).fetchone()
    assert day == (96, 0, 240_000)
    assert conn.execute("SELECT count(*) FILTER (WHERE estimated) FROM interval_energy WHERE point_id = %s",
                        (pid,)).fetchone()[0] == 0
    p = [x for x in site_points(conn, "jj-shoes") if x.point_id == pid]
    ce = point_energy(conn, p, t1, t1 + timedelta(days=1))[pid]
    assert (ce.completeness.measured, ce.completeness.expected, ce.resolution_s, ce.total_wh) == (96, 96, 3600, 240_000)


def test_stated_ranges_join_across_gaps_no_longer_than_their_resolutions():
    from metrics.intervals import Resolution
    from store.events import join_resolutions

    h = timedelta(hours=1)
    a = Resolution(T0, T0 + 9 * h, 3600)
    # the same resolution, 1 h apart, touching or overlapping: one range
    for b_since in (T0 + 10 * h, T0 + 9 * h, T0 + 5 * h):
        assert join_resolutions([Resolution(b_since, T0 + 20 * h, 3600), a]) == [Resolution(T0, T0 + 20 * h, 3600)]
    # more than the resolution apart: two ranges, the gap between them judged by the poll interval
    far = Resolution(T0 + 10 * h + timedelta(seconds=1), T0 + 20 * h, 3600)
    assert join_resolutions([a, far]) == [a, far]
    # different resolutions: the gap is bridged at the smaller one when no longer than it
    daily = Resolution(T0 + 10 * h, T0 + 100 * h, 86400)
    assert join_resolutions([a, daily]) == [a, Resolution(T0 + 9 * h, T0 + 10 * h, 3600), daily]
    daily_later = Resolution(T0 + 11 * h, T0 + 100 * h, 86400)
    assert join_resolutions([a, daily_later]) == [a, daily_later]
    assert join_resolutions([]) == []
