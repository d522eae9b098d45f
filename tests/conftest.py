"""Shared fixtures: every test that needs PostgreSQL gets a database of its own, dropped after.

The server is the machine's PostgreSQL at 127.0.0.1:5432 (``GREENGAUGE_TEST_ADMIN_URL`` to use
another); Mosquitto is at 127.0.0.1:1883 (``GREENGAUGE_TEST_MQTT``). Nothing here mocks them.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
import pytest
from hypothesis import settings

# The commands' rich consoles (greengauge/terminal.py) are made when first imported and take their
# width from COLUMNS if it is set then. pytest-xdist's workers inherit a COLUMNS=80 from the
# controller (GNU readline exports it when initialised without a terminal): the tables of `status`
# would be cut to 80 columns although the tests give the invocation COLUMNS=500, as a plain run does.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

# CI (CI=true) runs the property tests with a fixed seed, so a submission's result does not depend
# on the draw; local runs keep exploring new examples (and a failure found there becomes a test).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

from store.db import drop_database, with_database
from store.migrate import MIGRATIONS_DIR, migrations, upgrade
from store.tenancy import drop_roles

ADMIN_URL = os.environ.get("GREENGAUGE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Dropper:
    """Drops the tests' databases (and their tenancy roles) in threads of their own while the next
    tests run. PostgreSQL 15's DROP DATABASE waits for a checkpoint of the whole cluster (0.1-15 s
    here, the longer the more other runs write); a test needs nothing of it. Drops in flight at once
    share the next checkpoint. A failed drop fails the session (see ``_drops_done``)."""

    def __init__(self, threads: int = 3) -> None:
        self.threads = threads
        self.pool: ThreadPoolExecutor | None = None
        self.pending: list[tuple[str, Future]] = []

    def drop(self, name: str) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="drop-test-database")
        self.pending.append((name, self.pool.submit(self._drop, name)))

    @staticmethod
    def _drop(name: str) -> None:
        drop_database(ADMIN_URL, name)
        drop_roles(ADMIN_URL, name)  # roles are cluster-wide: the tenancy roles of this database

    def finish(self) -> list[str]:
        """Wait until every database handed over is dropped; the ones that could not be."""
        failed = [f"{name}: {exc!r}" for name, f in self.pending if (exc := f.exception()) is not None]
        self.pending.clear()
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        return failed


_dropper = _Dropper()


def drop_test_database(name: str) -> None:
    """Drop test database ``name`` and its roles, soon (before the session ends)."""
    _dropper.drop(name)


@pytest.fixture(scope="session", autouse=True)
def _drops_done():
    yield
    failed = _dropper.finish()
    try:
        _template.drop()
    except psycopg.Error as exc:
        failed.append(f"the template: {exc!r}")
    assert not failed, "test databases not dropped:\n" + "\n".join(failed)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (make test), files holding a test marked slow come first, then the others
    by their number of tests, most first (what xdist's --dist loadfile does by itself, but it would
    send a file of one long test last: make test passes --no-loadscope-reorder to keep this order).
    Each file still runs whole, in its own order, on one worker."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    count: dict = {}
    slow = set()
    for item in items:
        count[item.path] = count.get(item.path, 0) + 1
        if item.get_closest_marker("slow"):
            slow.add(item.path)
    items.sort(key=lambda item: (item.path not in slow, -count[item.path]))  # stable: files stay whole


#: Test databases are copied from a template holding the migrations before this version, made once
#: per process (``CREATE DATABASE … TEMPLATE``: a copy of its files, where running the migrations is
#: a few dozen transactions of DDL); ``upgrade`` applies the rest in each copy. Not the whole schema:
#: 0500_tenancy names the job roles after the database (md5(current_database())) and grants them
#: rights, so a copy of a fully migrated database would hold the template's roles' rights, not its own
#: (and no CONNECT on itself: database grants are not copied). Everything from 0500 on runs in every
#: test database as `greengauge db upgrade` runs it.
TEMPLATE_BEFORE = "0500"
_NAMED_AFTER_THE_DATABASE = re.compile(
    r"current_database|current_user|session_user|tenancy_prefix|pg_roles|\b(CREATE|ALTER|SET|DROP)\s+ROLE\b"
    r"|\bOWNER\s+TO\b|^\s*(GRANT|REVOKE)\b|\bON\s+DATABASE\b", re.IGNORECASE | re.MULTILINE)


def _settle(conn: psycopg.Connection, name: str) -> None:
    # Tests never need a commit to outlive a crash of the server (the fault tests cut a private
    # cluster of their own, see tests/collectors/test_faults.py): commits do not wait for the WAL flush.
    conn.execute(psycopg.sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(psycopg.sql.Identifier(name)))


class _Template:
    """This process's template: the migrations before TEMPLATE_BEFORE, no connection allowed (so
    that no session, TimescaleDB's background workers included, keeps CREATE DATABASE … TEMPLATE
    from copying it), dropped when the session ends (``_drops_done``)."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.lock = threading.Lock()

    def get(self) -> str:
        with self.lock:
            if self.name is None:
                self.name = self._make()
            return self.name

    @staticmethod
    def _make() -> str:
        for m in migrations(MIGRATIONS_DIR):
            if m.version < TEMPLATE_BEFORE and _NAMED_AFTER_THE_DATABASE.search(m.sql):
                raise RuntimeError(f"{m.path.name} may depend on the database's name or roles: a copy of the "
                                   f"test template would not have it right (lower TEMPLATE_BEFORE in {__file__})")
        name = f"gg_test_tpl_{uuid.uuid4().hex[:12]}"
        ident = psycopg.sql.Identifier(name)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(ident))
            try:
                _settle(admin, name)
                with psycopg.connect(with_database(ADMIN_URL, name)) as conn:
                    upgrade(conn, before=TEMPLATE_BEFORE, directory=MIGRATIONS_DIR)
                admin.execute(psycopg.sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
                              .format(ident))
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            except BaseException:
                _drop_template(name)
                raise
        return name

    def drop(self) -> None:
        with self.lock:
            if self.name is not None:
                _drop_template(self.name)
                self.name = None


def _drop_template(name: str) -> None:
    ident = psycopg.sql.Identifier(name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(psycopg.sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
        admin.execute(psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))


_template = _Template()


def new_test_database(*, migrated: bool) -> tuple[str, str]:
    """Create a test database: (name, URL). ``migrated``: every migration applied (copied from the
    template, then upgraded), else empty (a copy of template1, as CREATE DATABASE makes). The caller
    drops it with :func:`drop_test_database`."""
    name = f"gg_test_{uuid.uuid4().hex[:12]}"
    ident = psycopg.sql.Identifier(name)
    template = _template.get() if migrated else None
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        if template:
            admin.execute(psycopg.sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(ident, psycopg.sql.Identifier(template)))
        else:
            admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(ident))
        try:
            _settle(admin, name)
        except BaseException:
            drop_test_database(name)
            raise
    url = with_database(ADMIN_URL, name)
    if migrated:
        try:
            with psycopg.connect(url) as conn:
                upgrade(conn, directory=MIGRATIONS_DIR)
        except BaseException:
            drop_test_database(name)
            raise
    return name, url


@pytest.fixture
def empty_db_url():
    """URL of a fresh, empty database, dropped after the test."""
    name, url = new_test_database(migrated=False)
    try:
        yield url
    finally:
        drop_test_database(name)


@pytest.fixture
def db_url():
    """URL of a fresh database with every migration applied, dropped after the test."""
    name, url = new_test_database(migrated=True)
    try:
        yield url
    finally:
        drop_test_database(name)


@pytest.fixture
def conn(db_url):
    with psycopg.connect(db_url) as c:
        yield c
