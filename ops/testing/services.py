"""Private Redis and PostgreSQL servers that a test may stop and restart.

The machine's own Redis and PostgreSQL serve everyone; a test that takes a
service away starts one of its own on a free port, in a temporary folder, and
stops only that one. PostgreSQL runs as the ``postgres`` system user when we
are root (initdb refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg

from ops.testing.processes import Proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def missing_servers() -> str | None:
    """Why private servers cannot be started here (None: they can)."""
    if not shutil.which("redis-server"):
        return "redis-server is not installed"
    if postgres_bin() is None:
        return "PostgreSQL's initdb/pg_ctl are not installed (/usr/lib/postgresql/*/bin)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' system user to run PostgreSQL as"
    return None


class PrivateRedis:
    """redis-server as the broker is deployed: append-only, no eviction."""

    def __init__(self, folder: Path, log_dir: Path):
        self.folder, self.log_dir = Path(folder), Path(log_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.proc = Proc("redis", ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                   "--dir", str(self.folder), "--appendonly", "yes", "--save", "",
                                   "--maxmemory-policy", "noeviction"],
                         env=dict(os.environ), log_dir=self.log_dir)
        _wait(lambda: _answers(self.port), "redis-server")
        return self

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: the append-only file is complete, as with `docker stop`)."""
        if self.proc is not None:
            self.proc.stop(grace=20)
            self.proc = None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.data = self.folder / "data"
        self.port = free_port()
        self.bin = postgres_bin()
        self._as = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            self.folder.mkdir(parents=True, exist_ok=True)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            for parent in self.folder.parents:  # a temporary folder is 0700: let postgres pass through
                if parent.stat().st_uid == os.geteuid() and not parent.stat().st_mode & 0o001:
                    parent.chmod(parent.stat().st_mode | 0o011)
            self._as = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str = "slabuddy") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                      "--no-sync", "-E", "UTF8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "postgres.log"),
                  "-w", "-t", "60", "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
                  "start")
        return self

    def stop(self) -> None:
        """A fast shutdown: open transactions are rolled back and connections cut, as on a restart."""
        if self.data.exists():
            subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                            "stop"], capture_output=True, timeout=120)

    def create_database(self, name: str = "slabuddy") -> None:
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


def _wait(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout} s")
        time.sleep(0.1)
