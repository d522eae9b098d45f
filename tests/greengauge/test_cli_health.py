"""`greengauge health …`, the containers' healthchecks, against the real PostgreSQL."""

from datetime import datetime, timezone

import psycopg
from typer.testing import CliRunner

from greengauge.cli import app
from greengauge.demo import DEMO_SITE
from model.site import load_site
from store.sites import apply_site

runner = CliRunner()


def test_health_db_says_whether_the_schema_is_migrated(empty_db_url, monkeypatch):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", empty_db_url)
    r = runner.invoke(app, ["health", "db"])
    assert r.exit_code == 1 and "not migrated: run `greengauge db upgrade`" in r.output
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    r = runner.invoke(app, ["health", "db"])
    assert r.exit_code == 0 and "schema up to date" in r.output


def test_health_db_with_no_database_is_one_line(monkeypatch):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", "postgresql://127.0.0.1:1/nowhere")
    r = runner.invoke(app, ["health", "db"])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "database unreachable" in r.output


def test_health_collector_names_the_devices_not_collected(db_url, monkeypatch):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    with psycopg.connect(db_url) as conn:
        apply_site(conn, load_site(str(DEMO_SITE)))
    r = runner.invoke(app, ["health", "collector", str(DEMO_SITE)])
    assert r.exit_code == 1 and "4 of 4 device(s) not collected" in r.output
    now = datetime.now(timezone.utc)
    with psycopg.connect(db_url) as conn:
        conn.execute("""INSERT INTO device_health (device_id, status, since, last_attempt)
                        SELECT device_id, 'ok', %s, %s FROM device""", (now, now))
    r = runner.invoke(app, ["health", "collector", str(DEMO_SITE), "--max-age", "60"])
    assert r.exit_code == 0 and "4 device(s) collected" in r.output, r.output
    with psycopg.connect(db_url) as conn:  # the collector stopped (SIGTERM): not being collected
        conn.execute("UPDATE device_health SET stopped_at = %s", (now,))
    r = runner.invoke(app, ["health", "collector", str(DEMO_SITE), "--max-age", "60"])
    assert r.exit_code == 1 and "4 of 4 device(s) not collected" in r.output
