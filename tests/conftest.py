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
    share the next checkpoint. A failed drop fails the session (see ``_drops_done``).

    8 threads: checkpoints come one after the other, so the drops waiting together are the ones a
    checkpoint ends. With 3, a worker made databases faster than they were dropped (a drop took 1-5 s,
    up to 57 s when other runs wrote much) and the last tests' teardown waited 13-43 s for the
    backlog; with 8 none waited in the queue, the end waited 0-2 s, and the server checkpointed 117
    times in a run instead of 192. At most 8 connections a worker (26 at the peak of a run)."""

    def __init__(self, threads: int = 8) -> None:
        self.threads = threads
        self.pool: ThreadPoolExecutor | None = None
        self.pending: list[tuple[str, Future]] = []
        self.lock = threading.Lock()  # the thread making a database ahead drops one it failed to migrate

    def drop(self, name: str) -> None:
        with self.lock:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="drop-test-database")
            self.pending.append((name, self.pool.submit(self._drop, name)))

    @staticmethod
    def _drop(name: str) -> None:
        drop_database(ADMIN_URL, name)
        drop_roles(ADMIN_URL, name)  # roles are cluster-wide: the tenancy roles of this database

    def finish(self) -> list[str]:
        """Wait until every database handed over is dropped; the ones that could not be."""
        with self.lock:
            pending, self.pending = self.pending, []
            pool, self.pool = self.pool, None
        failed = [f"{name}: {exc!r}" for name, f in pending if (exc := f.exception()) is not None]
        if pool is not None:
            pool.shutdown()
        return failed


_dropper = _Dropper()


def drop_test_database(name: str) -> None:
    """Drop test database ``name`` and its roles, soon (before the session ends)."""
    _dropper.drop(name)


@pytest.fixture(scope="session", autouse=True)
def _drops_done():
    yield
    failed = _ahead.finish()
    failed += _dropper.finish()
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
    from copying it), dropped when the session ends (``_drops_done``). Not marked a template
    (``datistemplate``): its owner copies it all the same, and one a killed run leaves behind drops
    like any test database."""

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
                admin.execute(psycopg.sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident))
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            except BaseException:
                drop_database(ADMIN_URL, name)
                raise
        return name

    def drop(self) -> None:
        with self.lock:
            if self.name is not None:
                drop_database(ADMIN_URL, self.name)
                self.name = None


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


class _Ahead:
    """The migrated database of the next test that asks for ``db_url``, made in a thread of its own
    while the test before it runs (most tests wait on timers, servers and PostgreSQL rather than
    compute; a copy and the migrations from TEMPLATE_BEFORE on take 0.3-1 s under load). At most one
    is made ahead, and only when the next test of this process asks for one (``nextitem``); one made
    and not used is dropped when the session ends. An error making it is raised in that test.

    It is made beside a running test: nothing it uses may be something a test changes. The migration
    files are the project's (``MIGRATIONS_DIR`` as imported here: tests/store/test_migrate.py points
    the module at files of its own); the server is ADMIN_URL's."""

    def __init__(self) -> None:
        self.pool: ThreadPoolExecutor | None = None
        self.future: Future | None = None
        self.next_wants = False  # the test after the running one asks for db_url

    def prepare(self) -> None:
        if self.future is None:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(1, thread_name_prefix="make-test-database")
            self.future = self.pool.submit(new_test_database, migrated=True)

    def take(self) -> tuple[str, str]:
        future, self.future = self.future, None
        return future.result() if future is not None else new_test_database(migrated=True)

    def finish(self) -> list[str]:
        failed = []
        if self.future is not None:
            try:
                drop_test_database(self.take()[0])
            except Exception as exc:  # noqa: BLE001 - reported with the drops
                failed.append(f"a database made ahead: {exc!r}")
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        return failed


_ahead = _Ahead()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    _ahead.next_wants = nextitem is not None and "db_url" in nextitem.fixturenames
    if _ahead.next_wants and "db_url" not in item.fixturenames:
        _ahead.prepare()  # (a test that asks for one starts the next one's once it has its own)


@pytest.fixture
def db_url():
    """URL of a fresh database with every migration applied, dropped after the test."""
    name, url = _ahead.take()
    try:
        if _ahead.next_wants:
            _ahead.prepare()
        yield url
    finally:
        drop_test_database(name)


@pytest.fixture
def dropped_database_name():
    """A name for a database the test has made (the demo's, say): dropped after the test, if it exists,
    as the test databases are (without the test waiting for the checkpoint)."""
    name = f"gg_test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        drop_test_database(name)


@pytest.fixture
def conn(db_url):
    with psycopg.connect(db_url) as c:
        yield c
