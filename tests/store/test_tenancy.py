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


# -- the hostile part: every path a reader's SQL could take ------------------------------------------

READERS = ["enterprise", "park", "bureau", "writer"]
# schemas of TimescaleDB's own metadata, readable by PUBLIC by the extension's design; chunks live in
# _timescaledb_internal and carry the hypertable's grants (none for a reader)
TIMESCALE_METADATA = {"_timescaledb_catalog", "_timescaledb_config", "_timescaledb_cache", "timescaledb_information",
                      "timescaledb_experimental"}


def _others_markers(world, who) -> list[str]:
    """``secret-<code>`` of every enterprise outside the reader's scope (the orphan finding: non-bureau)."""
    ents, _ = world["scopes"][who]
    out = [f"secret-{c}" for c, e in world["ents"].items() if e not in ents]
    return out + ([] if who == "bureau" else ["secret-ORPHAN"])


def _all_relations(conn) -> list[tuple[str, str, str]]:
    """(schema, name, relkind) of every relation outside pg_catalog/information_schema, TimescaleDB's
    internal schemas included when present."""
    return conn.execute(
        """SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
             AND n.nspname NOT LIKE 'pg_temp%%' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           ORDER BY 1, 2""").fetchall()


def _denied(conn, query, params=None, also=()) -> bool:
    try:
        with conn.transaction():
            conn.execute(query, params)
    except (psycopg.errors.InsufficientPrivilege, *also):
        return True
    return False


# a write to a view that is not updatable is refused before its privileges are checked
NOT_UPDATABLE = (psycopg.errors.ObjectNotInPrerequisiteState, psycopg.errors.FeatureNotSupported)


@pytest.mark.parametrize("who", READERS)
def test_no_table_outside_schema_reader_can_be_read_or_copied(world, who):
    with psycopg.connect(world["url"]) as owner, connect_as(world, who) as conn:
        rels = [r for r in _all_relations(owner) if r[0] != "reader"]
        assert ("public", "reading", "r") in rels and ("public", "tenant_scope", "r") in rels
        others = _others_markers(world, who)
        for nsp, rel, kind in rels:
            ident = sql.Identifier(nsp, rel)
            if nsp in TIMESCALE_METADATA and not _denied(conn, sql.SQL("SELECT 1 FROM {} LIMIT 1").format(ident)):
                # TimescaleDB lets PUBLIC read its catalog (table and chunk names, settings): no tenant's rows
                with conn.cursor().copy(sql.SQL("COPY (SELECT * FROM {}) TO STDOUT").format(ident)) as copy:
                    text = b"".join(bytes(b) for b in copy).decode()
                assert not [m for m in others if m in text], (nsp, rel)
                continue
            if kind == "S":
                assert _denied(conn, sql.SQL("SELECT nextval({})").format(sql.Literal(f"{nsp}.{rel}"))), rel
                assert _denied(conn, sql.SQL("SELECT * FROM {}").format(ident)), rel
                continue
            assert _denied(conn, sql.SQL("SELECT * FROM {} LIMIT 1").format(ident)), f"{who}: SELECT {nsp}.{rel}"
            assert _denied(conn, sql.SQL("SELECT count(*) FROM {}").format(ident)), rel
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with conn.cursor().copy(sql.SQL("COPY {} TO STDOUT").format(ident)) as copy:
                    list(copy)
            conn.rollback()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with conn.cursor().copy(sql.SQL("COPY (SELECT * FROM {}) TO STDOUT").format(ident)) as copy:
                    list(copy)
            conn.rollback()
            assert _denied(conn, sql.SQL("EXPLAIN ANALYZE SELECT * FROM {}").format(ident)), rel
            assert _denied(conn, sql.SQL("DELETE FROM {}").format(ident)), rel
            assert _denied(conn, sql.SQL("TRUNCATE {}").format(ident)), rel


@pytest.mark.parametrize("who", READERS)
def test_copy_joins_and_explain_of_the_views_show_nothing_of_another_tenant(world, who):
    ents, parks = world["scopes"][who]
    others = _others_markers(world, who)
    with psycopg.connect(world["url"]) as owner, connect_as(world, who) as conn:
        for view in _reader_views(owner):
            want = expected_rows(owner, view, ents, parks, who == "bureau")
            with conn.cursor().copy(sql.SQL("COPY (SELECT v::text FROM reader.{} v) TO STDOUT").format(
                    sql.Identifier(view))) as copy:
                got = sorted(bytes(b).decode() for b in copy)
            assert [g.rstrip("\n") for g in got] == [w.replace("\\", "\\\\") for w in want], view
            plan = "\n".join(r[0] for r in conn.execute(sql.SQL(
                "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF) SELECT * FROM reader.{}").format(
                sql.Identifier(view))).fetchall())
            assert not [m for m in others if m in plan], view
        # joins across the views: every row reached belongs to the scope
        got = conn.execute("""SELECT DISTINCT e.code FROM reader.reading r JOIN reader.point p USING (point_id)
                              JOIN reader.device d USING (device_id) JOIN reader.site s USING (site_id)
                              JOIN reader.enterprise e USING (enterprise_id)""").fetchall()
        assert sorted(c for (c,) in got) == sorted(c for c, e in world["ents"].items() if e in ents)
        # a join of a view with itself on something other than the key
        n = conn.execute("SELECT count(*) FROM reader.reading a JOIN reader.reading b ON a.ts = b.ts").fetchone()[0]
        assert n == 8 * len(ents) ** 2


@pytest.mark.parametrize("who", READERS)
def test_custom_settings_do_not_change_the_scope(world, who):
    ents, parks = world["scopes"][who]
    other = next(c for c, e in world["ents"].items() if e not in ents) if who != "bureau" else "EA1"
    with psycopg.connect(world["url"]) as owner, connect_as(world, who) as conn:
        want = expected_rows(owner, "enterprise", ents, parks, who == "bureau")
        for setting in ("greengauge.enterprise", "greengauge.park", "greengauge.tenant", "app.enterprise_id",
                        "greengauge.bureau", "request.jwt.claims"):
            for value in (other, str(world["ents"][other]), "true", "*"):
                conn.execute("SELECT set_config(%s, %s, false)", (setting, value))
                got = sorted(r[0] for r in conn.execute("SELECT v::text FROM reader.enterprise v").fetchall())
                assert got == want, (setting, value)
        conn.execute("SET search_path = public, reader")
        assert sorted(r[0] for r in conn.execute("SELECT v::text FROM enterprise v").fetchall()) == want


@pytest.mark.parametrize("who", READERS)
def test_no_function_can_be_made_and_a_leaky_one_sees_only_the_scope(world, who):
    ents, parks = world["scopes"][who]
    others = _others_markers(world, who)
    with psycopg.connect(world["url"], autocommit=True) as owner, connect_as(world, who) as conn:
        schemas = [r[0] for r in owner.execute("SELECT nspname FROM pg_namespace ORDER BY 1").fetchall()]
        for nsp in schemas + ["pg_temp"]:
            assert _denied(conn, sql.SQL("CREATE FUNCTION {}.leak(text) RETURNS boolean LANGUAGE sql AS 'SELECT true'")
                           .format(sql.Identifier(nsp))), nsp
        assert _denied(conn, "CREATE SCHEMA mine")
        assert _denied(conn, "CREATE TEMP TABLE mine (x int)")
        for nsp in schemas:
            assert not conn.execute("SELECT has_schema_privilege(%s, 'CREATE')", (nsp,)).fetchone()[0], nsp
        usable = {n for n in schemas if conn.execute("SELECT has_schema_privilege(%s, 'USAGE')", (n,)).fetchone()[0]}
        # its own schema and the system catalogs; TimescaleDB's schemas where present (USAGE to PUBLIC by design)
        assert usable - TIMESCALE_METADATA - {"_timescaledb_internal", "_timescaledb_functions"} \
            == {"reader", "pg_catalog", "information_schema"}
        # a leaky function someone else made and granted: it runs after the views' filter (security_barrier)
        owner.execute("CREATE SCHEMA leaky")
        owner.execute("""CREATE FUNCTION leaky.peek(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
                         $$ BEGIN RAISE NOTICE 'peek: %', $1; RETURN true; END $$""")
        owner.execute(sql.SQL("GRANT USAGE ON SCHEMA leaky TO {r}; GRANT EXECUTE ON FUNCTION leaky.peek(text) TO {r}")
                      .format(r=sql.Identifier(world["readers"][who].name)))
        seen: list[str] = []
        conn.add_notice_handler(lambda d: seen.append(d.message_primary or ""))
        for view in _reader_views(owner):
            want = expected_rows(owner, view, ents, parks, who == "bureau")
            seen.clear()
            got = conn.execute(sql.SQL("SELECT v::text FROM reader.{} v WHERE leaky.peek(v::text)").format(
                sql.Identifier(view))).fetchall()
            assert sorted(r[0] for r in got) == want
            assert sorted(s.removeprefix("peek: ") for s in seen) == want, view
            # per column too: a leaky qual on one column is not pushed below the filter either
            col = owner.execute("""SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1""",
                                (f"reader.{view}",)).fetchone()[0]
            seen.clear()
            conn.execute(sql.SQL("SELECT 1 FROM reader.{} v WHERE leaky.peek(v.{}::text)").format(
                sql.Identifier(view), sql.Identifier(col))).fetchall()
            assert len(seen) == len(want), view
            # an error-raising expression only reaches the scope's rows (no error from another tenant's)
            for m in others:
                # (not 1 / 0: the planner folds that constant and fails whatever the rows)
                conn.execute(sql.SQL("SELECT 1 FROM reader.{v} v WHERE CASE WHEN strpos(v::text, {m}) > 0 "
                                     "THEN 1 / (strpos(v::text, {m}) - strpos(v::text, {m})) ELSE 1 END = 1").format(
                    v=sql.Identifier(view), m=sql.Literal(m))).fetchall()


@pytest.mark.parametrize("who", READERS)
def test_statistics_roles_sequences_and_writes(world, who):
    others = _others_markers(world, who)
    with psycopg.connect(world["url"]) as owner, connect_as(world, who) as conn:
        assert owner.execute("SELECT count(*) FROM pg_stats WHERE schemaname = 'public'").fetchone()[0] > 0
        stats = conn.execute("SELECT s::text FROM pg_stats s WHERE schemaname <> 'pg_catalog'").fetchall()
        assert not [s for (s,) in stats if any(m in s for m in others)]
        assert conn.execute("SELECT count(*) FROM pg_stats WHERE schemaname IN ('public', 'reader')").fetchone()[0] == 0
        assert _denied(conn, "SELECT * FROM pg_statistic")
        assert conn.execute("SELECT count(*) FROM pg_stats_ext WHERE schemaname = 'public'").fetchone()[0] == 0
        # SET ROLE: only to roles it is a member of, and those see nothing (narrower, never wider)
        me = world["readers"][who].name
        mine = {r[0] for r in owner.execute(
            "SELECT rolname FROM pg_roles WHERE pg_has_role(%s, oid, 'MEMBER')", (me,)).fetchall()}
        for (role,) in owner.execute("SELECT rolname FROM pg_roles ORDER BY 1").fetchall():
            if role in mine:
                continue
            # (roles are cluster-wide: another test run may drop one meanwhile, which is refused too)
            gone = (psycopg.errors.InvalidParameterValue,)
            assert _denied(conn, sql.SQL("SET ROLE {}").format(sql.Identifier(role)), also=gone), role
            assert _denied(conn, sql.SQL("SET SESSION AUTHORIZATION {}").format(sql.Identifier(role)), also=gone), role
        # nor can it hand its scope to a group every reader inherits from, nor take a group or a role
        p = tenancy.role_prefix(owner)
        for grant in (f'GRANT "{me}" TO "{p}reader"', f'GRANT "{p}writer" TO "{me}"', f'GRANT "{p}flows" TO "{me}"',
                      f'ALTER ROLE "{me}" CREATEROLE', f'ALTER ROLE "{me}" BYPASSRLS', f'CREATE ROLE "{p}mine"'):
            assert _denied(conn, grant), grant
        for role in mine - {me}:
            conn.rollback()  # so the block below is a transaction of its own (SET LOCAL ends with it)
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                for view in _reader_views(owner):
                    try:
                        with conn.transaction():  # a savepoint: a group role may not even have SELECT
                            n = conn.execute(sql.SQL("SELECT count(*) FROM reader.{}").format(
                                sql.Identifier(view))).fetchone()[0]
                    except psycopg.errors.InsufficientPrivilege:
                        continue
                    assert n == len(expected_rows(owner, view, [], [], False)), (role, view)
        # sequences: none for a reader; a writer only those of the tables it enters
        entry = {r[0] for r in owner.execute("SELECT relname FROM tenancy_table WHERE class = 'entry'").fetchall()}
        for (seq, table) in owner.execute(
                """SELECT s.oid, t.relname FROM pg_class s
                   JOIN pg_depend d ON d.objid = s.oid AND d.deptype = 'a' JOIN pg_class t ON t.oid = d.refobjid
                   WHERE s.relkind = 'S'""").fetchall():
            allowed = who == "writer" and table in entry
            # by oid: no schema lookup (the name in public would fail on the schema alone)
            assert _denied(conn, "SELECT nextval(%s::oid::regclass)", (seq,)) != allowed, table
            assert _denied(conn, "SELECT setval(%s::oid::regclass, 1)", (seq,)), table
        # no writes through any view (a writer: only the entry views, checked below)
        for view in _reader_views(owner):
            if who == "writer" and view in entry:
                continue
            ident = sql.Identifier("reader", view)
            assert _denied(conn, sql.SQL("DELETE FROM {}").format(ident), also=NOT_UPDATABLE), view
            assert _denied(conn, sql.SQL("UPDATE {} SET {} = {}").format(
                ident, sql.Identifier(_first_col(owner, view)), sql.Identifier(_first_col(owner, view))),
                also=NOT_UPDATABLE), view
            assert _denied(conn, sql.SQL("INSERT INTO {} SELECT * FROM {} LIMIT 1").format(ident, ident),
                           also=NOT_UPDATABLE), view
        # functions of the application: none executable
        for (fn,) in owner.execute(
                """SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname IN ('public', 'reader')""").fetchall():
            assert not conn.execute("SELECT has_function_privilege(%s::oid, 'EXECUTE')", (fn,)).fetchone()[0], fn
        assert not conn.execute("SELECT has_schema_privilege('public', 'USAGE')").fetchone()[0]
        # the server's file and process functions (PostgreSQL 15 grants them to no one by default)
        for fn in ("pg_read_file(text)", "pg_read_binary_file(text)", "pg_ls_dir(text)", "pg_stat_file(text)",
                   "lo_import(text)", "lo_export(oid, text)", "pg_reload_conf()", "pg_rotate_logfile()"):
            assert not conn.execute("SELECT has_function_privilege(%s, 'EXECUTE')", (fn,)).fetchone()[0], fn
        assert _denied(conn, "SELECT public.tenancy_refresh()")
        assert _denied(conn, "SELECT public.greengauge_reading_retention('1 day')")


def _first_col(owner, view):
    return owner.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1",
                         (f"reader.{view}",)).fetchone()[0]


def test_public_has_no_create_no_connect_and_no_execute(world):
    with psycopg.connect(world["url"]) as owner:
        # PUBLIC (grantee 0 in aclexplode) holds nothing: not CREATE/USAGE on schema public, not
        # CONNECT/TEMP on the database, not EXECUTE on a function, nothing on a relation
        leaks = owner.execute(
            """SELECT kind, name FROM (
                   SELECT 'relation' AS kind, c.oid::regclass::text AS name, c.relacl AS acl FROM pg_class c
                   WHERE c.relnamespace IN ('public'::regnamespace, 'reader'::regnamespace)
                   UNION ALL
                   SELECT 'function', p.oid::regprocedure::text,
                          coalesce(p.proacl, acldefault('f', p.proowner)) FROM pg_proc p
                   WHERE p.pronamespace IN ('public'::regnamespace, 'reader'::regnamespace)
                   UNION ALL
                   SELECT 'schema', n.nspname, n.nspacl FROM pg_namespace n WHERE n.nspname IN ('public', 'reader')
                   UNION ALL
                   SELECT 'database', d.datname, coalesce(d.datacl, acldefault('d', d.datdba)) FROM pg_database d
                   WHERE d.datname = current_database()) x
               CROSS JOIN LATERAL aclexplode(x.acl) a WHERE a.grantee = 0""").fetchall()
        assert leaks == []


def test_the_api_service_role_sees_nothing_until_set_role_and_then_only_that_tenant(world):
    with psycopg.connect(world["url"]) as owner:
        api = tenancy.service_role(owner)
        owner.commit()
        ea1 = world["ents"]["EA1"]
        with psycopg.connect(tenancy.reader_url(world["url"], tenancy.Reader(api, "bureau", None, False))) as conn:
            for view in _reader_views(owner):  # NOINHERIT: its memberships give it nothing by themselves
                assert _denied(conn, sql.SQL("SELECT count(*) FROM reader.{}").format(sql.Identifier(view))), view
            with tenancy.tenant_transaction(conn, world["readers"]["enterprise"].name):
                assert conn.execute("SELECT enterprise_id FROM enterprise").fetchall() == [(ea1,)]
                # inside the request, RESET ROLE goes back to the service role: still nothing
                conn.execute("RESET ROLE")
                assert _denied(conn, "SELECT count(*) FROM reader.enterprise")
            with tenancy.tenant_transaction(conn, world["readers"]["bureau"].name):
                assert conn.execute("SELECT count(*) FROM enterprise").fetchone()[0] == 4
            assert conn.execute("SELECT current_user").fetchone()[0] == api  # the role ended with the transaction
            assert _denied(conn, "SELECT * FROM public.enterprise")


def test_a_revoked_reader_sees_nothing_at_once_and_cannot_log_in_again(world):
    r = world["readers"]["park"]
    with connect_as(world, "park", autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM reader.enterprise").fetchone()[0] == 2
        with psycopg.connect(world["url"], autocommit=True) as owner:
            tenancy.revoke_reader(owner, r.name)
            assert r.name not in [x.name for x in tenancy.list_readers(owner)]
        # the session still open: its role is gone, so are its memberships
        assert _denied(conn, "SELECT count(*) FROM reader.enterprise")
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        connect_as(world, "park")


# -- writers, the collector and the flows through their real code paths ----------------------------


def test_a_writer_enters_data_for_its_own_enterprise_only_through_the_store_code(world):
    from datetime import date, datetime, timezone

    from store.events import record_replacement
    from store.facts import FactsError, import_facts, parse_facts_csv
    from metrics.ledger import Serial
    from store.ledger import CertificateEntry, TradeEntry, add_entries

    ea1, eb1 = world["ents"]["EA1"], world["ents"]["EB1"]
    with connect_as(world, "writer") as conn, psycopg.connect(world["url"]) as owner:
        # search_path = reader (the login's setting): the store code runs unchanged on the views
        assert conn.execute("SHOW search_path").fetchone()[0] == "reader"
        add_entries(conn, [TradeEntry("EA1", "T-new", date(2025, 4, 1), 2_000_000)])
        with pytest.raises(ValueError, match="no enterprise 'EB1'"):  # another tenant's does not exist for it
            add_entries(conn, [TradeEntry("EB1", "T-evil", date(2025, 4, 1), 2_000_000)])
        # a serial counts once, ever (R1), even against another enterprise's certificate; the error
        # does not say whose it is (the clash is looked up through the writer's own view)
        serial = (Serial("GECEB1", 5, 5), Serial("GECEB1", 6, 5))  # inside EB1's GECEB1 00001..00010
        with pytest.raises(ValueError, match=r"a serial counts once, ever$") as clash:
            add_entries(conn, [CertificateEntry("EA1", *serial, date(2025, 1, 1), date(2025, 3, 1))])
        assert "EB1" not in str(clash.value).split("rejected")[1]
        header = "enterprise,record,kind,date,level,scope,until,first_time,amount,reference,project,pv_w,storage_power_w,storage_energy_wh\n"
        ok = header + "EA1,fact,green_factory,2025-02-01,national,,,,,,,,,\nEA1,pv_project,,2025-03-01,,,,,,,roof-9,800000,,\n"
        assert import_facts(conn, parse_facts_csv(ok)).facts == 1
        assert import_facts(conn, parse_facts_csv(ok)).facts == 1  # ON CONFLICT DO UPDATE through the view
        with pytest.raises(FactsError, match="no enterprise 'EB1'"):
            import_facts(conn, parse_facts_csv(header + "EB1,fact,green_factory,2025-02-01,national,,,,,,,,,\n"))
        record_replacement(conn, "EA1.main.grid", datetime(2025, 3, 1, 0, 30, tzinfo=timezone.utc), 5, 0, "swap")
        conn.commit()
        assert owner.execute("SELECT last_reading_ts FROM rollup_watermark WHERE point_id = "
                             "(SELECT point_id FROM point WHERE name = 'EA1.main.grid')").fetchone()[0] \
            == datetime(2025, 3, 1, 0, 30, tzinfo=timezone.utc)  # lowered in the same transaction
        with pytest.raises(ValueError, match="no point 'EB1.main.grid'"):
            record_replacement(conn, "EB1.main.grid", datetime(2025, 3, 1, 0, 30, tzinfo=timezone.utc), 5, 0, "x")
        conn.rollback()
        # by hand: a row for another enterprise is refused by the view's check option
        for q, args in [
            ("INSERT INTO green_trade (enterprise_id, reference, settled_on, settled_wh) VALUES (%s, 'T-x', '2025-04-01', 1)", (eb1,)),
            ("INSERT INTO production (enterprise_id, product, period_start, period_end, quantity, unit) "
             "VALUES (%s, 'shoes', '2025-02-01', '2025-02-28', 1, '万双')", (eb1,)),
            ("UPDATE green_trade SET enterprise_id = %s WHERE reference = 'T-new'", (eb1,)),
        ]:
            with pytest.raises(psycopg.errors.WithCheckOptionViolation, match="check option"):
                with conn.transaction():
                    conn.execute(q, args)
        # nor can its certificate hang on another enterprise's trade, whose id it may guess: the same
        # refusal, with no key shown, as for an id that does not exist
        eb1_trade = owner.execute("SELECT trade_id FROM green_trade WHERE enterprise_id = %s", (eb1,)).fetchone()[0]
        for trade_id in (eb1_trade, 10**9):
            with pytest.raises(psycopg.errors.ForeignKeyViolation) as fk:
                with conn.transaction():
                    conn.execute("""INSERT INTO certificate (enterprise_id, serial_prefix, serial_first, serial_last,
                                        serial_digits, production_month, used_on, trade_id)
                                    VALUES (%s, 'GECX', 1, 1, 3, '2025-01-01', '2025-03-01', %s)""", (ea1, trade_id))
            assert str(trade_id) not in str(fk.value) + (fk.value.diag.message_detail or "")
        # another's rows cannot be reached to update; nothing can be deleted
        assert conn.execute("UPDATE green_trade SET settled_wh = 1 WHERE enterprise_id = %s", (eb1,)).rowcount == 0
        conn.execute("INSERT INTO production (enterprise_id, product, period_start, period_end, quantity, unit) "
                     "VALUES (%s, 'shoes', '2025-02-01', '2025-02-28', 1, '万双')", (ea1,))
        assert _denied(conn, "DELETE FROM green_trade WHERE reference = 'T-new'")
        assert _denied(conn, "INSERT INTO product_reference (product, unit) VALUES ('x', 't')")
        assert _denied(conn, "INSERT INTO public.green_trade (enterprise_id, reference, settled_on, settled_wh) "
                             "VALUES (%s, 'T-y', '2025-04-01', 1)", (ea1,))
        conn.commit()
        assert owner.execute("SELECT count(*) FROM green_trade WHERE enterprise_id = %s", (eb1,)).fetchone()[0] == 1
        assert owner.execute("SELECT count(*) FROM production WHERE enterprise_id = %s", (ea1,)).fetchone()[0] == 2


def test_the_bureau_cannot_be_a_writer_and_a_scope_must_be_one(world):
    with psycopg.connect(world["url"], autocommit=True) as owner:
        with pytest.raises(tenancy.TenancyError, match="cannot be a writer"):
            tenancy.add_reader(owner, bureau=True, writer=True)
        with pytest.raises(tenancy.TenancyError, match="exactly one scope"):
            tenancy.add_reader(owner, enterprise="EA1", park="PA")
        with pytest.raises(tenancy.TenancyError, match=r"enterprise 'nope' does not exist \(known: EA1, EA2, EB1, EB2\)"):
            tenancy.add_reader(owner, enterprise="nope")
        with pytest.raises(tenancy.TenancyError, match="job role"):
            tenancy.add_reader(owner, park="PA", name="flows")


def _site_for(port):
    from model.site import SiteConfig

    return SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": "grid", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port,
                     "poll_interval_s": 0.2, "timeout_s": 0.5, "points": [{"quantity": "energy_import"}]}],
    })


def test_the_collector_role_runs_the_real_collector_and_can_do_nothing_else(db_url):
    import asyncio

    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    from collectors.clock import WallClock
    from collectors.health import HealthRecorder
    from collectors.run import collect
    from store.sites import apply_site
    from tests.conftest import free_port

    port = free_port()
    site = _site_for(port)
    with psycopg.connect(db_url, autocommit=True) as owner:
        ids = apply_site(owner, site)
        name, password = tenancy.add_job_login(owner, "collector", "collector_acme")
    url = tenancy.reader_url(db_url, tenancy.Reader(name, "bureau", None, False, password))

    async def main():
        server = ModbusTcpServer([SimDevice(id=1, simdata=[SimData(0, count=18, values=7,
                                                                   datatype=DataType.REGISTERS)])],
                                 address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        stop = asyncio.Event()
        # device_ids=None: the collector looks its device ids up itself, as this role
        task = asyncio.create_task(collect(site, ids, url, WallClock(), stop, flush_interval_s=0.1,
                                           health_interval_s=0.1))
        await asyncio.sleep(1.0)
        stop.set()
        writer = await task
        await server.shutdown()
        h = HealthRecorder(lambda: psycopg.connect(url), {"grid": None})
        for _ in range(2):  # the second time the finding's count is added to (ON CONFLICT DO UPDATE)
            h.finding("device_error", "grid", "refused", device="grid")
            await h.flush()
        return writer

    writer = asyncio.run(main())
    assert writer.written > 0 and writer.rejected == 0 and writer.spooled == 0
    with psycopg.connect(db_url) as owner:
        assert owner.execute("SELECT count(*) FROM reading").fetchone()[0] == writer.written
        assert owner.execute("SELECT status FROM device_health").fetchone()[0] == "ok"
        assert owner.execute("SELECT count FROM collector_finding WHERE kind = 'device_error'").fetchone()[0] == 2
    with psycopg.connect(url) as conn:
        assert _denied(conn, "SELECT value FROM reading")
        assert _denied(conn, "SELECT * FROM device")
        assert _denied(conn, "UPDATE reading SET value = 0")
        assert _denied(conn, "DELETE FROM reading")
        assert _denied(conn, "INSERT INTO green_trade (enterprise_id, reference, settled_on, settled_wh) "
                             "VALUES (1, 'x', '2025-01-01', 1)")
        assert _denied(conn, "INSERT INTO dq_finding (kind, device_id, opened_at, detail) VALUES ('gap', 1, now(), 'x')")
        assert _denied(conn, "SELECT * FROM reader.reading")
        assert _denied(conn, "CREATE TABLE public.mine (x int)")


def test_the_flows_role_runs_rollup_metrics_quality_and_eligibility(db_url):
    from datetime import timedelta

    from flows.eligibility import evaluate
    from flows.metrics import enterprise_metrics
    from flows.quality import check
    from flows.rollup import rollup
    from store.results import enterprises
    from tests.flows.conftest import make_sim_day

    with psycopg.connect(db_url) as owner:
        sd = make_sim_day(owner)
        name, password = tenancy.add_job_login(owner, "flows", "flows_main")
        (e,) = enterprises(owner)
    url = tenancy.reader_url(db_url, tenancy.Reader(name, "bureau", None, False, password))
    as_of = sd.end + timedelta(minutes=30)
    rollup(url)
    assert enterprise_metrics(url, e, as_of) is not None
    check(url, as_of)
    assert evaluate(url, e, 2025, as_of)
    with psycopg.connect(db_url) as owner:
        for table in ("interval_energy", "energy_hourly", "energy_daily", "daily_balance", "green_share_ytd",
                      "eligibility_decision"):
            assert owner.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0] > 0, table
    with psycopg.connect(url) as conn:  # it reads raw data and never writes it
        assert conn.execute("SELECT count(*) FROM reading").fetchone()[0] > 0
        for q in ("DELETE FROM reading", "UPDATE point SET name = name", "INSERT INTO green_trade (enterprise_id, "
                  "reference, settled_on, settled_wh) VALUES (1, 'x', '2025-01-01', 1)", "DELETE FROM tenant_scope",
                  "SELECT * FROM tenant_scope", "SELECT * FROM reader.reading"):
            assert _denied(conn, q), q


def test_row_level_security_is_on_every_plain_table_and_lets_only_the_jobs_through(world):
    with psycopg.connect(world["url"], autocommit=True) as owner:
        hypertables = set()
        if owner.execute("SELECT to_regclass('_timescaledb_catalog.hypertable')").fetchone()[0]:
            hypertables = {r[0] for r in owner.execute(
                "SELECT table_name FROM _timescaledb_catalog.hypertable WHERE schema_name = 'public'").fetchall()}
        off = {r[0] for r in owner.execute("""SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace
                                              AND relkind IN ('r', 'p') AND NOT relrowsecurity""").fetchall()}
        assert off == hypertables  # none on plain PostgreSQL; on TimescaleDB the hypertables only
        # were a base table granted to a reader by mistake, it would still see no row
        r = world["readers"]["enterprise"].name
        owner.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {r}; GRANT SELECT ON public.enterprise, public.reading TO {r}")
                      .format(r=sql.Identifier(r)))
        with connect_as(world, "enterprise") as conn:
            assert conn.execute("SELECT count(*) FROM public.enterprise").fetchone()[0] == 0
            if "reading" not in hypertables:
                assert conn.execute("SELECT count(*) FROM public.reading").fetchone()[0] == 0
        owner.execute(sql.SQL("REVOKE USAGE ON SCHEMA public FROM {r}; REVOKE SELECT ON public.enterprise, "
                              "public.reading FROM {r}").format(r=sql.Identifier(r)))


@pytest.mark.parametrize("base, want", [
    ("postgresql://owner:pw@db.example:5433/gg", "postgresql://r:s%2F3t@db.example:5433/gg"),
    ("host=127.0.0.1 port=5432 dbname=gg user=postgres sslmode=require",
     "postgresql://r:s%2F3t@127.0.0.1:5432/gg?sslmode=require"),
    ("postgresql:///gg?host=/var/run/postgresql", "postgresql://r:s%2F3t@%2Fvar%2Frun%2Fpostgresql/gg"),
    ("postgresql://[::1]/gg", "postgresql://r:s%2F3t@[::1]/gg"),
])
def test_reader_url_keeps_the_server_and_replaces_the_login(base, want):
    url = tenancy.reader_url(base, tenancy.Reader("r", "park", "PA", False, "s/3t"))
    assert url == want
    assert psycopg.conninfo.conninfo_to_dict(url)["password"] == "s/3t"
