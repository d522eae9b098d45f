"""flows/quality.py: findings opened and closed with times."""

from datetime import datetime, timedelta, timezone

from model.readings import Quality, Reading
from flows.quality import check
from store.findings import findings
from store.ingest import write_readings
from tests.flows.conftest import make_sim_day, sim_readings


def test_stale_device_opens_and_closes_when_readings_return(conn, db_url):
    sd = make_sim_day(conn, write_until=None)
    t = sd.data_to
    # readings stop at data_to: 2 minutes later nothing is stale, 4 minutes later (3 polls of 60 s) all devices are
    assert check(db_url, t + timedelta(minutes=2)).opened == []
    opened = check(db_url, t + timedelta(minutes=4)).opened
    stale = [o for o in opened if o[0] == "stale_device"]
    assert len(stale) == 4  # grid, pv, battery, recycling
    last = t - timedelta(minutes=1)
    assert {o[3] for o in stale} == {last}
    # still stale an hour later: nothing new opened
    assert [o for o in check(db_url, t + timedelta(hours=1)).opened if o[0] == "stale_device"] == []
    # readings return after 2 hours
    back = t + timedelta(hours=2)
    write_readings(conn, sim_readings(sd, back, back + timedelta(minutes=10)))
    conn.commit()
    res = check(db_url, back + timedelta(minutes=10))
    assert {c[3] for c in res.closed if c[0] == "stale_device"} == {back}
    rows = findings(conn, kind="stale_device")
    assert {(f.opened_at, f.closed_at) for f in rows} == {(last, back)}
    # the outage is also a gap of every point
    gaps = findings(conn, kind="gap")
    assert {(f.opened_at, f.closed_at) for f in gaps} == {(last, back)}
    # over the last 6 hours only 4 hours of readings: incomplete; a day later complete again
    check(db_url, back + timedelta(minutes=10), window=timedelta(hours=6))
    low = findings(conn, kind="low_completeness", open_only=True)
    assert len(low) == len(sd.role_points)
    write_readings(conn, sim_readings(sd, back + timedelta(minutes=10), back + timedelta(hours=7)))
    conn.commit()
    res = check(db_url, back + timedelta(hours=7), window=timedelta(hours=6))
    assert len([c for c in res.closed if c[0] == "low_completeness"]) == len(sd.role_points)
    assert findings(conn, kind="low_completeness", open_only=True) == []


def test_counter_drop_spike_and_rerun(conn, db_url):
    sd = make_sim_day(conn, write_until=None)
    pid = sd.role_points["grid_import"]
    t = sd.data_to
    write_readings(conn, [Reading(pid, t, 5.0),  # meter replaced or reset
                          Reading(pid, t + timedelta(minutes=1), 9e12, Quality.SUSPECT),
                          Reading(pid, t + timedelta(minutes=2), 9e12, Quality.SUSPECT),
                          Reading(pid, t + timedelta(minutes=3), 20.0)])
    conn.commit()
    as_of = t + timedelta(minutes=3)
    check(db_url, as_of)
    drops = findings(conn, kind="counter_drop")
    assert [(f.point_id, f.opened_at) for f in drops] == [(pid, t), (pid, t + timedelta(minutes=3))]
    spikes = findings(conn, kind="spike")
    assert [(f.opened_at, f.closed_at, f.data) for f in spikes] == [
        (t + timedelta(minutes=1), t + timedelta(minutes=2), {"readings": 2})]
    before = findings(conn)
    assert check(db_url, as_of).opened == []  # a rerun records nothing twice
    assert findings(conn) == before


def test_clock_skew(conn, db_url):
    sd = make_sim_day(conn, write_until=None)
    pid = sd.role_points["pv_generation"]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # a device clock 10 minutes ahead: readings stamped in the future arrive now
    write_readings(conn, [Reading(pid, now + timedelta(minutes=10, seconds=i * 60), 1.0 + i) for i in range(5)])
    conn.commit()
    res = check(db_url, now, now=now)
    assert [o[0] for o in res.opened if o[0] == "clock_skew"] == ["clock_skew"]
    assert findings(conn, kind="clock_skew", open_only=True)[0].data["median_delay_s"] < -500  # ahead: negative
