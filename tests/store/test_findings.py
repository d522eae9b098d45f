"""The one findings table: the migration that moves both old tables into it, and the views of their names."""

from datetime import datetime, timedelta, timezone

import psycopg

from model.findings import Finding, FindingKind, Subject
from store import findings as F
from store.health import add_findings, findings as latest
from store.migrate import migrations, upgrade
from store.sites import apply_site
from tests.collectors.test_writer import SITE

T0 = datetime(2025, 6, 21, tzinfo=timezone.utc)


def test_the_migration_moves_both_old_tables_into_finding_and_leaves_views_of_their_names(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:  # the schema as it was before 0700
        conn.execute("""CREATE TABLE schema_migration (version text PRIMARY KEY, name text NOT NULL,
                        checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())""")
        for m in migrations():
            if m.version >= "0700":
                break
            with conn.transaction():
                conn.execute(m.sql)
                conn.execute("INSERT INTO schema_migration VALUES (%s, %s, %s)", (m.version, m.name, m.checksum))
        pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
        did = conn.execute("SELECT device_id FROM device").fetchone()[0]
        # what main's collector and flows wrote before the change
        conn.execute("""INSERT INTO collector_finding VALUES ('unknown_topic', 'plant/x', NULL, %s, %s, 7, 'no subscription'),
                                                             ('device_error', 'grid', %s, %s, %s, 2, '2 of 9 refused')""",
                     (T0, T0 + timedelta(hours=1), did, T0, T0))
        conn.execute("""INSERT INTO dq_finding (finding_id, kind, device_id, point_id, opened_at, closed_at, detail)
                        VALUES (41, 'gap', %s, %s, %s, %s, 'no reading from a to b'),
                               (42, 'stale_device', %s, NULL, %s, NULL, 'device grid: no reading')""",
                     (did, pid, T0, T0 + timedelta(minutes=5), did, T0))
        upgrade(conn)
        # one table holds them all, with their ids, counts and sentences (as data)
        assert conn.execute("SELECT origin, kind, count, data->>'text' FROM finding ORDER BY finding_id").fetchall() == [
            ("quality", "gap", 1, "no reading from a to b"), ("quality", "stale_device", 1, "device grid: no reading"),
            ("collector", "unknown_topic", 7, "no subscription"), ("collector", "device_error", 2, "2 of 9 refused")]
        assert conn.execute("SELECT min(finding_id) FROM finding WHERE origin = 'collector'").fetchone() == (43,)
        # readers of the old names see the same columns and rows
        assert conn.execute("SELECT kind, source, device_id, first_seen, last_seen, count, detail FROM collector_finding "
                            "ORDER BY kind").fetchall() == [
            ("device_error", "grid", did, T0, T0, 2, "2 of 9 refused"),
            ("unknown_topic", "plant/x", None, T0, T0 + timedelta(hours=1), 7, "no subscription")]
        assert conn.execute("SELECT finding_id, kind, device_id, point_id, opened_at, closed_at, detail FROM dq_finding "
                            "ORDER BY finding_id").fetchall() == [
            (41, "gap", did, pid, T0, T0 + timedelta(minutes=5), "no reading from a to b"),
            (42, "stale_device", did, None, T0, None, "device grid: no reading")]
        # and the code writes on: the open stale finding is still the one open, a new event lands beside
        assert not F.open_state(conn, "stale_device", did, None, T0 + timedelta(hours=1), {"polls": 3})
        assert F.record_event(conn, "spike", did, pid, T0, T0 + timedelta(minutes=1), {"readings": 2})
        assert conn.execute("SELECT detail FROM dq_finding WHERE kind = 'spike'").fetchone() == ("spike: readings 2",)


def test_collector_and_quality_findings_are_one_type_in_one_table(conn):
    pid = apply_site(conn, SITE)["acme.main.grid.energy_import"]
    did = conn.execute("SELECT device_id FROM device").fetchone()[0]
    add_findings(conn, [Finding(FindingKind.SPOOL_CORRUPT, Subject(source="/s/corrupt/1.seg"), T0,
                                data={"readings": 10, "reason": "checksum mismatch"}, count=10, last_seen=T0)])
    add_findings(conn, [Finding(FindingKind.SPOOL_CORRUPT, Subject(source="/s/corrupt/1.seg"), T0 + timedelta(1),
                                data={"readings": 10, "reason": "checksum mismatch"}, count=5,
                                last_seen=T0 + timedelta(1))])  # counted on, one row per (kind, source)
    F.record_event(conn, "gap", did, pid, T0, T0 + timedelta(hours=1), {"from": "a", "to": "b"})
    conn.commit()
    got = {str(f.kind): f for f in latest(conn)}
    assert set(got) == {"spool_corrupt", "gap"}
    assert got["spool_corrupt"].count == 15 and got["spool_corrupt"].subject.source == "/s/corrupt/1.seg"
    assert got["gap"].subject == Subject(did, pid, None) and got["gap"].closed_at == T0 + timedelta(hours=1)
    assert got["gap"].data["point"] == "acme.main.grid.energy_import"  # its subject's name, for the edge
    assert got["gap"].kind is FindingKind.GAP and got["gap"].origin == "quality"
    assert latest(conn, "acme") == [got["gap"]]  # tied to no device: shown only without an enterprise
