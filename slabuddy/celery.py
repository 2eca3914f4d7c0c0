"""The Celery app. Its workers (the ``default`` queue on prefork, the ``escalation`` queue on
threads) are described once in ops/workers.py.

Four things make a worker ride out a broker or database outage (docs/SCALING.md):

1. It reconnects to the broker every second or two while it is gone (kombu's
   default backs off to 30 s between attempts, so a worker would come back up
   to half a minute after Redis did).
2. When it starts (``worker_ready``) and every time it reconnects, it runs a
   catch-up: a sweep for each of its pool processes (or threads), a horizon pass (a fresh
   delayed task for every level within the horizon: Celery drops the ones a
   worker held when it was killed or lost its connection, and a flushed broker
   has none), and an inbound drain. What fell due while nothing could run
   fires within a second or two of the worker being ready, and what falls due
   next fires on time, not at the next periodic sweep. Several workers starting
   at once is safe: sweepers skip each other's rows, and a level with two tasks
   still fires once.
3. A task that was still running when the connection went (on the threads pool, where it
   cannot be cancelled) and finishes after the reconnect does not take the worker down by
   acknowledging its message over the dead connection: the broker has it back already.
4. A task that meets a database that is down or restarting is retried a second
   or two later instead of failing (every task is idempotent), and the
   connection is checked before each task, as Django does for each request.
"""

import functools
import logging
import os

from celery import Celery, Task, bootsteps
from celery.signals import task_postrun, task_prerun, worker_ready
from celery.worker.consumer import Consumer
from django.db import InterfaceError, OperationalError, close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slabuddy.settings")

logger = logging.getLogger("slabuddy.worker")

SWEEP_TASK = "escalation.tasks.escalations_sweep"
REQUEUE_TASK = "escalation.tasks.escalations_requeue_horizon"
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
    """Celery's consumer, retrying a lost broker every second or two, and surviving its loss."""

    def ensure_connected(self, conn):
        conn.ensure_connection = functools.partial(conn.ensure_connection, **RECONNECT)
        return super().ensure_connected(conn)

    def call_soon_ack(self, p, *args, **kwargs):
        return super().call_soon_ack(functools.partial(settle_unless_connection_gone, p), *args, **kwargs)

    def on_connection_error_after_connected(self, exc):
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError:
            # kombu 5.7's Redis transport, closing the lost connection, restores unacked
            # messages through a transport it has already torn down, and the worker would
            # exit. The connection is gone either way (Celery dropped it first): reconnect.
            # Those messages come back after the visibility timeout, as stale no-ops.
            logger.warning("broker connection lost; it could not be closed cleanly", exc_info=True)


def settle_unless_connection_gone(settle, *args, **kwargs):
    """Ack (or reject) a message, unless the connection it came over is gone.

    A task still running when the broker connection was lost finishes after the reconnect (a
    thread cannot be cancelled, as a prefork process is), and its ack goes to a channel whose
    transport kombu has already torn down: it fails with an AttributeError that no error tuple
    covers, and the worker stopped consuming ("Unrecoverable error"). Nothing needs acking
    there: the broker got the message back when the connection went (kombu restores
    unacknowledged messages), and a second run of a task is a no-op (tasks re-read their rows).
    """
    message = getattr(settle, "__self__", None)
    try:
        return settle(*args, **kwargs)
    except AttributeError:
        transport = getattr(getattr(message, "channel", None), "connection", None)
        if transport is None or getattr(transport, "client", None) is not None:
            raise  # a live connection: a real error
        logger.warning("a task finished after its broker connection was lost; its message comes back "
                       "from the broker instead of being acknowledged (delivery tag %s)",
                       getattr(message, "delivery_tag", "?"))
        return None


def catch_up_queue(consumer, *, why: str) -> None:
    """Queue the catch-up: a sweep per pool process (what is overdue posts first, each sweep a
    loop over due rows), then the horizon pass (fresh tasks for the levels due next), then an
    inbound drain. Measured: the horizon pass first is slower, because its row locks make the
    sweeps skip the overdue rows and leave them to one task each (docs/BENCHMARKS.md)."""
    processes = getattr(consumer.pool, "num_processes", None) or 1
    try:
        for _ in range(processes):  # parallel sweepers skip each other's rows
            consumer.app.send_task(SWEEP_TASK)
        consumer.app.send_task(REQUEUE_TASK)
        consumer.app.send_task(DRAIN_TASK)
    except Exception:  # the beat jobs catch up anyway
        logger.warning("could not queue the catch-up (%s)", why, exc_info=True)
        return
    logger.info("catch-up queued (%s): %d sweep(s), a horizon pass, a drain", why, processes)


@worker_ready.connect
def catch_up_when_ready(sender=None, **kwargs) -> None:
    """A worker that starts catches up at once: the tasks lost with a killed worker or a
    flushed broker are not left to the next periodic sweep."""
    if sender is not None:
        catch_up_queue(sender, why="worker ready")


class CatchUpOnConnect(bootsteps.StartStopStep):
    """Runs each time the worker reconnects to the broker (after an outage). The first
    connection is covered by the catch-up when the worker is ready (``worker_ready``)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, c):
        if c.restart_count > 0:
            catch_up_queue(c, why="reconnected")


app = Celery("slabuddy", task_cls=SlaBuddyTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.worker_consumer = "slabuddy.celery:ReconnectingConsumer"
app.steps["consumer"].add(CatchUpOnConnect)
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_checked(sender=None, **kwargs) -> None:
    """Drop a connection that broke or outlived DATABASE_CONN_MAX_AGE; with health checks on,
    the next query first checks the one kept (Celery reuses it: CELERY_DB_REUSE_MAX). Not
    for a task run eagerly inside the caller's process: the connection is the caller's."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()
