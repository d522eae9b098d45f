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
