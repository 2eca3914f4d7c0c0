"""The Celery workers SLA Buddy runs, described once.

Two kinds, side by side (docs/SCALING.md, "Two kinds of worker"):

- ``worker``: the ``default`` queue (the inbound drain, intake, the channel scan, replies,
  calendars, reports) on a prefork pool: CPU-bound work, one process per core.
- ``escalation``: the ``escalation`` queue (levels firing, the sweeper, the horizon job,
  thread updates, pages) on a **threads** pool. Its tasks mostly wait on Slack, a pager or a
  helpdesk; a thread that waits holds only itself, so one Slack call hanging until its
  deadline (``SLACK_TIMEOUT_SECONDS``) no longer stops every other level behind it, as it
  did when each hanging call held one of two prefork processes.

``manage.py runall`` (``make run``), the test helpers, the benchmarks and
docker-compose.yml (checked by tests/operations/test_compose.py) start these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerKind:
    name: str
    queues: str
    pool: str
    concurrency: int  # what runall starts; compose may give more to a bigger host

    def argv(self, *, node: str, concurrency: int | None = None) -> list[str]:
        """``celery -A slabuddy`` arguments for one worker of this kind named ``node``."""
        return ["worker", "-Q", self.queues, "-P", self.pool,
                "--concurrency", str(concurrency or self.concurrency), "-n", node]


DEFAULT_WORKER = WorkerKind(name="worker", queues="default", pool="prefork", concurrency=2)
# Threads wait on the network; each keeps its own database connection (close_old_connections
# around every task, slabuddy/celery.py), so 16 threads are at most 16 connections (docs/SCALING.md).
ESCALATION_WORKER = WorkerKind(name="escalation", queues="escalation", pool="threads", concurrency=16)
WORKERS = (DEFAULT_WORKER, ESCALATION_WORKER)
