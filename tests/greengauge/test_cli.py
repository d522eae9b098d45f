"""The command line against a real database."""

from pathlib import Path

from typer.testing import CliRunner

from greengauge.cli import app
from greengauge.demo import DEMO_SITE

runner = CliRunner()


def test_db_upgrade_then_site_apply_then_report(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 0, r.output
    import psycopg

    from store.db import storage_mode

    with psycopg.connect(db_url) as c:
        mode = storage_mode(c)  # the mode this server gives: postgresql here, timescaledb where preloaded
    assert f"schema up to date (0 applied now); storage mode: {mode}" in r.output
    r = runner.invoke(app, ["site", "apply", str(DEMO_SITE)])
    assert r.exit_code == 0, r.output
    assert "applied jj-shoes/main — 4 devices, 13 points" in r.output
    r = runner.invoke(app, ["report", "balance", "--enterprise", "jj-shoes", "--day", "2025-06-21"])
    assert r.exit_code == 0, r.output
    assert "no consumption in the period" in r.output


def test_errors_are_one_clear_line(monkeypatch, tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text(Path(str(DEMO_SITE)).read_text().replace("generic-bess-meter", "nope"))
    r = runner.invoke(app, ["site", "check", str(bad)])
    assert r.exit_code == 2
    assert "site.yaml line 38: devices[2].profile: profile 'nope' does not exist" in r.output
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", "postgresql://127.0.0.1:1/nothing")
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 2
    assert "cannot reach the database at postgresql://127.0.0.1:1/nothing" in r.output
    r = runner.invoke(app, ["report", "balance", "--enterprise", "x"])
    assert r.exit_code == 2
