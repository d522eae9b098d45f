"""Tenancy on the real PostgreSQL: each reader role, logged in as itself, over two parks × two
enterprises of data in every table, sees its own rows by every path and nothing of another tenant's.

Relations, functions, sequences and schemas are enumerated from the catalogs, so a table added later
is covered without touching this file (its rows must be seeded in tenancy_seed.py: a test says so).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from store import tenancy
from store.migrate import upgrade
from tests.store.tenancy_seed import PARKS, seed

CONTRACT_VIEWS = {
    "park", "enterprise", "site", "device", "point", "reading", "interval_energy", "energy_hourly", "energy_daily",
    "daily_balance", "green_share_ytd", "green_share_projection", "carbon_ytd", "eligibility_decision",
    "eligibility_current", "dq_finding", "collector_finding", "device_health", "production", "green_trade",
    "certificate", "enterprise_fact", "pv_project", "meter_replacement",
}
KEYS = ("enterprise_id", "park_id", "site_id", "device_id", "point_id")
OWNER_SCOPE = {  # the rows of each key a scope of enterprise ids owns (computed as the owner, independently)
    "enterprise_id": "t.enterprise_id = ANY(%(e)s)",
    "park_id": "t.park_id IN (SELECT park_id FROM enterprise WHERE enterprise_id = ANY(%(e)s)) OR t.park_id = ANY(%(p)s)",
    "site_id": "t.site_id IN (SELECT site_id FROM site WHERE enterprise_id = ANY(%(e)s))",
    "device_id": "t.device_id IN (SELECT device_id FROM device JOIN site USING (site_id) WHERE enterprise_id = ANY(%(e)s))",
    "point_id": """t.point_id IN (SELECT point_id FROM point JOIN device USING (device_id) JOIN site USING (site_id)
                   WHERE enterprise_id = ANY(%(e)s))""",
}


@pytest.fixture
def world(db_url):
    """The seeded database, its readers (enterprise EA1, park PA, bureau, writer for EA1) and their URLs."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        ents, parks = seed(conn)
        conn.execute("ANALYZE")  # statistics exist, so pg_stats has something to leak
        readers = {
            "enterprise": tenancy.add_reader(conn, enterprise="EA1"),
            "park": tenancy.add_reader(conn, park="PA"),
            "bureau": tenancy.add_reader(conn, bureau=True),
            "writer": tenancy.add_reader(conn, enterprise="EA1", writer=True, name="ea1_entry"),
        }
    scopes = {
        "enterprise": ([ents["EA1"]], []),
        "park": ([ents[c] for c in PARKS["PA"]], [parks["PA"]]),
        "bureau": (list(ents.values()), list(parks.values())),
        "writer": ([ents["EA1"]], []),
    }
    return {"url": db_url, "ents": ents, "parks": parks, "readers": readers, "scopes": scopes}


def _reader_views(conn) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'reader'::regnamespace AND c.relkind = 'v' "
        "ORDER BY 1").fetchall()]


def _key(conn, view: str) -> tuple[str | None, bool]:
    row = conn.execute(
        """SELECT a.attname, NOT a.attnotnull FROM pg_attribute a
           WHERE a.attrelid = format('public.%%I', %s::text)::regclass AND a.attnum > 0 AND NOT a.attisdropped
             AND a.attname = ANY(%s)
           ORDER BY array_position(%s::name[], a.attname) LIMIT 1""", (view, list(KEYS), list(KEYS))).fetchone()
    return (row[0], row[1]) if row else (None, False)


def expected_rows(owner, view: str, ents: list[int], parks: list[int], bureau: bool) -> list[str]:
    """The rows of public.<view> a scope owns, as the owner computes them (row text, sorted)."""
    key, _ = _key(owner, view)
    where = "true" if key is None or bureau else OWNER_SCOPE[key]
    q = sql.SQL("SELECT t::text FROM public.{} t WHERE " + where).format(sql.Identifier(view))
    return sorted(r[0] for r in owner.execute(q, {"e": ents, "p": parks}).fetchall())


def connect_as(world, who: str, **kw) -> psycopg.Connection:
    return psycopg.connect(tenancy.reader_url(world["url"], world["readers"][who]), **kw)


def test_migration_makes_the_job_roles_and_every_contract_view(db_url):
    with psycopg.connect(db_url) as conn:
        p = tenancy.role_prefix(conn)
        assert p == tenancy.prefix_for(conn.info.dbname)
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (p,))}
        assert {p + j for j in ("reader", "writer", "collector", "flows")} <= roles
        views = set(_reader_views(conn))
        assert CONTRACT_VIEWS <= views
        # same name, same columns (and types) as the table in public
        for v in views:
            cols = conn.execute(
                """SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0
                   AND NOT attisdropped ORDER BY attnum""", (f"reader.{v}",)).fetchall()
            base = conn.execute(
                """SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0
                   AND NOT attisdropped ORDER BY attnum""", (f"public.{v}",)).fetchall()
            assert cols == base, v
            opts = conn.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", (f"reader.{v}",)).fetchone()[0]
            assert "security_barrier=true" in opts, v


def test_upgrade_twice_changes_no_view_or_grant(db_url):
    q = """SELECT c.relnamespace::regnamespace::text, c.relname, pg_get_viewdef(c.oid), c.relacl::text,
                  c.reloptions::text FROM pg_class c
           WHERE c.relnamespace IN ('reader'::regnamespace, 'public'::regnamespace) ORDER BY 1, 2"""
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = conn.execute(q).fetchall()
        assert upgrade(conn) == []
        assert conn.execute(q).fetchall() == before
        conn.execute("SELECT tenancy_refresh()")  # the refresh itself is idempotent too
        assert conn.execute(q).fetchall() == before


def test_every_table_has_rows_of_every_tenant_in_the_seed(world):
    """So the hostile tests below prove something for each table, a new one included."""
    with psycopg.connect(world["url"]) as owner:
        for view in _reader_views(owner):
            for code, e in world["ents"].items():
                key, _ = _key(owner, view)
                if key is None:
                    continue
                rows = expected_rows(owner, view, [e], [], False)
                assert rows, f"public.{view} has no row of enterprise {code}: seed one in tests/store/tenancy_seed.py"


@pytest.mark.parametrize("who", ["enterprise", "park", "bureau", "writer"])
def test_each_reader_sees_exactly_its_scope_in_every_view(world, who):
    ents, parks = world["scopes"][who]
    with psycopg.connect(world["url"]) as owner, connect_as(world, who) as conn:
        for view in _reader_views(owner):
            want = expected_rows(owner, view, ents, parks, who == "bureau")
            got = sorted(r[0] for r in conn.execute(
                sql.SQL("SELECT v::text FROM {} v").format(sql.Identifier(view))).fetchall())  # search_path = reader
            assert got == want, f"{who} reading reader.{view}"
            if who != "bureau":
                assert len(want) < len(expected_rows(owner, view, list(world["ents"].values()), [], True)) or \
                    _key(owner, view)[0] is None, view
