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


def test_the_database_named_in_the_url_is_used_and_one_the_demo_did_not_create_is_never_dropped(
        empty_db_url, monkeypatch, tmp_path):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")  # someone's data
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", empty_db_url)
    console = Console(record=True, width=200)
    for _ in range(2):  # a second run drops nothing either
        assert demo.demo_database(tmp_path, console) == empty_db_url
        with psycopg.connect(empty_db_url) as conn:
            assert conn.execute("SELECT to_regclass('precious') IS NOT NULL").fetchone() == (True,)
    assert "the demo did not create it, so it drops nothing" in console.export_text()


def test_a_database_the_demo_creates_is_marked_and_only_that_one_is_made_fresh(monkeypatch, tmp_path,
                                                                             dropped_database_name):
    from store.db import with_database
    from tests.conftest import ADMIN_URL

    name = dropped_database_name
    url = with_database(ADMIN_URL, name)
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", url)
    assert demo.demo_database(tmp_path, Console()) == url  # missing: created
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE yesterday (x int)")  # an earlier demo run's content
    demo.demo_database(tmp_path, Console())  # the demo's own: made fresh
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('yesterday')").fetchone() == (None,)
        assert conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                            "WHERE datname = current_database()").fetchone() == (demo.DEMO_MARK,)


def test_without_a_url_the_demo_uses_a_demo_name(monkeypatch, tmp_path, dropped_database_name):
    from store.db import with_database
    from tests.conftest import ADMIN_URL

    name = dropped_database_name  # (the default name, greengauge_demo, made unique here)
    monkeypatch.delenv("GREENGAUGE_DATABASE_URL", raising=False)
    monkeypatch.setattr(demo, "DEFAULT_DATABASE_URL", with_database(ADMIN_URL, "greengauge"))
    monkeypatch.setattr(demo, "DEMO_DATABASE", name)
    url = demo.demo_database(tmp_path, Console())
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)


def test_ports_that_are_taken_are_replaced_by_free_ones_keeping_shared_endpoints_together():
    import socket

    from model.site import load_site

    site = load_site(Path(str(demo.DEMO_SITE)))
    first = site.devices[0].port
    taken = socket.socket()
    try:
        try:
            taken.bind(("127.0.0.1", first))
        except OSError:
            pass  # already taken by something else: as good
        taken.listen()
        moved = demo.with_free_ports(site)
    finally:
        taken.close()
    ports = {d.name: d.port for d in moved.devices}
    sharing = [d.name for d in site.devices if d.port == first]
    assert len(sharing) == 2 and len({ports[n] for n in sharing}) == 1 and ports[sharing[0]] != first
    assert all(ports[d.name] == d.port for d in site.devices if d.port != first and demo.port_free("127.0.0.1", d.port))


def test_an_impossible_day_is_one_clear_line():
    from typer.testing import CliRunner

    from greengauge.cli import app

    r = CliRunner().invoke(app, ["demo", "--day", "2025-02-30"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.strip() == "error: --day 2025-02-30: day is out of range for month; give a local day as " \
                               "YYYY-MM-DD, e.g. 2025-06-21"
