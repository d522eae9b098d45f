"""Migration 0840: every write to what people record for an enterprise moves its input stamp,
and only its own; the flows skip a closed year whose stamp and intervals did not move."""

import pytest

from greengauge.demo import DEMO_SITE
from model.site import load_site
from store.results import enterprise_state
from store.sites import apply_site


@pytest.fixture
def two(conn):
    apply_site(conn, load_site(DEMO_SITE))
    conn.execute("INSERT INTO enterprise (code, name) VALUES ('other', 'Another enterprise')")
    conn.commit()
    ids = dict(conn.execute("SELECT code, enterprise_id FROM enterprise").fetchall())
    (other,) = [v for k, v in ids.items() if k == "other"]
    (demo,) = [v for k, v in ids.items() if k != "other"]
    return demo, other


def stamps(conn, *ids):
    return tuple(enterprise_state(conn, e)[1] for e in ids)


@pytest.mark.parametrize("write", [
    # a point's rating (metering settings)
    "UPDATE point SET rated_power_w = 1500000 WHERE point_id = (SELECT min(point_id) FROM point)",
    # a device's CT ratio
    "UPDATE device SET ct_ratio = 40 WHERE device_id = (SELECT min(device_id) FROM device)",
    # a green-power trade entered
    "INSERT INTO green_trade (enterprise_id, reference, settled_on, settled_wh) "
    "SELECT enterprise_id, 'T-1', '2025-03-01', 1000000 FROM enterprise WHERE code <> 'other'",
    # a meter replacement recorded
    "INSERT INTO meter_replacement (point_id, ts, old_final_wh, new_initial_wh, reason) "
    "SELECT min(point_id), '2025-03-01T00:00Z', 5, 0, 'swapped' FROM point",
    # the time zone
    "UPDATE enterprise SET timezone = 'Asia/Urumqi' WHERE code <> 'other'",
    # a production row, then its product's reference values
    "INSERT INTO production (enterprise_id, product, period_start, period_end, quantity, unit) "
    "SELECT enterprise_id, 'shoes', '2025-01-01', '2025-12-31', 10, 'pair' FROM enterprise WHERE code <> 'other'",
])
def test_a_write_moves_only_its_enterprise(conn, two, write):
    demo, other = two
    before = stamps(conn, demo, other)
    assert None not in before
    conn.execute(write)
    conn.commit()
    after = stamps(conn, demo, other)
    assert after[0] > before[0]  # the enterprise written for
    assert after[1] == before[1]  # never another one


def test_reference_values_and_truncate(conn, two):
    demo, other = two
    conn.execute("INSERT INTO production (enterprise_id, product, period_start, period_end, quantity, unit) "
                 "VALUES (%s, 'shoes', '2025-01-01', '2025-12-31', 10, 'pair')", (demo,))
    conn.commit()
    before = stamps(conn, demo, other)
    # reference values of a product move the stamp of every enterprise producing it
    conn.execute("INSERT INTO product_reference (product, unit, limit_kgce) VALUES ('shoes', 'pair', 1)")
    conn.commit()
    after = stamps(conn, demo, other)
    assert after[0] > before[0] and after[1] == before[1]
    # TRUNCATE has no rows to follow: every stamp moves
    conn.execute("TRUNCATE certificate, green_trade")
    conn.commit()
    last = stamps(conn, demo, other)
    assert last[0] > after[0] and last[1] > after[1]


def test_a_new_enterprise_has_a_stamp(conn):
    conn.execute("INSERT INTO enterprise (code, name) VALUES ('new', 'New')")
    conn.commit()
    (eid,) = conn.execute("SELECT enterprise_id FROM enterprise WHERE code = 'new'").fetchone()
    assert enterprise_state(conn, eid)[1] is not None
