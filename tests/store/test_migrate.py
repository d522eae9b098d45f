import psycopg
import pytest

from store.db import storage_mode
from store.migrate import MigrationError, migrations, upgrade

CATALOG = """
    SELECT table_name, column_name, data_type, is_nullable, column_default
    FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT tablename, indexname, indexdef, '', '' FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), '', ''
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    ORDER BY 1, 2, 3"""


def test_migrations_apply_on_empty_database_twice_with_no_change(empty_db_url):
    with psycopg.connect(empty_db_url) as conn:
        first = upgrade(conn)
        assert [m.version for m in first] == [m.version for m in migrations()]
        schema_after_first = conn.execute(CATALOG).fetchall()
        recorded = conn.execute("SELECT version, checksum, applied_at FROM schema_migration ORDER BY 1").fetchall()

        second = upgrade(conn)
        assert second == []
        assert conn.execute(CATALOG).fetchall() == schema_after_first
        assert conn.execute("SELECT version, checksum, applied_at FROM schema_migration ORDER BY 1").fetchall() == recorded
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"park", "enterprise", "site", "device", "point", "reading", "schema_migration"} <= tables
        # plain PostgreSQL here: TimescaleDB cannot be installed on these machines
        assert storage_mode(conn) == "postgresql"


def test_a_migration_edited_after_it_was_applied_is_refused(empty_db_url):
    with psycopg.connect(empty_db_url) as conn:
        upgrade(conn)
        conn.execute("UPDATE schema_migration SET checksum = 'edited' WHERE version = '0001'")
        with pytest.raises(MigrationError, match="0001_core.sql was changed after it was applied"):
            upgrade(conn)


def test_reading_constraints(conn):
    conn.execute("INSERT INTO enterprise (code, name) VALUES ('e', 'E')")
    conn.execute("INSERT INTO site (enterprise_id, code, name) SELECT enterprise_id, 's', 'S' FROM enterprise")
    conn.execute("""INSERT INTO device (site_id, name, profile, transport, poll_interval_s)
                    SELECT site_id, 'd', 'generic-3ph-meter', '{}', 60 FROM site""")
    conn.execute("""INSERT INTO point (device_id, name, quantity, kind, unit, role)
                    SELECT device_id, 'p', 'energy_import', 'counter', 'Wh', 'grid_import' FROM device""")
    conn.commit()
    # a reading without a value must be BAD (quality 2)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO reading (point_id, ts, value, quality) SELECT point_id, now(), NULL, 0 FROM point")
    conn.rollback()
    # a gauge cannot carry an energy role
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("""INSERT INTO point (device_id, name, quantity, kind, unit, role)
                        SELECT device_id, 'q', 'active_power', 'gauge', 'W', 'grid_import' FROM device""")
