"""Readings from other systems: CSV import through the collectors' writer (issue 4 Interfaces)."""

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


@pytest.fixture
def ids(conn):
    ids = apply_site(conn, load_site(DEMO_SITE))
    conn.commit()
    return ids


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10**9)), min_size=1, max_size=40,
                unique_by=lambda r: r[0]))
def test_importing_the_same_data_twice_changes_nothing(conn, ids, tmp_path, rows):
    # issue 4 property: idempotent on (point, timestamp) — a second import adds no row, changes no value
    conn.execute("TRUNCATE reading")
    conn.commit()
    f = tmp_path / "r.csv"
    f.write_text("point,ts,value\n" + "".join(
        f"{POINT},{(T0 + timedelta(minutes=m)).astimezone(timezone(timedelta(hours=8))).isoformat()},{v}\n"
        for m, v in rows))
    assert import_readings(conn, f) == (len(rows), len(rows))
    before = conn.execute("SELECT point_id, ts, value FROM reading ORDER BY 1, 2").fetchall()
    assert import_readings(conn, f) == (len(rows), 0)
    assert conn.execute("SELECT point_id, ts, value FROM reading ORDER BY 1, 2").fetchall() == before


def test_a_bad_row_anywhere_writes_nothing(conn, ids, tmp_path):
    f = tmp_path / "r.csv"
    f.write_text(f"point,ts,value\n{POINT},2025-01-01T00:00:00+08:00,1\n{POINT},2025-01-01T00:15:00+08:00,nan\n")
    with pytest.raises(ImportError_, match="r.csv line 3: field 'value': 'nan' is not a finite number"):
        import_readings(conn, f)
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM reading").fetchone()[0] == 0


def test_time_without_offset_is_refused():
    with pytest.raises(ImportError_, match="line 2: field 'ts'"):
        parse_readings("point,ts,value\np,2025-01-01 00:00,1\n", {"p": 1})
