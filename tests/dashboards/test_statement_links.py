"""The Bureau dashboard's links to the API: the verified figures of each enterprise-year always; the
newest signed statement once the API's `statement` table exists (branch api's migration). Here the
table is made as that migration makes it, given its reader view by the tenancy's rule, and the
statement variant of the panel runs as each organization's reader."""

import uuid

import psycopg
import pytest

from dashboards.build import build_all
from dashboards.panels import HAS_STATEMENTS, bureau_yearly, has_statements
from tests.dashboards.test_panels import day_range, run_as, variables


def test_the_committed_bureau_dashboard_matches_the_schema():
    assert HAS_STATEMENTS == has_statements()
    cols = [o["matcher"]["options"] for o in build_all()["bureau/bureau.en.json"]["panels"][0]["fieldConfig"]["overrides"]]
    assert "figures" in cols and (("statement" in cols) == HAS_STATEMENTS)


@pytest.fixture(scope="module")
def with_statements(plant_db):
    with psycopg.connect(plant_db.url) as conn:
        if conn.execute("SELECT to_regclass('public.statement')").fetchone()[0] is None:
            conn.execute("""CREATE TABLE statement (statement_id uuid PRIMARY KEY,
                                enterprise_id bigint NOT NULL REFERENCES enterprise, year int NOT NULL,
                                kid text NOT NULL, jws text NOT NULL, payload_sha256 text NOT NULL,
                                data_through timestamptz, issued_at timestamptz NOT NULL DEFAULT now())""")
        conn.execute("SELECT tenancy_refresh()")  # the tenancy's rule for a table added later
        ids = {}
        for (eid, code) in conn.execute("SELECT enterprise_id, code FROM enterprise").fetchall():
            for n in range(2):  # two statements each: the newest is linked
                ids[code] = uuid.uuid4()
                conn.execute("""INSERT INTO statement (statement_id, enterprise_id, year, kid, jws, payload_sha256, issued_at)
                                VALUES (%s, %s, 2025, 'k', 'h.p.s', 'x', now() + %s * interval '1 s')""",
                             (ids[code], eid, n))
        conn.commit()
    return ids


def test_each_row_links_its_newest_statement_and_only_its_own(plant_db, with_statements):
    panel = bureau_yearly(with_statements=True)
    cols, rows = run_as(plant_db, "bureau", panel.sql, day_range(plant_db), variables("bureau", "", "", plant_db))
    assert cols == panel.columns
    assert {r[1]: r[-1] for r in rows} == {code: str(i) for code, i in with_statements.items()}
    # a park organization running it sees its own enterprise's statement only
    _, rows = run_as(plant_db, "jinjiang-eco", panel.sql, day_range(plant_db), variables("bureau", "", "", plant_db))
    assert [(r[1], r[-1]) for r in rows] == [("jj-shoes", str(with_statements["jj-shoes"]))]
