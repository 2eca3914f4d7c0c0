"""Start ``manage.py runall`` (what ``make run`` starts) for a test, and stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# runall_start always runs the embedded default (it drops DATABASE_URL and CELERY_*), so a
# PostgreSQL + Redis run would only repeat what the embedded run of the same suite proves.
embedded_run_only = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="runall runs the embedded default whatever DATABASE_URL says; the embedded run covers it",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunAll:
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def runall_start(data_dir: Path, *, extra_env: dict[str, str] | None = None, timeout: float = 60) -> RunAll:
    """Migrate a fresh data folder and start runall on a free port; wait until it is up."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DATABASE_URL", "CELERY_", "SLABUDDY_"))
    }
    # A free Flower port too: 5555 may belong to another run on the same machine.
    env.update({"SLABUDDY_DATA_DIR": str(data_dir), "SLABUDDY_PORT": str(port),
                "SLABUDDY_FLOWER_PORT": str(free_port())})
    env.update(extra_env or {})
    python = sys.executable
    for cmd in (["migrate", "--noinput", "-v0"], ["ensure_admin"], ["ensure_schedules"]):
        subprocess.run([python, "manage.py", *cmd], cwd=ROOT, env=env, check=True, timeout=120,
                       capture_output=True)
    log_path = data_dir / "runall.log"
    log = log_path.open("w")
    proc = subprocess.Popen([python, "manage.py", "runall"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    running = RunAll(proc, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "SLA Buddy is up" in running.log():
            return running
        if proc.poll() is not None:
            raise RuntimeError("runall exited early:\n" + running.log())
        time.sleep(0.3)
    running.stop()
    raise RuntimeError(f"runall not up within {timeout} s:\n" + running.log())
