"""``greengauge tenants``: add-reader prints or writes the secret once, list, revoke; one-line errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat

import psycopg
import pytest
from typer.testing import CliRunner

from greengauge.cli import app
from store import tenancy
from tests.store.tenancy_seed import seed


@pytest.fixture
def cli(db_url, monkeypatch):
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed(conn)
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["tenants", *args])


def _scram_matches(verifier: str, password: str) -> bool:
    """RFC 5802/7677: the stored ServerKey is HMAC(PBKDF2(password, salt, i), "Server Key")."""
    method, rest = verifier.split("$", 1)
    iters_salt, keys = rest.split("$")
    iters, salt = iters_salt.split(":")
    _, server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iters))
    return method == "SCRAM-SHA-256" and hmac.compare_digest(
        hmac.new(salted, b"Server Key", hashlib.sha256).digest(), base64.b64decode(server_key))


def _verifier(db_url, role):
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()[0]


def test_add_reader_prints_its_secret_once_and_the_database_holds_only_a_scram_verifier(cli, db_url):
    res = cli("add-reader", "--enterprise", "EA1", "--name", "ea1_grafana")
    assert res.exit_code == 0, res.output
    prefix = tenancy.prefix_for(psycopg.conninfo.conninfo_to_dict(db_url)["dbname"])
    name = prefix + "ea1_grafana"
    assert f"reader {name} created: sees enterprise EA1, read-only" in res.output
    password = res.output.split("password (shown once, not stored): ")[1].split()[0]
    verifier = _verifier(db_url, name)
    assert password not in verifier and _scram_matches(verifier, password)
    assert f"connect: postgresql://{name}@" in res.output and password not in res.output.split("connect:")[1].split("\n")[0]
    listed = cli("list")
    assert listed.exit_code == 0 and name in listed.output and "enterprise" in listed.output and "1 readers" in listed.output


def test_add_reader_writes_the_secret_to_a_new_file_readable_by_its_owner_only(cli, db_url, tmp_path):
    f = tmp_path / "pa.secret"
    res = cli("add-reader", "--park", "PA", "--writer", "--secret-file", str(f))
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    password = f.read_text().strip()
    assert password not in res.output and "reads and enters data" in res.output
    name = res.output.split("reader ")[1].split()[0]
    assert _scram_matches(_verifier(db_url, name), password)
    # an existing file is never overwritten, and then no role is created
    again = cli("add-reader", "--bureau", "--secret-file", str(f))
    assert again.exit_code == 2 and "the file exists" in again.output and f.read_text().strip() == password
    assert "bureau" not in cli("list").output.split("readers")[1]


@pytest.mark.parametrize("args, message", [
    (["--enterprise", "nope"], "reader not created: enterprise 'nope' does not exist (known: EA1, EA2, EB1, EB2)"),
    (["--park", "PA", "--bureau"], "give exactly one of --enterprise E, --park P or --bureau"),
    ([], "give exactly one of --enterprise E, --park P or --bureau"),
    (["--bureau", "--writer"], "reader not created: the bureau reads every enterprise and enters nothing"),
    (["--park", "PA", "--name", "Bad-Name"], "reader not created: reader name 'Bad-Name': use 1 to 40 lower-case"),
])
def test_add_reader_errors_are_one_line(cli, args, message, tmp_path):
    f = tmp_path / "s"
    res = cli("add-reader", *args, "--secret-file", str(f))
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not f.exists()  # nothing half-done: no secret file for a role that was not made


def test_revoke_drops_the_role(cli, db_url):
    res = cli("add-reader", "--bureau", "--name", "bureau_api")
    assert res.exit_code == 0, res.output
    assert cli("revoke", "bureau_api").exit_code == 0
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE '%bureau_api'").fetchone()[0] == 0
    again = cli("revoke", "bureau_api")
    assert again.exit_code == 2 and "not revoked: no reader named 'bureau_api'" in again.output


def test_add_job_makes_a_collector_login_that_writes_readings_only(cli, db_url, tmp_path):
    f = tmp_path / "collector.secret"
    res = cli("add-job", "--collector", "--name", "collector_main", "--secret-file", str(f))
    assert res.exit_code == 0, res.output
    name = res.output.split("collector login ")[1].split()[0]
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600 and _scram_matches(_verifier(db_url, name), f.read_text().strip())
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT pg_has_role(%s, %s, 'USAGE')",
                            (name, tenancy.role_prefix(conn) + "collector")).fetchone()[0]
    assert "role named" in cli("add-job", "--flows", "--name", "collector_main").output
    assert "exactly one of --collector or --flows" in cli("add-job", "--name", "x").output
