"""A real Celery worker in a subprocess, for tests that need one.

The worker talks to the same database as the test (the test database: a
SQLite file, or the PostgreSQL test database), the same broker (the embedded
filesystem broker under ``SLABUDDY_DATA_DIR``, or Redis from
``CELERY_BROKER_URL``) and the Slack base URL the test set (a ``FakeSlack``).
Tests using it need ``transactional_db``: the worker is another process and
sees only committed data. Use the ``celery_worker_factory`` fixture from the
root conftest.py rather than this class directly.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from ops.workers import WorkerKind

CATCH_UP_DONE = re.compile(r"escalations_requeue_horizon\[[^\]]+\] succeeded")


def database_url_for_worker() -> str:
    """A DATABASE_URL for the database the tests are using right now."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


def purge_broker() -> None:
    """Empty the broker: FLUSHDB of the configured Redis database only, or the
    embedded broker's queue files. Call it with no worker running."""
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url)
        try:
            client.flushdb()
        finally:
            client.close()
    elif settings.BROKER_IS_FILESYSTEM:
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_in", "data_folder_out", "control_folder"):
            folder = Path(options[key])
            for item in folder.iterdir() if folder.exists() else []:
                if item.is_dir():
                    shutil.rmtree(item, ignore_errors=True)
                else:
                    item.unlink(missing_ok=True)


def wait_for(predicate: Callable[[], object], *, timeout: float, interval: float = 0.1,
             message: str = "condition") -> object:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class CeleryWorker:
    """``celery -A slabuddy worker -Q escalation,default`` in its own process group.

    One prefork worker on both queues by default (what most tests need); ``layout=ESCALATION_WORKER``
    (or ``DEFAULT_WORKER``) starts one worker of that kind as production runs it (ops/workers.py):
    its queues and pool."""

    def __init__(self, *, log_dir: Path, env: dict[str, str] | None = None, concurrency: int = 1,
                 queues: str = "escalation,default", pool: str = "prefork", layout: WorkerKind | None = None):
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.log_path = Path(log_dir) / f"worker-{uuid.uuid4().hex[:8]}.log"
        self.concurrency = concurrency
        self.queues = layout.queues if layout else queues
        self.pool = layout.pool if layout else pool
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "slabuddy.settings",
            "DATABASE_URL": database_url_for_worker(),
            "DATABASE_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SLABUDDY_DATA_DIR": str(settings.DATA_DIR),
            "SLACK_API_BASE_URL": settings.SLACK_API_BASE_URL,
            "LOG_LEVEL": "info",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 60) -> CeleryWorker:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "slabuddy", "worker",
                "-Q", self.queues, "-c", str(self.concurrency), "-P", self.pool,
                "-l", "info", "-n", self.name,
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches the pool too
        )
        wait_for(self._ready, timeout=timeout, interval=0.2, message=f"worker ready ({self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()}")
        log = self.log()
        if " ready." not in log:
            return False
        # Connecting, a worker queues its catch-up (a sweep per process, then a re-queue of
        # the levels within the horizon: slabuddy/celery.py). Wait until it has run, so that
        # it never mixes with what the test does next.
        return "escalation" not in self.queues.split(",") or bool(CATCH_UP_DONE.search(log))

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool at once: no warm shutdown, nothing acknowledged."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self, *, grace: float = 10) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # also reaps pool processes left in the group
        self._log.close()
