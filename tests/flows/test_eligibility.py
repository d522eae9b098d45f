"""flows/eligibility.py: versions, never overwritten; reasons; R1 from real readings."""

from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from model.readings import Reading
from flows.eligibility import evaluate, period_of, policy_candidates, record_candidates
from flows.rollup import rollup
from accounting.site_energy import site_energy
from store.ingest import write_readings
from store.results import decisions_since, enterprises, last_fingerprint


def cand(status="qualifies", amount=None, **evidence):
    ev = {"data_through": "2025-06-22", "rule_version": "v1", "ledger_digest": None, "green_wh": 1}
    ev.update(evidence)
    return {"document": "doc", "clause": "§1", "rule": "R9", "status": status, "amount": amount, "evidence": ev}


def versions(conn, eid):
    return conn.execute("""SELECT version, status, amount, reason, supersedes IS NOT NULL FROM eligibility_decision
                           WHERE enterprise_id = %s ORDER BY decision_id""", (eid,)).fetchall()


@pytest.fixture
def eid(conn, sim_day):
    return enterprises(conn)[0].enterprise_id


def test_versions_and_reasons(conn, eid):
    steps = [
        (cand(), "first"),
        (cand(), None),  # unchanged: nothing written
        (cand(green_wh=2), "late_data"),  # same period, other figure
        (cand(green_wh=2, data_through="2025-06-23"), "new_data"),
        (cand(green_wh=2, data_through="2025-06-23", ledger_digest="abc"), "ledger_change"),
        (cand(green_wh=2, data_through="2025-06-23", ledger_digest="abc", rule_version="v2"), "rule_change"),
        (cand("does_not_qualify", "12.50", green_wh=2, data_through="2025-06-23", ledger_digest="abc", rule_version="v2"), "late_data"),
    ]
    for c, reason in steps:
        rec = record_candidates(conn, eid, 2025, [c])
        assert [r.reason for r in rec] == ([reason] if reason else [])
    rows = versions(conn, eid)
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1][1:3] == ("does_not_qualify", Decimal("12.50"))
    assert [r[4] for r in rows] == [False, True, True, True, True, True]
    # what changed since version 4 (the bureau's last pull): two versions, each beside the old one
    v4 = conn.execute("SELECT decision_id FROM eligibility_decision WHERE version = 4").fetchone()[0]
    changes = decisions_since(conn, v4, eid)
    assert [(c["version"], c["reason"]) for c in changes] == [(5, "rule_change"), (6, "late_data")]
    assert changes[1]["old_status"] == "qualifies" and changes[1]["new_status"] == "does_not_qualify"
    conn.commit()
    with pytest.raises(psycopg.errors.RaiseException, match="never changed in place"):
        conn.execute("UPDATE eligibility_decision SET status = 'x'")
    conn.rollback()
    with pytest.raises(ValueError, match="float"):
        record_candidates(conn, eid, 2025, [cand(amount=1.5)])


def test_r1_from_real_readings_new_version_on_late_data(conn, db_url, sim_day):
    e = enterprises(conn)[0]
    # the last two hours of the day are still in a collector's spool
    held_from = sim_day.end - timedelta(hours=2)
    held = conn.execute("SELECT point_id, ts, value FROM reading WHERE ts >= %s", (held_from,)).fetchall()
    conn.execute("DELETE FROM reading WHERE ts >= %s", (held_from,))
    conn.commit()
    as_of = sim_day.end + timedelta(hours=3)  # the next local day has begun: the period ends at the day's end
    assert period_of(e, 2025, as_of)[1] == sim_day.end
    rollup(db_url)
    first = evaluate(db_url, e, 2025, as_of)
    assert {r.reason for r in first} == {"first"}
    r1 = {(r.document, r.clause) for r in first if r.rule == "green-share-priority"}
    # R1 (green share >= 30 %) under both Jinjiang documents reaching 2025
    assert r1 == {("晋政规〔2024〕2号", "§三(一)"), ("晉政規〔2025〕5號", "§三(三)")}
    assert evaluate(db_url, e, 2025, as_of) == []  # nothing changed
    write_readings(conn, [Reading(*r) for r in held])
    conn.commit()
    # evaluation reads the inputs' fingerprint from the rollup: until it has run, nothing to do
    assert evaluate(db_url, e, 2025, as_of) == []
    rollup(db_url)
    second = evaluate(db_url, e, 2025, as_of)
    # the late readings change the energy figures (green share, recycling electricity): new versions
    assert second and {r.reason for r in second} == {"late_data"} and {r.version for r in second} == {2}
    assert {r.document for r in second if r.rule == "green-share-priority"} == {"晋政规〔2024〕2号", "晉政規〔2025〕5號"}
    ystart = period_of(e, 2025, as_of)[0]
    direct = site_energy(conn, "jj-shoes", ystart, sim_day.end)
    rows = conn.execute("""SELECT version, status, evidence->'inputs'->'green_share'->'energy_wh'->>'green',
                                  evidence->'inputs'->'green_share'->'energy_wh'->>'consumption'
                           FROM eligibility_decision WHERE document = '晉政規〔2025〕5號'
                           AND rule = 'green-share-priority' ORDER BY version""").fetchall()
    assert len(rows) == 2  # the old version is kept
    # one simulated day is far below 95 % of the year's intervals measured: R1 is unknown, but the
    # figures behind it are those of the site balance
    assert rows[1][1:] == ("unknown", str(direct.totals.green_wh), str(direct.totals.consumption_wh))
    assert rows[0][3] != rows[1][3]
    assert evaluate(db_url, e, 2025, as_of, force=True) == []  # forced, but the figures are the same
    # a day later the period grows: new_data
    third = evaluate(db_url, e, 2025, as_of + timedelta(days=1))
    assert third and {r.reason for r in third if r.rule == "green-share-priority"} == {"new_data"}


def test_policy_documents_in_force(conn, sim_day):
    """R1 candidates per year: 2024-2 reaches 2024 and 2025 (repealed 2025-06-15), 2025-5 reaches
    2025 and 2026 (cases from 2025-01-01); no document reaches 2027."""
    e = enterprises(conn)[0]

    def r1_docs(y):
        return sorted((c["document"] for c in policy_candidates(conn, e, y, sim_day.start, sim_day.end)
                       if c["rule"] == "green-share-priority" and c["status"] != "not_applicable"), key=lambda d: "2025" in d)
    assert r1_docs(2024) == ["晋政规〔2024〕2号"]
    assert r1_docs(2025) == ["晋政规〔2024〕2号", "晉政規〔2025〕5號"]
    assert r1_docs(2026) == ["晉政規〔2025〕5號"]
    assert r1_docs(2027) == []


def test_subjects_of_one_rule_are_versioned_apart(conn, eid):
    pv1 = dict(cand("qualifies", "40000.00"), subject="project pv1")
    pv2 = dict(cand("does_not_qualify"), subject="project pv2")
    assert [(r.subject, r.version, r.reason) for r in record_candidates(conn, eid, 2025, [pv1, pv2])] == [
        ("project pv1", 1, "first"), ("project pv2", 1, "first")]
    pv2b = dict(cand("qualifies", "12000.00"), subject="project pv2")
    assert [(r.subject, r.version, r.reason) for r in record_candidates(conn, eid, 2025, [pv1, pv2b])] == [
        ("project pv2", 2, "late_data")]


def test_a_recorded_meter_replacement_re_evaluates(conn, db_url, sim_day):
    """Metering settings are inputs too: a replacement recorded (or a rating changed) after a
    decision makes the next run evaluate again instead of skipping on an unchanged fingerprint."""
    e = enterprises(conn)[0]
    as_of = sim_day.end + timedelta(hours=3)
    rollup(db_url)
    assert evaluate(db_url, e, 2025, as_of)
    assert evaluate(db_url, e, 2025, as_of) == []
    conn.execute("UPDATE point SET rated_power_w = 1500000 WHERE point_id = %s", (sim_day.role_points["grid_import"],))
    conn.commit()
    # the evaluation runs again: the fingerprint it stores now includes the new rating
    before = last_fingerprint(conn, e.enterprise_id, 2025)
    evaluate(db_url, e, 2025, as_of)
    conn.commit()
    assert last_fingerprint(conn, e.enterprise_id, 2025) != before


def test_a_removed_interval_re_evaluates(conn, db_url, sim_day):
    """The fingerprint probes the newest change of the period's intervals instead of counting them:
    a removal stamps nothing on the rows that stay, so it is recorded (migration 0830) and the next
    evaluation runs and versions the figures it moved as late data."""
    e = enterprises(conn)[0]
    as_of = sim_day.end + timedelta(hours=3)
    rollup(db_url)
    assert evaluate(db_url, e, 2025, as_of)
    assert evaluate(db_url, e, 2025, as_of) == []
    pv = sim_day.role_points["pv_generation"]
    removed = conn.execute("""DELETE FROM interval_energy WHERE point_id = %s AND energy_wh > 0
                              AND bucket_start = (SELECT max(bucket_start) FROM interval_energy
                                                  WHERE point_id = %s AND energy_wh > 0)
                              RETURNING bucket_start""", (pv, pv)).fetchall()
    conn.commit()
    assert conn.execute("SELECT bucket_start FROM interval_energy_removed WHERE point_id = %s",
                        (pv,)).fetchall() == removed
    again = evaluate(db_url, e, 2025, as_of)
    assert again and {r.reason for r in again} == {"late_data"}
    assert evaluate(db_url, e, 2025, as_of) == []
