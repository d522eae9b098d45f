"""The API under test: a real `greengauge api serve` (uvicorn) on loopback, the real PostgreSQL,
httpx clients. One seeded database per module (tests/store/tenancy_seed.py: two parks × two
enterprises with rows in every table), tokens of every scope, a signing key in a temporary file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import pytest

from store.tokens import create_token, revoke_token
from tests.conftest import drop_test_database, free_port, new_test_database
from tests.store.tenancy_seed import seed


#: one TLS context for every client of the tests (the API is plain HTTP on loopback, but httpx makes
#: a context per client otherwise, loading the CA bundle: 37 ms of CPU each, 45 s of the schema test)
TLS = httpx.create_ssl_context()


@dataclass
class Api:
    base: str
    db_url: str
    key_file: Path
    tokens: dict[str, str] = field(default_factory=dict)  # secret by name
    ents: dict[str, int] = field(default_factory=dict)
    parks: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def client(self, token: str | None = None, **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30, verify=TLS, **kw)


def start_server(db_url: str, key_file: Path, log: Path, **env) -> tuple[subprocess.Popen, str]:
    port = free_port()
    e = {**os.environ, "GREENGAUGE_DATABASE_URL": db_url, "GREENGAUGE_SIGNING_KEY_FILE": str(key_file), **env}
    e.pop("GREENGAUGE_API_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "greengauge", "api", "serve", "--host", "127.0.0.1",
                             "--port", str(port)], env=e, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(base + "/healthz", timeout=2, verify=TLS).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"the API did not start within 60 s:\n{log.read_text()}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def module_db():
    name, url = new_test_database(migrated=True)
    try:
        yield url
    finally:
        drop_test_database(name)


def make_tokens(conn) -> dict[str, str]:
    """A token of every scope; 'expired' and 'revoked' must be refused."""
    out = {}
    for name, kw in {"ea1": {"enterprise": "EA1"}, "ea1-writer": {"enterprise": "EA1", "write": True},
                     "eb1-writer": {"enterprise": "EB1", "write": True},
                     "pa": {"park": "PA"}, "pb": {"park": "PB"}, "bureau": {"bureau": True},
                     "revoked": {"enterprise": "EA1"}}.items():
        out[name] = create_token(conn, name, **kw)[1]
    past = datetime.now(timezone.utc) - timedelta(days=2)
    out["expired"] = create_token(conn, "expired", enterprise="EA1", expires_in=timedelta(days=1), now=past)[1]
    revoke_token(conn, "revoked")
    return out


@pytest.fixture(scope="module")
def api(module_db, tmp_path_factory) -> Api:
    from api.signing import generate_key

    tmp = tmp_path_factory.mktemp("api")
    key = tmp / "signing.pem"
    generate_key(key)
    with psycopg.connect(module_db, autocommit=True) as conn:
        ents, parks = seed(conn)
    with psycopg.connect(module_db) as conn:
        tokens = make_tokens(conn)
    proc, base = start_server(module_db, key, tmp / "server.log")
    a = Api(base, module_db, key, tokens, ents, parks, proc)
    try:
        yield a
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def plant_api(module_db, tmp_path_factory) -> Api:
    """A simulated plant's day (tests/flows/conftest.py) rolled up, its figures and eligibility
    stored by the flows' own functions, plus the two-park seed; tokens of every scope."""
    from datetime import timedelta as td

    from api.signing import generate_key
    from flows.eligibility import evaluate
    from flows.metrics import enterprise_metrics
    from flows.rollup import rollup
    from store.results import enterprises
    from tests.flows.conftest import make_sim_day

    tmp = tmp_path_factory.mktemp("plant")
    key = tmp / "signing.pem"
    generate_key(key)
    with psycopg.connect(module_db) as conn:
        sim = make_sim_day(conn)
        # a certificate retired for the plant in the day: the ledger is part of the figures
        conn.execute("""INSERT INTO certificate (enterprise_id, serial_prefix, serial_first, serial_last, serial_digits,
                                                 production_month, used_on)
                        SELECT enterprise_id, 'GEC-PLANT-', 1, 2, 6, '2025-05-01', '2025-06-21' FROM enterprise
                        WHERE code = 'jj-shoes'""")
        conn.commit()
    rollup(module_db)
    as_of = sim.end + td(hours=3)
    with psycopg.connect(module_db) as conn:
        e = [x for x in enterprises(conn) if x.code == "jj-shoes"][0]
    enterprise_metrics(module_db, e, as_of)
    evaluate(module_db, e, 2025, as_of)
    with psycopg.connect(module_db, autocommit=True) as conn:
        ents, parks = seed(conn)
    with psycopg.connect(module_db) as conn:
        tokens = make_tokens(conn)
        tokens["plant"] = create_token(conn, "plant", enterprise="jj-shoes")[1]
        tokens["plant-writer"] = create_token(conn, "plant-writer", enterprise="jj-shoes", write=True)[1]
    proc, base = start_server(module_db, key, tmp / "server.log")
    a = Api(base, module_db, key, tokens, ents, parks, proc)
    try:
        yield a
    finally:
        stop_server(proc)
