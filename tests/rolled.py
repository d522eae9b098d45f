"""Bring the stored rollup up to date in a test, as the rollup flow (and every ``report``) does
before a figure is computed from ``interval_energy``."""

from __future__ import annotations

import psycopg


def roll_up(conn: psycopg.Connection, enterprise: str | None = None):
    """Commit what the test wrote, then run the incremental rollup (flows.rollup.rollup)."""
    from flows.rollup import rollup

    conn.commit()
    return rollup(conn.info.dsn, enterprise=enterprise)
