"""Apply the ordered SQL migrations in ``store/migrations``.

Each file ``NNNN_name.sql`` is applied once, in its own transaction, and recorded with its
checksum in ``schema_migration``; running the upgrade twice changes nothing. A file changed after
it was applied is an error, not a silent skip — unless the file itself names the checksum it had
when it was applied, in a line ``-- previous checksum: <sha256>`` (an edit that changes nothing for
a database that already ran it, such as a guard added in front of what it did); the record is then
brought up to date.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x6772_6565_6E67  # "greeng": one upgrade at a time per database


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def previous_checksums(self) -> frozenset[str]:
        """Checksums this file had before compatible edits (``-- previous checksum: …`` lines)."""
        return frozenset(re.findall(r"^-- previous checksum: ([0-9a-f]{64})\s*$", self.sql, flags=re.MULTILINE))


class MigrationError(RuntimeError):
    pass


def migrations(directory: Path | None = None) -> list[Migration]:
    """The migration files of ``directory`` (default ``MIGRATIONS_DIR``), in order."""
    out = []
    for path in sorted((directory or MIGRATIONS_DIR).glob("*.sql")):
        version, _, name = path.stem.partition("_")
        if not version.isdigit():
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        out.append(Migration(version, name, path))
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return out


def upgrade(conn: psycopg.Connection, *, before: str | None = None,
            directory: Path | None = None) -> list[Migration]:
    """Apply every pending migration; return the ones applied (empty when up to date).

    ``before``: only the migrations whose version sorts before it (a database left at that point,
    as the tests' template is: tests/conftest.py); a later upgrade applies the rest. ``directory``:
    the migration files (default ``MIGRATIONS_DIR``)."""
    conn.autocommit = True
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migration (
               version    text PRIMARY KEY,
               name       text NOT NULL,
               checksum   text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        applied = dict(conn.execute("SELECT version, checksum FROM schema_migration").fetchall())
        done: list[Migration] = []
        for m in migrations(directory):
            if before is not None and m.version >= before:
                break
            if m.version in applied:
                if applied[m.version] in m.previous_checksums:
                    conn.execute("UPDATE schema_migration SET checksum = %s WHERE version = %s",
                                 (m.checksum, m.version))
                elif applied[m.version] != m.checksum:
                    raise MigrationError(
                        f"migration {m.path.name} was changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            with conn.transaction():
                conn.execute(m.sql)
                conn.execute(
                    "INSERT INTO schema_migration (version, name, checksum) VALUES (%s, %s, %s)",
                    (m.version, m.name, m.checksum),
                )
            done.append(m)
        if done and conn.execute("SELECT to_regprocedure('public.tenancy_refresh()')").fetchone()[0]:
            # a table a migration added gets its reader view and job-role grants (store/tenancy.py)
            with conn.transaction():
                conn.execute("SELECT tenancy_refresh()")
        return done
    finally:
        # a migration that closed the session (a FATAL) must surface as itself, not as the unlock
        # failing on a dead connection; the server releases a dead session's lock anyway
        if not conn.closed:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            except psycopg.OperationalError:
                pass


def timescale_status(conn: psycopg.Connection) -> str:
    """Why the database is in the storage mode it is in, in one sentence for ``db upgrade``."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return "the timescaledb extension is installed in this database"
    if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone():
        return "the timescaledb extension is not installed on this server"
    try:
        with conn.transaction():
            preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0]
    except psycopg.Error:
        return "timescaledb is installed, but this role cannot read shared_preload_libraries"
    if "timescaledb" not in preload:
        return ("timescaledb is installed but not in shared_preload_libraries: add it there, restart "
                "PostgreSQL; migrations already applied stay in plain mode (see docs/flows.md)")
    return "timescaledb is preloaded but was not created in this database when the schema was made"
