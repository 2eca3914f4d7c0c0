"""Revoking tasks by id, against a real worker with no result backend (SLA Buddy keeps none):
the worker discards the revoked tasks and logs no warning per task."""

from __future__ import annotations

import uuid

import pytest

from base.tasks_by_name import task_send, tasks_revoke
from ops.testing.worker import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_revoked_tasks_are_discarded_without_a_warning_each(celery_worker_factory, settings):
    assert settings.CELERY_RESULT_BACKEND is None
    worker = celery_worker_factory()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for task_id in ids:
        assert task_send("ops.tasks.heartbeat", task_id=task_id, countdown=4)
    wait_for(lambda: all(f"[{task_id}] received" in worker.log() for task_id in ids), timeout=30,
             message="the worker holding the three delayed tasks")
    tasks_revoke(ids)
    wait_for(lambda: all(f"Discarding revoked task: ops.tasks.heartbeat[{task_id}]" in worker.log()
                         for task_id in ids), timeout=30, message="the revoked tasks discarded")
    log = worker.log()
    assert "Failed to mark task" not in log
    assert "No result backend is configured" not in log
    assert not any(line for line in log.splitlines() if "WARNING" in line and any(i in line for i in ids))
