"""``greengauge status --enterprise``: that enterprise's devices and findings, no one else's."""

from __future__ import annotations

import psycopg
from typer.testing import CliRunner

from greengauge.cli import app
from tests.store.tenancy_seed import seed


def test_status_of_one_enterprise_shows_none_of_another_enterprises_findings(db_url, monkeypatch):
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed(conn)  # each enterprise has a finding on its meter; one finding is tied to no device
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    res = CliRunner().invoke(app, ["status", "--enterprise", "EA1"])
    assert res.exit_code == 0, res.output
    assert "EA1/main/meter-EA1" in res.output and "secret-EA1" in res.output
    for other in ("EA2", "EB1", "EB2", "ORPHAN"):
        assert f"secret-{other}" not in res.output, other
    everything = CliRunner().invoke(app, ["status"])
    assert all(f"secret-{c}" in everything.output for c in ("EA1", "EA2", "EB1", "EB2", "ORPHAN"))
