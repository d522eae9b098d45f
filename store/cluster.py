"""A private, throwaway PostgreSQL cluster (initdb + pg_ctl) under a directory of ours.

Used by the demo when no server answers, and by tests that must stop a database for real
without touching the machine's shared server.
"""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import subprocess
from pathlib import Path


def find_pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


class ClusterError(RuntimeError):
    pass


class PrivateCluster:
    """``initdb`` once into ``directory/data``, then ``start``/``stop`` on ``port`` (127.0.0.1)."""

    def __init__(self, directory: Path | str, port: int) -> None:
        self.directory = Path(directory).resolve()
        self.data = self.directory / "data"
        self.port = port
        self.log = self.directory / "postgres.log"
        self.initdb = find_pg_bin("initdb")
        self.pg_ctl = find_pg_bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise ClusterError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
        # PostgreSQL refuses to run as root: run it as the 'postgres' user when we are root.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.user = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"postgresql://{user}127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self._as, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ClusterError(f"{Path(args[0]).name} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.directory, "postgres", "postgres")
            for parent in self.directory.parents:
                if not os.stat(parent).st_mode & 0o001:
                    raise ClusterError(
                        f"PostgreSQL runs as user 'postgres', who cannot enter {parent}; "
                        "use a directory every user can reach (chmod o+x) or set GREENGAUGE_DATABASE_URL")
        if not (self.data / "PG_VERSION").exists():
            self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", self.user or getpass.getuser(),
                      "--no-sync", "-E", "UTF8")

    def start(self) -> str:
        self._prepare()
        opts = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        return self.url

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()
