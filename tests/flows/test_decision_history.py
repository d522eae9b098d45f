"""Migration 0405 against the real PostgreSQL: eligibility decisions are history — never deleted,
truncated or cascaded away with their enterprise, and each new version extends its key's chain."""

import psycopg
import pytest

from flows.eligibility import record_candidates
from store.results import insert_decision
from tests.flows.test_eligibility import cand

KEY = ("doc", "§1", "R9", "")


@pytest.fixture
def eid(conn):
    eid = conn.execute("INSERT INTO enterprise (code, name) VALUES ('e1', 'E1') RETURNING enterprise_id").fetchone()[0]
    record_candidates(conn, eid, 2025, [cand()])  # version 1
    record_candidates(conn, eid, 2025, [cand(green_wh=2)])  # version 2, supersedes 1
    conn.commit()
    return eid


def chain(conn, eid):
    return conn.execute("""SELECT decision_id, version, supersedes FROM eligibility_decision
                           WHERE enterprise_id = %s AND subject = '' ORDER BY version""", (eid,)).fetchall()


def insert(conn, eid, version, supersedes, subject=""):
    return insert_decision(conn, eid, 2025, *KEY[:3], subject, version, "qualifies", None, {"x": version},
                           "late_data" if supersedes else "first", supersedes)


def test_a_decision_cannot_be_deleted(conn, eid):
    with pytest.raises(psycopg.errors.RaiseException, match="history and are never deleted"):
        conn.execute("DELETE FROM eligibility_decision WHERE version = 2")
    conn.rollback()
    assert [r[1] for r in chain(conn, eid)] == [1, 2]


def test_decisions_cannot_be_truncated(conn, eid):
    with pytest.raises(psycopg.errors.RaiseException, match="history and are never deleted"):
        conn.execute("TRUNCATE eligibility_decision")
    conn.rollback()
    with pytest.raises(psycopg.errors.RaiseException, match="history"):
        conn.execute("TRUNCATE enterprise CASCADE")  # reaches eligibility_decision too
    conn.rollback()
    assert [r[1] for r in chain(conn, eid)] == [1, 2]


def test_an_enterprise_with_decisions_cannot_be_deleted(conn, eid):
    assert conn.execute("""SELECT confdeltype FROM pg_constraint
                           WHERE conname = 'eligibility_decision_enterprise_id_fkey'""").fetchone() == ("r",)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("DELETE FROM enterprise WHERE enterprise_id = %s", (eid,))
    conn.rollback()
    assert [r[1] for r in chain(conn, eid)] == [1, 2]
    # an enterprise without decisions still can be
    conn.execute("INSERT INTO enterprise (code, name) VALUES ('e2', 'E2')")
    assert conn.execute("DELETE FROM enterprise WHERE code = 'e2'").rowcount == 1


def test_a_new_version_must_supersede_the_latest_as_its_next_version(conn, eid):
    (v1, _, _), (v2, _, _) = chain(conn, eid)
    refused = [
        (2, v1),     # a fork: version 2 again, superseding 1
        (3, v1),     # supersedes an old version, not the latest
        (4, v2),     # a gap: the latest is 2, the next is 3
        (3, None),   # supersedes nothing although the key has a history
        (2, v2),     # version not above the one it supersedes
    ]
    for version, supersedes in refused:
        with pytest.raises(psycopg.errors.RaiseException, match="must supersede the latest"):
            insert(conn, eid, version, supersedes)
        conn.rollback()
    # the first version of another key supersedes nothing and is version 1
    for version, supersedes in [(1, v2), (2, None)]:
        with pytest.raises(psycopg.errors.RaiseException, match="first version is 1 and supersedes nothing"):
            insert(conn, eid, version, supersedes, subject="project p")
        conn.rollback()
    # what the flow does is accepted
    v3 = insert(conn, eid, 3, v2)
    insert(conn, eid, 1, None, subject="project p")
    conn.commit()
    assert chain(conn, eid)[2] == (v3, 3, v2)
    rec = record_candidates(conn, eid, 2025, [cand(green_wh=3)])
    assert [r.version for r in rec] == [4]
