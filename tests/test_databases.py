"""The tests' own databases (tests/conftest.py): a copy of the session's template, upgraded, must be
the database `greengauge db upgrade` makes from nothing — the same tables, columns, views, functions,
rights, policies and rows, granted to this database's own roles — or every test that uses one
would test something a deployment never has."""

import psycopg

from store.migrate import upgrade
from store.tenancy import prefix_for
from store.db import database_name

# everything the migrations make, by name; role names stay as they are here and are made neutral below
SNAPSHOT = """
SELECT 'relation', c.oid::regclass::text, c.relkind::text,
       concat_ws(' ', c.relowner::regrole::text, c.relacl::text, c.reloptions::text, c.relrowsecurity, c.relforcerowsecurity)
FROM pg_class c WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                                              'pg_toast'::regnamespace)
UNION ALL
SELECT 'column', a.attrelid::regclass::text || '.' || a.attname, format_type(a.atttypid, a.atttypmod),
       concat_ws(' ', a.attnum, a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attacl::text)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_attrdef d ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum)
WHERE a.attnum > 0 AND NOT a.attisdropped
  AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)
UNION ALL
SELECT 'constraint', conrelid::regclass::text || '.' || conname, contype::text, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
UNION ALL
SELECT 'index', indexrelid::regclass::text, '', pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)
UNION ALL
SELECT 'view', c.oid::regclass::text, '', pg_get_viewdef(c.oid) FROM pg_class c
WHERE c.relkind IN ('v', 'm') AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
UNION ALL
SELECT 'function', p.oid::regprocedure::text, concat_ws(' ', p.proowner::regrole::text, p.proacl::text, p.proconfig::text),
       pg_get_functiondef(p.oid)
FROM pg_proc p WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
UNION ALL
SELECT 'trigger', tgrelid::regclass::text || '.' || tgname, '', pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'policy', polrelid::regclass::text || '.' || polname, polcmd::text,
       concat_ws(' ', polpermissive, polroles::regrole[]::text, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
FROM pg_policy
UNION ALL
SELECT 'schema', nspname, nspowner::regrole::text, nspacl::text FROM pg_namespace
UNION ALL
SELECT 'default acl', defaclrole::regrole::text, defaclnamespace::regnamespace::text || ' ' || defaclobjtype::text, defaclacl::text
FROM pg_default_acl
UNION ALL
SELECT 'extension', extname, extversion, '' FROM pg_extension
UNION ALL
SELECT 'database', 'this', datdba::regrole::text, coalesce(datacl, acldefault('d', datdba))::text FROM pg_database
WHERE datname = current_database()
UNION ALL
SELECT 'role', r.rolname, concat_ws(' ', r.rolcanlogin, r.rolinherit, r.rolsuper, r.rolcreaterole),
       coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                 WHERE m.member = r.oid), '')
FROM pg_roles r WHERE starts_with(r.rolname, 'gg_' || left(md5(current_database()), 8) || '_')
UNION ALL
SELECT 'migration', version, name, checksum FROM schema_migration
"""


def snapshot(url: str) -> list[tuple[str, ...]]:
    name = database_name(url)
    prefix = prefix_for(name)
    with psycopg.connect(url) as conn:
        rows = conn.execute(SNAPSHOT).fetchall()
        tables = [r[0] for r in conn.execute(
            "SELECT oid::regclass::text FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace")]
        rows += [("rows", t, "", repr(sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)))
                 for t in tables if t != "schema_migration"]  # (applied_at differs)
    return sorted(tuple(str(x).replace(prefix, "<P>").replace(name, "<DB>") for x in row) for row in rows)


def test_a_test_database_is_the_one_an_upgrade_from_nothing_makes(db_url, empty_db_url):
    with psycopg.connect(empty_db_url) as conn:
        upgrade(conn)
    copied, upgraded = snapshot(db_url), snapshot(empty_db_url)
    assert len(upgraded) > 1000  # (the snapshot sees the schema)
    assert [r for r in copied if r not in upgraded] == [] and [r for r in upgraded if r not in copied] == []
    with psycopg.connect(db_url) as conn:  # and it has the server's settings but one: no wait for the WAL flush
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
