"""`greengauge collect` and `greengauge status` against a real database: one clear line for each fault."""

import json
from datetime import datetime, timezone

import psycopg
from typer.testing import CliRunner

from collectors.spool import Spool
from greengauge.cli import app
from tests.conftest import free_port
from tests.store.tenancy_seed import seed

runner = CliRunner()


def site_file(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(json.dumps({  # JSON is YAML
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": "grid", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": free_port(),
                     "poll_interval_s": 0.2, "timeout_s": 0.5, "points": [{"quantity": "energy_import"}]}],
    }))
    return path


def one_line_error(r, *parts):
    assert r.exit_code != 0 and "Traceback" not in r.output, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.output
    for part in parts:
        assert part in lines[0], r.output


def test_collect_and_status_on_a_database_that_is_not_migrated_say_to_upgrade(empty_db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", empty_db_url)
    r = runner.invoke(app, ["collect", str(site_file(tmp_path)), "--spool-dir", str(tmp_path / "spool")])
    one_line_error(r, "has no GreenGauge schema", "run `greengauge db upgrade` first")
    r = runner.invoke(app, ["status"])
    one_line_error(r, "has no GreenGauge schema", "greengauge db upgrade")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:  # a schema one migration behind
        from store.migrate import upgrade
        upgrade(conn)
        conn.execute("DELETE FROM schema_migration WHERE version = (SELECT max(version) FROM schema_migration)")
    r = runner.invoke(app, ["status"])
    one_line_error(r, "lacks 1 migration", "greengauge db upgrade")


def test_a_second_collector_on_one_spool_directory_is_one_clear_line(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    first = Spool(tmp_path / "spool")  # the first collector holds it
    try:
        r = runner.invoke(app, ["collect", str(site_file(tmp_path)), "--spool-dir", str(tmp_path / "spool")])
    finally:
        first.close()
    one_line_error(r, "is in use by another collector", "--spool-dir")
    assert not (tmp_path / "spool" / "ids.json").exists()  # nothing written under the first one


def test_a_damaged_ids_file_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", f"postgresql://127.0.0.1:{free_port()}/nothing")
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "ids.json").write_bytes(b'{"site": "3f2a", "points": {"acme.ma')  # torn
    r = runner.invoke(app, ["collect", str(site_file(tmp_path)), "--spool-dir", str(tmp_path / "spool")])
    one_line_error(r, "ids.json: damaged", "delete it")


def test_an_ids_file_that_cannot_be_written_is_one_clear_line(db_url, monkeypatch, tmp_path):
    # a directory where the ids file goes, the database reachable: the write fails (a traceback before)
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    (tmp_path / "spool" / "ids.json").mkdir(parents=True)
    r = runner.invoke(app, ["collect", str(site_file(tmp_path)), "--spool-dir", str(tmp_path / "spool")])
    one_line_error(r, "ids.json: is a directory; remove it or give another --spool-dir")


def test_collect_exits_non_zero_with_the_reason_when_its_writer_dies(db_url, monkeypatch, tmp_path):
    from collectors.writer import BatchingWriter

    async def broken(self, **kw):
        raise RuntimeError("injected fault")

    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    monkeypatch.setattr(BatchingWriter, "flush", broken)
    r = runner.invoke(app, ["collect", str(site_file(tmp_path)), "--spool-dir", str(tmp_path / "spool")])
    assert r.exit_code == 1
    one_line_error(r, "collector stopped: the writer task stopped (RuntimeError: injected fault)")
    ids = json.loads((tmp_path / "spool" / "ids.json").read_text())  # written whole before the start
    assert list(ids["points"]) == ["acme.main.grid.energy_import"]
    r = runner.invoke(app, ["status", "--findings", "0"])
    assert r.exit_code == 0, r.output
    assert "not collected" in r.output and "1 not collected (their collector stopped)" in r.output


def test_status_shows_a_corrupt_spool_segment_with_its_readings_in_either_language(db_url, conn, monkeypatch):
    import asyncio

    from collectors.health import HealthRecorder

    h = HealthRecorder(lambda: psycopg.connect(db_url), {})
    h.finding("spool_corrupt", "/var/spool/acme-main/corrupt/000000000007.seg",
              data={"readings": 4812, "reason": "row 3: quality 7 [a-z]"}, count=4812,
              when=datetime.now(timezone.utc))
    asyncio.run(h.flush())
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    r = runner.invoke(app, ["status"])
    assert r.exit_code == 0, r.output
    rows = [line.split("│") for line in r.output.splitlines() if line.count("│") == 7]
    assert "".join(c[2].strip() for c in rows) == "/var/spool/acme-main/corrupt/000000000007.seg"  # folded, not cut
    assert rows[0][1].strip() == "spool_corrupt" and rows[0][3].strip() == "4812"
    text = " ".join(c[6].strip() for c in rows)
    assert "4812 spooled readings set aside as corrupt (row 3: quality 7 [a-z])" in text  # no markup read
    r = runner.invoke(app, ["status", "--lang", "zh"])
    assert "4812条缓存读数因文件损坏被隔离" in "".join(line.split("│")[6].strip() for line in r.output.splitlines()
                                                  if line.count("│") == 7)


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
