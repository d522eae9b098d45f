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
    real = fe.evaluate

    def broken(url, e, year, as_of, **kw):
        if e.code == "aa-empty":
            raise RuntimeError("injected")
        return real(url, e, year, as_of, **kw)

    monkeypatch.setattr(fe, "evaluate", broken)
    with pytest.raises(BatchError, match="aa-empty: RuntimeError: injected"):
        fe.enterprises_decisions(db_url, two, as_of)
    assert set(_marks(conn, "eligibility_watermark")) == {"jj-shoes"}
    monkeypatch.setattr(fe, "evaluate", real)
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
