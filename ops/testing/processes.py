"""A child process in its own process group, logging to a file (tests and benchmarks).

No Django here, so benchmarks can import it before they configure settings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    """``argv`` started in ``ROOT`` with ``env``; SIGKILL reaches its whole group (a worker's pool)."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_dir: Path):
        self.name = name
        self.argv = argv
        self.log_path = Path(log_dir) / f"{name.replace('@', '-')}-{time.time_ns()}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 60) -> Proc:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if not self.alive or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start; see {self.log_path}:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        return self

    def wait_for_http(self, url: str, timeout: float = 60) -> Proc:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                if not self.alive or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} did not answer {url}; see {self.log_path}:\n{self.log()[-3000:]}"
                    ) from None
                time.sleep(0.2)

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the process and everything in its group: no warm shutdown, nothing acknowledged."""
        self.signal_group(signal.SIGKILL)
        self.process.wait()

    def stop(self, grace: float = 10) -> None:
        if self.alive:
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        if not self._log.closed:
            self._log.close()
