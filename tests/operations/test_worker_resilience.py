"""What lets workers ride out outages (slabuddy/celery.py): database errors mean "again in a
moment", and the catch-up queued on every broker (re)connect names tasks that exist."""

from __future__ import annotations

import uuid

import pytest
from celery.exceptions import Retry
from django.db import OperationalError
from kombu import Connection, Queue

import escalation.tasks
import slackbot.tasks
from ops.tasks import heartbeat
from slabuddy import celery as project

TASK_MODULES = (escalation.tasks, slackbot.tasks)  # registered with the app on import


def test_every_catch_up_task_exists():
    names = {project.SWEEP_TASK, project.REQUEUE_TASK, project.DRAIN_TASK}
    assert names <= set(project.app.tasks)
    assert all(isinstance(project.app.tasks[name], project.SlaBuddyTask) for name in names)
    assert project.app.conf.worker_consumer == "slabuddy.celery:ReconnectingConsumer"
    assert project.CatchUpOnConnect in project.app.steps["consumer"]


class _CatchUp:
    """A consumer's pool and app, as the bootstep sees them."""

    def __init__(self, processes: int, restart_count: int = 0):
        self.pool = type("Pool", (), {"num_processes": processes})()
        self.restart_count = restart_count  # how often the consumer (re)connected before
        self.sent: list[str] = []
        self.app = type("App", (), {"send_task": lambda _, name: self.sent.append(name)})()


def test_on_reconnect_a_worker_queues_a_sweep_per_process_a_requeue_and_a_drain():
    consumer = _CatchUp(processes=3, restart_count=1)
    project.CatchUpOnConnect(consumer).start(consumer)
    assert consumer.sent == [project.SWEEP_TASK] * 3 + [project.REQUEUE_TASK, project.DRAIN_TASK]


def test_a_starting_worker_catches_up_once_when_ready_not_also_on_its_first_connect():
    consumer = _CatchUp(processes=2)
    project.CatchUpOnConnect(consumer).start(consumer)  # the first connection
    assert consumer.sent == []
    project.catch_up_when_ready(sender=consumer)  # worker_ready
    assert consumer.sent == [project.SWEEP_TASK] * 2 + [project.REQUEUE_TASK, project.DRAIN_TASK]


@pytest.mark.parametrize(("retries", "countdown"), [(0, 1), (1, 2), (5, 3)])
def test_a_task_meeting_a_database_error_is_retried_shortly(monkeypatch, retries, countdown):
    task = heartbeat
    asked = {}

    def retry(**kwargs):
        asked.update(kwargs)
        return Retry()

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(task, "retry", retry)
    monkeypatch.setattr(task, "run", down)
    task.push_request(retries=retries, called_directly=False, is_eager=False)
    try:
        with pytest.raises(Retry):
            task()
    finally:
        task.pop_request()
    assert asked["countdown"] == countdown and asked["max_retries"] == project.DB_RETRY_LIMIT
    assert isinstance(asked["exc"], OperationalError)


def test_called_directly_a_database_error_is_raised_as_it_is(monkeypatch):
    task = heartbeat

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(task, "run", down)
    with pytest.raises(OperationalError):
        task()


def _redis_message(url: str):
    """A message really delivered over a kombu Redis connection, and that connection."""
    queue = Queue(f"slabuddy-ack-test-{uuid.uuid4().hex[:8]}")
    connection = Connection(url)
    channel = connection.channel()
    bound = queue(channel)
    bound.declare()
    channel.basic_publish(channel.prepare_message("{}", content_type="application/json"), exchange="",
                          routing_key=bound.name)
    message = None
    for _ in range(50):
        message = bound.get(no_ack=False)
        if message is not None:
            break
    return connection, bound, message


def test_a_message_acked_after_its_connection_is_gone_is_left_to_the_broker(settings, caplog):
    """A task still running on a thread when Redis went away finishes after the reconnect; its
    ack over the torn-down connection raised AttributeError and stopped the worker."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("acks over a lost connection: the Redis transport (PostgreSQL + Redis run)")
    connection, bound, message = _redis_message(settings.CELERY_BROKER_URL)
    assert message is not None
    try:
        # The state a worker's lost connection is left in once Celery has torn it down (seen in
        # an outage run's log): the channel's transport without its client, the pool dropped.
        message.channel.connection.client = None
        message.channel._pool = None
        with pytest.raises(AttributeError):  # what kombu does on its own
            message.ack_log_error(project.logger, ())
        with caplog.at_level("WARNING", logger="slabuddy.worker"):
            assert project.settle_unless_connection_gone(message.ack_log_error, project.logger, ()) is None
        assert "finished after its broker connection was lost" in caplog.text
    finally:
        with Connection(settings.CELERY_BROKER_URL) as live:
            bound(live.channel()).delete()
        connection.release()


class _Transport:
    def __init__(self, client):
        self.client = client


class _Message:
    delivery_tag = "tag-1"

    def __init__(self, client):
        self.channel = type("Channel", (), {"connection": _Transport(client)})()
        self.acked = 0

    def ack_log_error(self, logger, errors):
        if self.channel.connection.client is None:
            raise AttributeError("'NoneType' object has no attribute 'hostname'")
        self.acked += 1


def test_an_ack_over_a_live_connection_goes_through_and_its_errors_are_not_hidden():
    live = _Message(client=object())
    project.settle_unless_connection_gone(live.ack_log_error, project.logger, ())
    assert live.acked == 1

    def broken(logger, errors):
        raise AttributeError("a real bug")

    broken.__self__ = live  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="a real bug"):
        project.settle_unless_connection_gone(broken, project.logger, ())


def test_the_worker_consumer_settles_every_message_through_the_guard():
    calls = []

    class Hub:
        def call_soon(self, p):
            calls.append(p)
            return p

    consumer = project.ReconnectingConsumer.__new__(project.ReconnectingConsumer)
    consumer.hub = Hub()
    gone = _Message(client=None)
    consumer.call_soon_ack(gone.ack_log_error, project.logger, ())
    assert calls and calls[0]() is None  # swallowed, not raised into the event loop
    assert gone.acked == 0
