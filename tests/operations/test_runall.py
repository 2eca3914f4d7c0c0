"""The README's run command: everything comes up, and Ctrl-C stops every process."""

import base64
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.runall import ROOT, embedded_run_only, free_port, runall_start

pytestmark = [pytest.mark.slow, embedded_run_only]


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


def _flower_status(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_runall_serves_admin_and_flower_and_ctrl_c_stops_every_process(tmp_path):
    flower_port = free_port()
    running = runall_start(tmp_path, timeout=60, extra_env={"SLABUDDY_FLOWER_PORT": str(flower_port)})
    try:
        with urllib.request.urlopen(f"{running.url}/admin/login/", timeout=5) as resp:
            assert resp.status == 200
        # Flower on 127.0.0.1, its login printed next to the admin URL and kept in the data folder.
        printed = re.search(rf"Flower \(Celery monitoring\): http://127\.0\.0\.1:{flower_port}/  "
                            r"user '(\w+)', password '([^']+)'", running.log())
        assert printed, running.log()
        login = f"{printed[1]}:{printed[2]}"
        assert (tmp_path / "flower_password").read_text() == printed[2]
        assert oct((tmp_path / "flower_password").stat().st_mode & 0o777) == "0o600"
        flower = f"http://127.0.0.1:{flower_port}/"
        deadline = time.monotonic() + 30
        while _flower_status(flower) == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _flower_status(flower) == 401  # never without the password
        assert _flower_status(flower, f"{printed[1]}:wrong") == 401
        assert _flower_status(flower, login) == 200
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
    assert "Stopped " in output and "worker, beat, flower" in output


def test_flower_never_starts_with_a_malformed_login(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "CELERY_"))}
    env.update({"SLABUDDY_DATA_DIR": str(tmp_path), "FLOWER_BASIC_AUTH": "admin-without-password"})
    result = subprocess.run([sys.executable, "manage.py", "runall"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH must be user:password" in result.stderr


def test_runall_starts_without_flower_when_its_port_is_taken(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        flower_port = taken.getsockname()[1]
        running = runall_start(tmp_path, timeout=60, extra_env={"SLABUDDY_FLOWER_PORT": str(flower_port)})
        try:
            with urllib.request.urlopen(f"{running.url}/healthz", timeout=5) as response:
                assert response.status == 200
            log = running.log()
            assert f"Flower: port {flower_port} on 127.0.0.1 is in use; starting without Flower" in log
            assert "Flower (Celery monitoring)" not in log
        finally:
            assert running.stop() == 0, running.log()
