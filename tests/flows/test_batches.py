"""Flows map batches of enterprises (flows.tasks.batches): a batch's start is read in one round trip
and its results and watermarks written in one transaction; an enterprise that fails keeps its
watermark and is redone, while the others of its batch are stored."""

from datetime import timedelta

import pytest

import flows.eligibility as fe
import flows.metrics as fm
from flows.rollup import rollup
from flows.tasks import BatchError, batches
from store.results import enterprises, pass_start, save_watermarks


@pytest.mark.parametrize("n, workers, most, sizes", [
    (0, 4, 50, []),
    (1, 4, 50, [1]),
    (20, 4, 50, [5, 5, 5, 5]),  # a small province spread over every worker
    (21, 4, 50, [6, 6, 6, 3]),
    (1000, 4, 50, [50] * 20),  # a large one in batches of at most 50
])
def test_batch_sizes(n, workers, most, sizes):
    items = list(range(n))
    got = batches(items, workers, most)
    assert [len(b) for b in got] == sizes and [x for b in got for x in b] == items


@pytest.fixture
def two(conn, db_url, sim_day):
    """jj-shoes with its simulated day rolled up, and a second enterprise with no points."""
    rollup(db_url)
    conn.execute("UPDATE interval_energy SET computed_at = computed_at - interval '1 minute'")
    conn.execute("INSERT INTO enterprise (code, name) VALUES ('aa-empty', 'Empty')")
    conn.commit()
    ents = enterprises(conn)
    assert [e.code for e in ents] == ["aa-empty", "jj-shoes"]
    return ents


def _marks(conn, table):
    conn.commit()
    return dict(conn.execute(f"SELECT e.code, w.seen_through FROM {table} w JOIN enterprise e USING (enterprise_id)"))


def test_pass_start_reads_a_batch_as_each_alone(conn, db_url, sim_day, two):
    fm.enterprises_pass(db_url, two, sim_day.end + timedelta(minutes=30))  # watermarks, carried parts
    conn.execute("UPDATE interval_energy SET energy_wh = energy_wh + 1, computed_at = now() WHERE bucket_start = "
                 "(SELECT min(bucket_start) FROM interval_energy)")
    conn.commit()
    both = pass_start(conn, two, prefix_years=(2025,))
    conn.commit()
    for e in two:
        alone = pass_start(conn, [e], prefix_years=(2025,))[e.enterprise_id]
        conn.commit()
        b = both[e.enterprise_id]
        assert (b.ids, b.stamp, b.stored, b.prefixes, b.days) == (alone.ids, alone.stamp, alone.stored,
                                                                   alone.prefixes, alone.days)
    assert both[two[0].enterprise_id].ids == [] and both[two[1].enterprise_id].days  # the changed interval's day


def test_a_failing_enterprise_keeps_its_watermark_the_others_are_stored(conn, db_url, sim_day, two, monkeypatch):
    as_of = sim_day.end + timedelta(minutes=30)
    real = fm.compute_metrics

    def broken(data, carbon=None):
        if data.enterprise.code == "jj-shoes":
            raise ZeroDivisionError("injected")
        return real(data, carbon)

    monkeypatch.setattr(fm, "compute_metrics", broken)
    with pytest.raises(BatchError, match="jj-shoes: ZeroDivisionError: injected") as err:
        fm.enterprises_pass(db_url, two, as_of)
    assert isinstance(err.value.__cause__, ZeroDivisionError)
    assert set(_marks(conn, "metrics_watermark")) == {"aa-empty"}  # stored; jj-shoes' stays where it was
    assert conn.execute("SELECT count(*) FROM daily_balance").fetchone()[0] == 0
    monkeypatch.setattr(fm, "compute_metrics", real)
    (empty, shoes) = fm.enterprises_pass(db_url, two, as_of)  # redone: jj-shoes' days, all of them
    assert empty == [] or all(not m.daily for m in empty)
    assert shoes and shoes[0].daily
    assert set(_marks(conn, "metrics_watermark")) == {"aa-empty", "jj-shoes"}
    days = conn.execute("SELECT count(*) FROM daily_balance").fetchone()[0]
    assert days == len(shoes[0].daily)


def test_eligibility_batch_failure_keeps_only_that_watermark(conn, db_url, sim_day, two, monkeypatch):
    as_of = sim_day.end + timedelta(days=1)
    real = fe.record

    def broken(url, e, *args, **kw):
        if e.code == "jj-shoes":
            raise RuntimeError("injected")
        return real(url, e, *args, **kw)

    monkeypatch.setattr(fe, "record", broken)
    with pytest.raises(BatchError, match="jj-shoes: RuntimeError: injected"):
        fe.enterprises_decisions(db_url, two, as_of)
    assert set(_marks(conn, "eligibility_watermark")) == {"aa-empty"}
    assert {r[0] for r in conn.execute("SELECT e.code FROM eligibility_input JOIN enterprise e USING (enterprise_id)")
            } == {"aa-empty"}  # jj-shoes' years are evaluated again next time
    monkeypatch.setattr(fe, "record", real)
    fe.enterprises_decisions(db_url, two, as_of)
    assert set(_marks(conn, "eligibility_watermark")) == {"aa-empty", "jj-shoes"}


def test_watermarks_never_move_back_and_join_the_callers_transaction(conn, db_url, two):
    from datetime import datetime, timezone

    e = two[1].enterprise_id
    t1, t0 = datetime(2026, 1, 2, tzinfo=timezone.utc), datetime(2026, 1, 1, tzinfo=timezone.utc)
    save_watermarks(conn, {e: t1, two[0].enterprise_id: None})
    save_watermarks(conn, {e: t0})
    assert _marks(conn, "metrics_watermark") == {"jj-shoes": t1}
    with conn.transaction():  # the caller's: committed with it
        save_watermarks(conn, {two[0].enterprise_id: t1})
    assert _marks(conn, "metrics_watermark") == {"jj-shoes": t1, "aa-empty": t1}
    with pytest.raises(ZeroDivisionError):  # and rolled back with it
        with conn.transaction():
            save_watermarks(conn, {e: t1 + timedelta(days=1)})
            1 / 0
    assert _marks(conn, "metrics_watermark")["jj-shoes"] == t1


def test_a_bundle_read_in_one_round_trip_equals_the_plain_read(conn, db_url, sim_day, two):
    """load_enterprise_period(expect=…) reads the points with the rest; should they differ from
    what the caller expected (a point added since its pass began), it reads them again."""
    import numpy as np

    from store.bundle import load_enterprise_period

    shoes = two[1]
    ids = [r[0] for r in conn.execute(
        "SELECT point_id FROM point JOIN device USING (device_id) JOIN site USING (site_id) "
        "WHERE site.enterprise_id = %s ORDER BY point_id", (shoes.enterprise_id,))]
    plain = load_enterprise_period(conn, "jj-shoes", sim_day.start, sim_day.end, with_policy=False)
    for expect in ((shoes.enterprise_id, ids), (shoes.enterprise_id, ids[:-1]), (two[0].enterprise_id, ids)):
        got = load_enterprise_period(conn, "jj-shoes", sim_day.start, sim_day.end, with_policy=False, expect=expect)
        assert (got.enterprise_id, got.timezone, got.points, got.findings, got.replacements, got.trades,
                got.certificates, got.rolled_up_to) == (plain.enterprise_id, plain.timezone, plain.points,
                                                        plain.findings, plain.replacements, plain.trades,
                                                        plain.certificates, plain.rolled_up_to)
        assert set(got.columns) == set(plain.columns) == set(ids)
        for pid in ids:
            assert np.array_equal(got.columns[pid].t, plain.columns[pid].t)
            assert np.array_equal(got.columns[pid].wh, plain.columns[pid].wh)


def test_fingerprints_of_a_batch_equal_each_alone(conn, db_url, sim_day, two):
    from store.results import input_fingerprint, input_fingerprints

    items = [(e.enterprise_id, sim_day.start - timedelta(days=d), sim_day.end, {"x": d}, 2025)
             for e in two for d in (0, 3)]
    batch = input_fingerprints(conn, items)
    assert batch == [input_fingerprint(conn, eid, s, t, extra, year=y) for eid, s, t, extra, y in items]
    assert len({fp for fp, _ in batch}) == len(items)  # the enterprise, the period and extra all count
