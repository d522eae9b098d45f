"""store/events.py: meter replacements checked against the readings around the swap, listed,
revoked (kept for audit), and the stored intervals recomputed through the real rollup."""

from datetime import datetime, timedelta, timezone

import pytest

from flows.rollup import rollup
from greengauge.demo import DEMO_SITE
from model.readings import Reading
from model.site import load_site
from store.events import ImpossibleReplacement, list_replacements, record_replacement, revoke_replacement
from store.ingest import write_readings
from store.sites import apply_site

POINT = "jj-shoes.main.battery.energy_export"  # rated 300 kW
T0 = datetime(2025, 6, 21, tzinfo=timezone.utc)


def q(k):
    return T0 + timedelta(minutes=15 * k)


def stored(conn, pid):
    return conn.execute("SELECT bucket_start, energy_wh FROM interval_energy WHERE point_id = %s ORDER BY 1",
                        (pid,)).fetchall()


@pytest.fixture
def swapped(conn):
    """The old meter climbs 300 Wh a quarter hour to its final reading 5 300 Wh at q(3), the very
    instant the swap is recorded; the new meter starts at 12 Wh and adds 200 Wh a quarter hour."""
    pid = apply_site(conn, load_site(DEMO_SITE))[POINT]
    old = [(q(k), 4_400.0 + 300 * k) for k in range(4)]
    new = [(q(k), 12.0 + 200 * (k - 3)) for k in range(4, 8)]
    write_readings(conn, [Reading(pid, t, v) for t, v in old + new])
    conn.commit()
    return pid


def test_a_replacement_at_the_final_reading_gives_the_true_energy_and_revoking_it_is_recomputed(conn, db_url, swapped):
    pid = swapped
    rollup(db_url)
    conn.commit()
    # without the replacement the fall 5 300 -> 212 is an unexplained reset: the quarter hour of the
    # swap gets no energy
    assert [e for _, e in stored(conn, pid)] == [300, 300, 300, 0, 200, 200, 200]
    rid = record_replacement(conn, POINT, q(3), 5_300, 12, "meter failed calibration")
    conn.commit()
    rollup(db_url)  # incremental: the mark brings the swap back into the run
    # the reading at the instant of the swap is the old meter's final one: 300 Wh, then the new
    # meter's 200 Wh — not the old counter's whole 5 288 Wh
    assert [e for _, e in stored(conn, pid)] == [300, 300, 300, 200, 200, 200, 200]
    conn.commit()
    r = revoke_replacement(conn, rid, "recorded on the wrong point")
    conn.commit()
    assert r.revoked_at is not None and r.revoked_reason == "recorded on the wrong point"
    rollup(db_url)
    assert [e for _, e in stored(conn, pid)] == [300, 300, 300, 0, 200, 200, 200]
    # kept for audit: listed with its revocation; a second revoke is refused; it can be recorded again
    [row] = list_replacements(conn, enterprise="jj-shoes")
    assert (row.replacement_id, row.revoked_reason) == (rid, "recorded on the wrong point")
    with pytest.raises(ValueError, match=f"replacement {rid} was already revoked"):
        revoke_replacement(conn, rid, "again")
    conn.rollback()
    assert record_replacement(conn, POINT, q(3), 5_300, 12, "meter failed calibration") != rid


@pytest.mark.parametrize("old_final, new_initial, match", [
    # the old meter read 5 300 Wh at the swap: its final reading cannot be lower
    (5_000, 12, "old meter's final reading 5000 Wh is below its reading 5300 Wh"),
    # the new meter reads 212 Wh 15 min after the swap: it cannot have started at 900
    (5_300, 900, "new meter's first reading 212 Wh .* is below its initial reading 900 Wh"),
    # the old meter read 5 300 Wh at the swap; 80 kWh more at the same instant is above any rating
    (5_300 + 80_000, 12, "would have carried more than the rated 300000 W"),
])
def test_an_impossible_replacement_is_refused_unless_forced(conn, swapped, old_final, new_initial, match):
    with pytest.raises(ImpossibleReplacement, match=match):
        record_replacement(conn, POINT, q(3), old_final, new_initial, "typo?")
    conn.rollback()
    assert list_replacements(conn) == []
    record_replacement(conn, POINT, q(3), old_final, new_initial, "figures from the utility's swap sheet", force=True)
    [row] = list_replacements(conn, point=POINT)
    assert row.forced


def test_the_database_keeps_every_recorded_replacement(conn, swapped):
    # audited, never deleted (migration 0860): not by the commands only — a DELETE is refused, an UPDATE
    # may only revoke a live replacement once; deleting the point itself still takes its replacements
    import psycopg

    rid = record_replacement(conn, POINT, q(3), 5_300, 12, "meter failed calibration")
    conn.commit()
    for sql in ("DELETE FROM meter_replacement WHERE replacement_id = %s",
                "UPDATE meter_replacement SET old_final_wh = 9999 WHERE replacement_id = %s",
                "UPDATE meter_replacement SET reason = 'else' WHERE replacement_id = %s"):
        with pytest.raises(psycopg.errors.RaiseException, match=f"meter replacement {rid} is"):
            conn.execute(sql, (rid,))
        conn.rollback()
    revoke_replacement(conn, rid, "recorded on the wrong point")
    conn.commit()
    with pytest.raises(psycopg.errors.RaiseException, match="changed only by revoking it, once"):
        conn.execute("UPDATE meter_replacement SET revoked_at = NULL, revoked_reason = NULL WHERE replacement_id = %s",
                     (rid,))
    conn.rollback()
    conn.execute("DELETE FROM point WHERE point_id = %s", (swapped,))  # the cascade from the point is allowed
    assert conn.execute("SELECT count(*) FROM meter_replacement").fetchone() == (0,)
