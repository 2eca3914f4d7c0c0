"""Delayed Celery tasks for levels that are due soon; the database keeps the rest.

A level due within ``ESCALATION_HORIZON_SECONDS`` gets a task with an ETA,
published after commit and sent by name. Later levels wait in the database
until the beat "horizon" job queues them, so no ETA task sits in a worker
for hours and Redis never redelivers one. A lost task is harmless: the
sweeper fires every due level whatever happened to its task.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from base.tasks_by_name import task_send_on_commit
from escalation.models import Escalation
from escalation.transitions import EscalationState

FIRE_TASK = "escalation.tasks.escalation_fire"
# A level due longer ago than this is the sweeper's, in batches (escalation/sweeping.py): its own
# task sweeps instead of firing it alone, and a reconnected worker does not queue it again.
CATCH_UP_AFTER = timedelta(seconds=2)


def not_held_back(now: datetime) -> Q:
    """Levels no wait holds back at ``now`` (a turn, a backoff, an ambiguous post's wait)."""
    return Q(not_before__isnull=True) | Q(not_before__lte=now)


def horizon() -> timedelta:
    return timedelta(seconds=settings.ESCALATION_HORIZON_SECONDS)


def prepare_ahead() -> timedelta:
    """How early a level's task comes: it drafts the message, then waits for the level's moment
    (escalation/firing.py), so that only the claim and the post are left at the due time."""
    return timedelta(milliseconds=settings.ESCALATION_PREPARE_AHEAD_MS)


def escalation_queue(row: Escalation, *, at: datetime) -> bool:
    """Give ``row`` (pending, at its current version) a delayed task for ``at``,
    published after commit. Returns False if the row changed meanwhile."""
    task_id = escalation_task_id()
    if not Escalation.objects.mark_queued(row, task_id=task_id):
        return False
    row.celery_task_id, row.enqueued_for = task_id, row.due_at
    escalation_task_send(row, task_id=task_id, at=at)
    return True


def escalation_task_id() -> str:
    return str(uuid.uuid4())


def escalation_task_send(row: Escalation, *, task_id: str, at: datetime) -> None:
    """Publish, after commit, the delayed task ``task_id`` of ``row`` at its current version
    (recorded on the row by the caller, as ``mark_queued`` does), to start ``prepare_ahead`` before
    ``at``. It carries the level's due time, so that a task on time knows it without a look at the
    row (escalation/sweeping.py)."""
    task_send_on_commit(FIRE_TASK, args=(row.pk, row.version, row.due_at.timestamp()), task_id=task_id,
                        eta=at - prepare_ahead(), why_safe="the sweeper will fire the level")


def escalations_queue_within_horizon(rows: list[Escalation], *, now: datetime) -> int:
    queued = 0
    for row in rows:
        at = max(row.due_at, row.not_before or row.due_at)
        if at <= now + horizon():
            queued += escalation_queue(row, at=at)
    return queued


def escalations_enqueue_horizon(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Queue a task for every pending level that has come within the horizon
    and has none for its current due time (the beat "horizon" job)."""
    now = now or timezone.now()
    candidates = Escalation.objects.filter(
        state=EscalationState.PENDING, due_at__lte=now + horizon()
    ).filter(Q(enqueued_for__isnull=True) | ~Q(enqueued_for=F("due_at")))
    return _queue_candidates(candidates, now=now, limit=limit)


def escalations_requeue_horizon(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Queue every pending level within the horizon again, queued before or not.

    A worker that lost its broker connection (a Redis outage, a restart after
    it was killed) lost the delayed tasks it held: Celery drops them, and the
    broker gives them back only after its visibility timeout. Without this
    they would wait for the sweeper. A level with two tasks still fires once.
    On PostgreSQL the levels already long overdue are left to the sweeps queued
    with this pass (slabuddy/celery.py), which fire them in batches."""
    now = now or timezone.now()
    candidates = Escalation.objects.filter(state=EscalationState.PENDING, due_at__lte=now + horizon())
    if connection.vendor == "postgresql":
        candidates = candidates.exclude(Q(due_at__lte=now - CATCH_UP_AFTER) & not_held_back(now))
    return _queue_candidates(candidates, now=now, limit=limit)


def _queue_candidates(candidates, *, now: datetime, limit: int) -> int:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            candidates = candidates.select_for_update(skip_locked=True)
        rows = list(candidates.order_by("due_at")[:limit])
        return escalations_queue_within_horizon(rows, now=now)
