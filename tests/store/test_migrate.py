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
        # the mode this server gives (plain PostgreSQL here; TimescaleDB where it is preloaded):
        # in TimescaleDB mode readings are a hypertable, in plain mode a table
        hyper = conn.execute("""SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'""").fetchone()[0]
        assert storage_mode(conn) == ("timescaledb" if hyper else "postgresql")


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


def test_a_compatible_edit_names_the_checksum_it_replaces(empty_db_url):
    # 0002 gained a guard (no CREATE EXTENSION unless timescaledb is preloaded); a database that ran
    # the old file must upgrade without complaint and record the new checksum
    (m,) = [m for m in migrations() if m.version == "0002"]
    (old,) = m.previous_checksums
    with psycopg.connect(empty_db_url) as conn:
        upgrade(conn)
        conn.execute("UPDATE schema_migration SET checksum = %s WHERE version = '0002'", (old,))
        assert upgrade(conn) == []
        assert conn.execute("SELECT checksum FROM schema_migration WHERE version = '0002'").fetchone()[0] == m.checksum


def test_db_upgrade_says_why_the_storage_mode_is_what_it_is(db_url):
    from store.migrate import timescale_status

    with psycopg.connect(db_url) as conn:
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        installed = storage_mode(conn) == "timescaledb"
        why = timescale_status(conn)
    if installed:
        assert "installed in this database" in why
    elif not available:
        assert why == "the timescaledb extension is not installed on this server"
    else:  # installed on the server but not preloaded (or not created): plain mode, and the reason
        assert "timescaledb is" in why


def test_a_session_killed_by_a_migration_surfaces_as_itself(empty_db_url, tmp_path, monkeypatch):
    # CREATE EXTENSION timescaledb on a server where it is installed but not preloaded raises FATAL and
    # closes the session; the advisory unlock in `finally` used to hide that behind "the connection is closed"
    import store.migrate as migrate

    (tmp_path / "0001_kill.sql").write_text("SELECT pg_terminate_backend(pg_backend_pid());")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    with psycopg.connect(empty_db_url) as conn:
        with pytest.raises(psycopg.OperationalError, match="terminat"):
            migrate.upgrade(conn)
