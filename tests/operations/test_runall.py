"""The README's run command: everything comes up, and Ctrl-C stops every process."""

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.runall import runall_start

pytestmark = pytest.mark.slow


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
    running = runall_start(tmp_path, timeout=60)
    try:
        with urllib.request.urlopen(f"{running.url}/admin/login/", timeout=5) as resp:
            assert resp.status == 200
        # Worker and beat are running too (and the worker's pool processes).
        time.sleep(3)
        children = _descendants(running.proc.pid)
        assert len(children) >= 3
        assert running.stop(timeout=30) == 0  # SIGINT, as Ctrl-C sends
        time.sleep(0.5)
        left = [pid for pid in children if _alive(pid)]
        assert left == [], f"still running after Ctrl-C: {left}"
    finally:
        running.stop()
    output = running.log()
    assert "Stopped " in output and "worker, beat" in output
