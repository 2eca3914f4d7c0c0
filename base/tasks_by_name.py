"""Send a Celery task by name after the current transaction commits.

Lower layers never import the modules that define their tasks (or the Celery
app): they send by name through ``celery.current_app``, which is the project's
app in every process that loaded Django settings.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from celery import current_app
from celery.backends.base import DisabledBackend
from celery.utils.functional import maybe_list
from celery.worker import state as worker_state
from celery.worker.control import control_command, ok
from django.db import transaction

logger = logging.getLogger("slabuddy.tasks")


def task_send(name: str, *, args: tuple = (), kwargs: dict[str, Any] | None = None,
              task_id: str | None = None, eta: datetime | None = None, countdown: float | None = None,
              why_safe: str = "a periodic job picks it up") -> bool:
    """Send now; a broker failure is logged (saying what recovers the work), never raised."""
    try:
        current_app.send_task(name, args=args, kwargs=kwargs or {}, task_id=task_id, eta=eta,
                              countdown=countdown)
    except Exception:  # broker down: the database row is the truth, something sweeps it
        logger.warning("could not queue %s; %s", name, why_safe, exc_info=True)
        return False
    return True


def task_send_on_commit(name: str, **options: Any) -> None:
    """``task_send`` once the surrounding transaction commits (at once outside one)."""
    transaction.on_commit(partial(task_send, name, **options))


REVOKE_COMMAND = "slabuddy_revoke"


@control_command(name=REVOKE_COMMAND, variadic="task_id", signature="[id1 [id2 [... [idN]]]]")
def revoke_without_backend(state, task_id, **kwargs):
    """Celery's ``revoke`` without marking each task revoked in a result backend.

    Runs in the worker (registered when this module is imported, which every
    worker does through the tasks modules). Celery's own command asks the result
    backend about every id, and with none configured (SLA Buddy keeps no
    results) logs a warning per task; flagging the ids is all a revoke needs.
    """
    task_ids = set(maybe_list(task_id) or [])
    worker_state.revoked.update(task_ids)
    logger.info("Tasks flagged as revoked: %s", ", ".join(sorted(task_ids)))
    return ok(f"tasks {sorted(task_ids)} flagged as revoked")


def tasks_revoke(task_ids: list[str]) -> None:
    """Best effort: a revoked task would be a stale no-op anyway (tasks re-check their row)."""
    task_ids = [t for t in task_ids if t]
    if not task_ids:
        return
    try:
        if isinstance(current_app.backend, DisabledBackend):
            current_app.control.broadcast(REVOKE_COMMAND, arguments={"task_id": task_ids})
        else:
            current_app.control.revoke(task_ids)
    except Exception:
        logger.warning("could not revoke %d task(s)", len(task_ids), exc_info=True)


def tasks_revoke_on_commit(task_ids: list[str]) -> None:
    transaction.on_commit(partial(tasks_revoke, list(task_ids)))
