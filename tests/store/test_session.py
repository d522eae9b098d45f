"""store.db.session: one connection kept per thread for the flows' per-enterprise calls, on the real
PostgreSQL — committed like ``with psycopg.connect(url)``, rolled back on an error, replaced when the
server ended it."""

import psycopg
import pytest

from store.db import session


def test_a_session_commits_is_kept_and_rolls_back_on_an_error(db_url):
    with session(db_url) as c:
        c.execute("CREATE TABLE s_probe (x int)")
        c.execute("INSERT INTO s_probe VALUES (1)")
        pid = c.info.backend_pid
    with session(db_url) as c:
        assert c.info.backend_pid == pid  # the same connection, no new server process
        assert c.execute("SELECT count(*) FROM s_probe").fetchone()[0] == 1  # committed
    with pytest.raises(ZeroDivisionError), session(db_url) as c:
        c.execute("INSERT INTO s_probe VALUES (2)")
        1 / 0
    with psycopg.connect(db_url) as other:
        assert other.execute("SELECT count(*) FROM s_probe").fetchone()[0] == 1  # rolled back
    with session(db_url) as c:
        assert c.info.backend_pid == pid  # still kept after the rollback


def test_a_kept_connection_the_server_ended_is_replaced(db_url):
    with session(db_url) as c:
        pid = c.info.backend_pid
    with psycopg.connect(db_url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()[0]
    with session(db_url) as c:
        assert c.info.backend_pid != pid
        assert c.execute("SELECT 1").fetchone() == (1,)
