"""store/tokens.py and `greengauge tokens`: secrets stored only as hashes, scopes, expiry, revoke."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from greengauge.cli import app
from store.tokens import TokenError, create_token, hash_token, list_tokens, revoke_token
from tests.store.tenancy_seed import seed


@pytest.fixture
def seeded(conn):
    conn.autocommit = True
    seed(conn)
    conn.autocommit = False
    return conn


def test_the_secret_is_stored_only_as_its_sha256(seeded):
    token, secret = create_token(seeded, "ea1", enterprise="EA1", expires_in=timedelta(days=1))
    assert secret.startswith("ggt_") and len(secret) > 40
    stored = seeded.execute("SELECT token_hash FROM api_token WHERE name = 'ea1'").fetchone()[0]
    assert stored == hash_token(secret) == hashlib.sha256(secret.encode()).hexdigest()
    dump = str(seeded.execute("SELECT * FROM api_token").fetchall())
    assert secret not in dump and secret[4:] not in dump
    assert token.kind == "enterprise" and token.scope_code == "EA1" and token.state == "active"
    # its role sees EA1 only, through the reader views (the database decides)
    seeded.execute(f'SET ROLE "{token.db_role}"')
    assert [r[0] for r in seeded.execute("SELECT code FROM reader.enterprise")] == ["EA1"]
    seeded.rollback()


@pytest.mark.parametrize("kw, field", [
    ({}, "scope"), ({"enterprise": "EA1", "park": "PA"}, "scope"), ({"enterprise": "NOPE"}, "enterprise"),
    ({"park": "NOPE"}, "park"), ({"enterprise": "EA1", "expires_in": timedelta(0)}, "expires"),
])
def test_bad_requests_name_the_field(seeded, kw, field):
    with pytest.raises(TokenError, match=f"^{field}"):
        create_token(seeded, "t1", **kw)


def test_revoke_marks_the_token_and_drops_its_role(seeded):
    token, _ = create_token(seeded, "gone", park="PA")
    assert revoke_token(seeded, "gone").state == "revoked"
    assert seeded.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (token.db_role,)).fetchone() is None
    with pytest.raises(TokenError, match="no such token"):
        revoke_token(seeded, "never")


def test_cli_create_list_revoke(seeded, db_url, monkeypatch):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    r = CliRunner().invoke(app, ["tokens", "create", "bureau-fj", "--bureau", "--expires", "12h"])
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    assert secret.startswith("ggt_")
    r = CliRunner().invoke(app, ["tokens", "list"])
    assert "bureau-fj" in r.stdout and "active" in r.stdout and secret not in r.stdout
    assert CliRunner().invoke(app, ["tokens", "create", "x", "--bureau", "--expires", "soon"]).exit_code == 2
    assert CliRunner().invoke(app, ["tokens", "revoke", "bureau-fj"]).exit_code == 0
    assert "revoked" in CliRunner().invoke(app, ["tokens", "list"]).stdout
    assert [t.state for t in list_tokens(seeded)] == ["revoked"]
