"""The private throwaway cluster the demo starts when no server answers (real initdb and pg_ctl)."""

import os
import tempfile
from pathlib import Path

import psycopg
import pytest

from store.cluster import PrivateCluster, find_pg_bin
from tests.conftest import free_port

pytestmark = pytest.mark.skipif(not find_pg_bin("initdb"), reason="PostgreSQL server programs not installed")


@pytest.fixture
def cluster_dir():
    # not under pytest's tmp_path: as root the cluster runs as 'postgres', who must be able to
    # reach the directory, and pytest's base directory is private to root
    with tempfile.TemporaryDirectory(prefix="gg-pg-") as d:
        os.chmod(d, 0o755)
        yield Path(d)


def test_private_cluster_starts_answers_and_stops(cluster_dir):
    cluster = PrivateCluster(cluster_dir / "pg", free_port())
    url = cluster.start()
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert cluster.running()
    finally:
        cluster.stop()
    assert not cluster.running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
