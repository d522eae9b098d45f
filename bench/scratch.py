"""A database of a benchmark's own on the test PostgreSQL (``GREENGAUGE_TEST_ADMIN_URL``, default
postgres@127.0.0.1): made and migrated for the run, dropped after it — with the tenancy roles made
for it, where the run made some — unless kept."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from store.db import create_database, drop_database, with_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402

ADMIN_URL = os.environ.get("GREENGAUGE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_database(prefix: str = "gg_bench", *, keep: bool = False, roles: bool = False) -> Iterator[str]:
    """The URL of a new database ``<prefix>_<8 hex>``, migrated; dropped on leaving (and its tenancy
    roles with ``roles``), or kept and named with ``keep``."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    create_database(ADMIN_URL, name)
    url = with_database(ADMIN_URL, name)
    try:
        with psycopg.connect(url) as conn:
            upgrade(conn)
        yield url
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            drop_database(ADMIN_URL, name)
            if roles:
                from store.tenancy import drop_roles

                drop_roles(ADMIN_URL, name)
