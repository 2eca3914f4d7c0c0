"""What lets workers ride out outages (slabuddy/celery.py): database errors mean "again in a
moment", and the catch-up queued on every broker (re)connect names tasks that exist."""

from __future__ import annotations

import pytest
from celery.exceptions import Retry
from django.db import OperationalError

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
