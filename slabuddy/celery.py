"""The Celery app. Workers: ``celery -A slabuddy worker -Q escalation,default``.

Three things make a worker ride out a broker or database outage (docs/SCALING.md):

1. It reconnects to the broker every second or two while it is gone (kombu's
   default backs off to 30 s between attempts, so a worker would come back up
   to half a minute after Redis did).
2. Every time it (re)connects, it queues a sweep for each of its pool processes
   and an inbound drain: what fell due while nothing could run is fired within
   seconds of the broker's return, not at the next beat tick.
3. A task that meets a database that is down or restarting is retried a second
   or two later instead of failing (every task is idempotent), and the
   connection is checked before each task, as Django does for each request.
"""

import functools
import os

from celery import Celery, Task, bootsteps
from celery.signals import task_postrun, task_prerun
from celery.worker.consumer import Consumer
from django.db import InterfaceError, OperationalError, close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slabuddy.settings")

SWEEP_TASK = "escalation.tasks.escalations_sweep"
DRAIN_TASK = "slackbot.tasks.slack_inbound_drain"
DB_RETRY_LIMIT = 300  # about ten minutes of a database outage; the sweepers cover anything longer
RECONNECT = {"interval_start": 1, "interval_step": 1, "interval_max": 2}


class SlaBuddyTask(Task):
    """Every task of the app: a database error (down, restarting, a deadlock) means
    "again in a moment", not failure. Tasks re-read their rows, so a retry is safe."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if self.request.called_directly or self.request.is_eager:
                raise
            retries = self.request.retries
            raise self.retry(exc=exc, countdown=min(1 + retries, 3), max_retries=DB_RETRY_LIMIT) from exc


class ReconnectingConsumer(Consumer):
    """Celery's consumer, retrying a lost broker every second or two."""

    def ensure_connected(self, conn):
        conn.ensure_connection = functools.partial(conn.ensure_connection, **RECONNECT)
        return super().ensure_connected(conn)


class CatchUpOnConnect(bootsteps.StartStopStep):
    """Runs each time the worker (re)connects to the broker (at start, after an outage)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, c):
        processes = getattr(c.pool, "num_processes", None) or 1
        for _ in range(processes):  # parallel sweepers skip each other's rows
            c.app.send_task(SWEEP_TASK)
        c.app.send_task(DRAIN_TASK)


app = Celery("slabuddy", task_cls=SlaBuddyTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.worker_consumer = "slabuddy.celery:ReconnectingConsumer"
app.steps["consumer"].add(CatchUpOnConnect)
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_checked(**kwargs) -> None:
    """Drop a connection that broke or outlived DATABASE_CONN_MAX_AGE; with health checks on,
    the next query first checks the one kept (Celery reuses it: CELERY_DB_REUSE_MAX)."""
    close_old_connections()
