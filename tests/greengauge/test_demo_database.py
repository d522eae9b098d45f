"""Where the demo finds PostgreSQL: the configured server, else a private cluster, else one line."""

import os
import tempfile
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

import greengauge.demo as demo
from store.cluster import PrivateCluster, find_pg_bin
from tests.conftest import free_port


def test_no_server_but_postgres_installed_starts_a_private_cluster(monkeypatch):
    if not find_pg_bin("initdb"):
        pytest.skip("PostgreSQL server programs not installed")
    monkeypatch.delenv("GREENGAUGE_DATABASE_URL", raising=False)
    # nothing listens on this port, as on a machine without a running server
    monkeypatch.setattr(demo, "DEFAULT_DATABASE_URL", f"postgresql://127.0.0.1:{free_port()}/greengauge")
    port = free_port()
    monkeypatch.setattr(demo, "PRIVATE_PORT", port)
    with tempfile.TemporaryDirectory(prefix="gg-demo-") as d:
        os.chmod(d, 0o755)
        console = Console(record=True, width=200)
        url = demo.demo_database(Path(d), console)
        try:
            assert "starting a private cluster" in console.export_text()
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == ("greengauge_demo",)
        finally:
            PrivateCluster(Path(d) / "pg", port).stop()


def test_no_server_and_nothing_installed_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("GREENGAUGE_DATABASE_URL", raising=False)
    monkeypatch.setattr(demo, "DEFAULT_DATABASE_URL", f"postgresql://127.0.0.1:{free_port()}/greengauge")
    monkeypatch.setattr("store.cluster.find_pg_bin", lambda name: None)
    with pytest.raises(demo.NoDatabase, match="install PostgreSQL 15"):
        demo.demo_database(tmp_path, Console())


def test_explicit_url_that_does_not_answer_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", f"postgresql://127.0.0.1:{free_port()}/x")
    with pytest.raises(demo.NoDatabase, match="no PostgreSQL answers at GREENGAUGE_DATABASE_URL"):
        demo.demo_database(tmp_path, Console())
