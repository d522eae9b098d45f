from datetime import datetime, timedelta, timezone

from model.readings import Quality, Reading
from model.site import SiteConfig
from store.ingest import write_readings
from store.sites import apply_site

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)

SITE = SiteConfig.model_validate({
    "enterprise": {"code": "acme", "name": "Acme"},
    "site": {"code": "main", "name": "Main"},
    "devices": [{"name": "grid", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": 1502,
                 "points": [{"quantity": "energy_import", "role": "grid_import"}, {"quantity": "active_power"}]}],
})


def test_writing_the_same_batch_twice_leaves_one_row_per_point_and_timestamp(conn):
    ids = apply_site(conn, SITE)
    pid = ids["acme.main.grid.energy_import"]
    batch = [Reading(pid, T0 + timedelta(minutes=i), 1000.0 + i) for i in range(100)]
    assert write_readings(conn, batch) == 100
    assert write_readings(conn, batch) == 0
    # a batch overlapping the stored rows, with a duplicate inside itself
    overlap = batch[50:] + [Reading(pid, T0 + timedelta(minutes=100), 1100.0)] * 2
    assert write_readings(conn, overlap) == 1
    rows = conn.execute("SELECT count(*), count(DISTINCT ts), min(value), max(value) FROM reading").fetchone()
    assert rows == (101, 101, 1000.0, 1100.0)


def test_values_timestamps_and_quality_round_trip(conn):
    ids = apply_site(conn, SITE)
    pid = ids["acme.main.grid.active_power"]
    ts = datetime(2024, 12, 31, 16, 30, 0, 123000, tzinfo=timezone.utc)
    write_readings(conn, [Reading(pid, ts, -1234.5, Quality.SUSPECT),
                          Reading(pid, ts + timedelta(seconds=1), None, Quality.BAD)])
    rows = conn.execute("SELECT ts, value, quality FROM reading ORDER BY ts").fetchall()
    assert rows == [(ts, -1234.5, 1), (ts + timedelta(seconds=1), None, 2)]


def test_apply_site_twice_keeps_ids(conn):
    first = apply_site(conn, SITE)
    second = apply_site(conn, SITE)
    assert first == second
    assert conn.execute("SELECT count(*) FROM point").fetchone()[0] == 2


def _both_ways(conn):
    """Each test below runs with the straight COPY tried first, with the staged plain INSERT tried first
    (a role that may not COPY into reading) and with the merge at once."""
    from store import ingest

    # each write in a transaction of its own, as the writer's (the stage is emptied at commit)
    def copy():
        conn.commit()
        ingest._merge_next.pop(conn, None)
        ingest._copy_refused.discard(conn)

    def staged():
        conn.commit()
        ingest._merge_next.pop(conn, None)
        ingest._copy_refused.add(conn)

    yield "copy", copy
    yield "staged", staged
    def merge():
        conn.commit()
        ingest._merge_next[conn] = 10**6

    yield "merge", merge


def test_a_new_batch_is_copied_straight_and_a_stored_row_sends_it_through_the_merge(conn):
    from store import ingest

    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    ingest._merge_next.pop(conn, None)
    first = [Reading(pid, T0 + timedelta(minutes=i), 1000.0 + i) for i in range(10)]
    assert write_readings(conn, first) == 10
    assert conn not in ingest._merge_next  # no conflict: the next batch is tried straight too
    # one row stored already: the straight COPY is rolled back whole, the merge keeps the first value
    again = [Reading(pid, T0 + timedelta(minutes=9), -1.0), Reading(pid, T0 + timedelta(minutes=10), 1010.0)]
    assert write_readings(conn, again) == 1
    assert ingest._merge_next[conn] == ingest.MERGE_AFTER_CONFLICT
    assert conn.execute("SELECT value FROM reading WHERE ts = %s", (T0 + timedelta(minutes=9),)).fetchone() == (1009.0,)
    # a run of duplicates (a spool replay) takes the merge at once, then the straight COPY again
    for _ in range(ingest.MERGE_AFTER_CONFLICT):
        assert write_readings(conn, first) == 0
    assert ingest._merge_next[conn] == 0
    assert write_readings(conn, [Reading(pid, T0 + timedelta(minutes=11), 1011.0)]) == 1
    assert conn not in ingest._merge_next or ingest._merge_next[conn] == 0
    assert conn.execute("SELECT count(*) FROM reading").fetchone() == (12,)


def test_a_duplicate_inside_a_new_batch_is_one_row_either_way(conn):
    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    for k, (_way, setup) in enumerate(_both_ways(conn)):
        setup()
        t = T0 + timedelta(hours=k)
        assert write_readings(conn, [Reading(pid, t, 1.0), Reading(pid, t, 2.0), Reading(pid, t + timedelta(minutes=1), 3.0)]) == 2
    assert conn.execute("SELECT count(*) FROM reading").fetchone() == (6,)


def test_late_readings_are_marked_the_same_either_way(conn):
    ids = apply_site(conn, SITE)
    energy, power = ids["acme.main.grid.energy_import"], ids["acme.main.grid.active_power"]
    for way, setup in _both_ways(conn):
        conn.execute("TRUNCATE reading, rollup_dirty, rollup_watermark")
        conn.execute("INSERT INTO rollup_watermark (point_id, last_reading_ts) VALUES (%s, %s)",
                     (energy, T0 + timedelta(hours=1)))
        setup()
        batch = [Reading(energy, T0 + timedelta(minutes=5), None, Quality.BAD),  # bad: marks nothing
                 Reading(energy, T0 + timedelta(minutes=20), 5.0, Quality.SUSPECT),  # the earliest usable late one
                 Reading(energy, T0 + timedelta(minutes=10), None, Quality.BAD),
                 Reading(energy, T0 + timedelta(minutes=30), 6.0),
                 Reading(energy, T0 + timedelta(hours=2), 7.0),  # after the watermark
                 Reading(power, T0, 1.0)]  # a point with no watermark is never late
        assert write_readings(conn, batch) == 6, way
        assert conn.execute("SELECT point_id, since FROM rollup_dirty").fetchall() == [
            (energy, T0 + timedelta(minutes=20))], way
        # an earlier mark stays (least), a later one moves it back
        setup()
        write_readings(conn, [Reading(energy, T0 + timedelta(minutes=50), 1.0)])
        setup()
        write_readings(conn, [Reading(energy, T0 + timedelta(minutes=1), 1.0)])
        assert conn.execute("SELECT since FROM rollup_dirty").fetchall() == [(T0 + timedelta(minutes=1),)], way
        # nothing older than a watermark: nothing marked
        conn.execute("TRUNCATE rollup_dirty")
        setup()
        write_readings(conn, [Reading(energy, T0 + timedelta(hours=3), 1.0)])
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,), way


def test_a_row_the_database_refuses_fails_the_batch_either_way(conn):
    import psycopg
    import pytest

    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    conn.commit()
    for way, setup in _both_ways(conn):
        setup()
        with pytest.raises(psycopg.IntegrityError):  # a point deleted meanwhile: the writer goes row by row
            write_readings(conn, [Reading(pid, T0, 1.0), Reading(10**9, T0, 1.0)])
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM reading").fetchone() == (0,), way
