"""The README's run command: everything comes up, and Ctrl-C stops all of it."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,pgid="], capture_output=True, text=True).stdout
    rows = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    found, frontier = set(), {pid}
    while frontier:
        children = {p for p, pp, _ in rows if pp in frontier} - found
        found |= children
        frontier = children
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_runall_serves_admin_and_ctrl_c_stops_every_process(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "CELERY_"))}
    env.update({"SLABUDDY_DATA_DIR": str(tmp_path), "SLABUDDY_PORT": str(port)})
    python = sys.executable
    for cmd in (["migrate", "--noinput", "-v0"], ["ensure_admin"], ["ensure_schedules"]):
        subprocess.run([python, "manage.py", *cmd], cwd=ROOT, env=env, check=True, timeout=120,
                       capture_output=True)
    log = (tmp_path / "runall.log").open("w")
    proc = subprocess.Popen([python, "manage.py", "runall"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "SLA Buddy is up" in (tmp_path / "runall.log").read_text():
                break
            assert proc.poll() is None, (tmp_path / "runall.log").read_text()
            time.sleep(0.5)
        else:
            pytest.fail("not up within 60 s:\n" + (tmp_path / "runall.log").read_text())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5) as resp:
            assert resp.status == 200
        # Worker and beat are running too (and the worker's pool processes).
        time.sleep(3)
        children = _descendants(proc.pid)
        assert len(children) >= 3
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        time.sleep(0.5)
        left = [pid for pid in children if _alive(pid)]
        assert left == [], f"still running after Ctrl-C: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "runall.log").read_text()
    assert "Stopped " in output and "worker, beat" in output
