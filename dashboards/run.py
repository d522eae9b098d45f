"""Run a panel's or an alert rule's SQL the way Grafana would: macros expanded, on a connection
(normally the reader role of the dashboard's organization). Used by the tests and the benchmark."""

from __future__ import annotations

import psycopg

from dashboards.macros import TimeRange, Variable, expand


def run_sql(conn: psycopg.Connection, sql: str, tr: TimeRange, variables: dict[str, Variable] | None = None
            ) -> tuple[tuple[str, ...], list[tuple]]:
    """(column names, rows) of ``sql`` after Grafana's interpolation, in a read-only transaction."""
    text = expand(sql, tr, variables)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        cur.execute(text.encode())  # as Grafana sends it: no client-side parameters
        cols = tuple(c.name for c in cur.description) if cur.description else ()
        return cols, cur.fetchall() if cur.description else []
