"""The sweeper: fires every level that is due and still pending, whatever happened to its task.

Also takes over a level whose claimer died (its ``firing`` lease ran out).
Concurrent sweepers skip each other's rows on PostgreSQL (SKIP LOCKED) and
fire them a batch at a time (escalation/firing_batch.py); on SQLite the
conditional claim decides, one level at a time.

A level's own task that finds the level long overdue (``CATCH_UP_AFTER``: a
worker came back, the broker or the database was away, a burst) sweeps
instead of firing it alone (``escalation_fire_or_sweep``): with thousands
overdue at once, batches in due order are what catches up fastest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from escalation.firing import (
    escalation_claim,
    escalation_deliver_claimed,
    escalation_fire,
)
from escalation.firing_batch import (
    BATCH_SIZE,
    Batch,
    due_levels_lock_for_taking,
    locked_levels_take,
    taken_levels_fire,
)
from escalation.models import Escalation, FiredVia
from escalation.outcomes import FireOutcome
from escalation.queueing import CATCH_UP_AFTER, not_held_back
from escalation.transitions import EscalationState

# The sweeper leaves a level this long to its own delayed task before taking it.
SWEEP_GRACE = timedelta(seconds=1)
SWEEP_BATCH = 200


@dataclass
class SweepResult:
    outcomes: dict[str, int] = field(default_factory=dict)
    more: bool = False

    @property
    def handled(self) -> int:
        return sum(self.outcomes.values())


def _sweepable(now: datetime) -> Q:
    pending = Q(state=EscalationState.PENDING, due_at__lte=now - SWEEP_GRACE) & not_held_back(now)
    abandoned = Q(state=EscalationState.FIRING, not_before__lte=now)  # the claimer's lease ran out
    return pending | abandoned


def _claim_next_due(now: datetime) -> Escalation | None:
    due = Escalation.objects.filter(_sweepable(now)).order_by("due_at")
    if connection.vendor == "postgresql":
        # Concurrent sweepers skip each other's rows instead of waiting on them.
        with transaction.atomic():
            row = due.select_for_update(skip_locked=True).first()
            return escalation_claim(row, now=now, via=FiredVia.SWEEPER) if row else None
    # SQLite has no row locks; the conditional update decides, try the next on a loss.
    for row in due[:20]:
        claimed = escalation_claim(row, now=now, via=FiredVia.SWEEPER)
        if claimed is not None:
            return claimed
    return None


def _take_due_batch(now: datetime, *, limit: int) -> Batch:
    """Take up to ``limit`` due levels, most overdue first, in one transaction (PostgreSQL): rows
    another sweeper holds are skipped (escalation/firing_batch.py: ``locked_levels_take``)."""
    due = (Escalation.objects.filter(_sweepable(now)).order_by("due_at")
           .select_related("ticket__channel__tier", "ticket__sla"))
    with transaction.atomic():
        due_levels_lock_for_taking()
        rows = list(due.select_for_update(skip_locked=True, of=("self",))[:limit])
        return locked_levels_take(rows, now=now)


def _batches() -> bool:
    return connection.vendor == "postgresql"


def escalations_sweep(
    *, now: datetime | None = None, limit: int = SWEEP_BATCH, budget_seconds: float | None = None
) -> SweepResult:
    """Fire every level that is due and still pending (or whose claimer died).
    Stops after ``limit`` levels or the time budget, with ``more`` set so the
    caller can run again at once."""
    if budget_seconds is None:
        budget_seconds = settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    deadline = time.monotonic() + budget_seconds
    result = SweepResult()
    while True:
        current = now or timezone.now()
        if _batches():
            batch = _take_due_batch(current, limit=min(BATCH_SIZE, max(limit - result.handled, 1)))
            if not batch.taken:
                return result
            for outcome, count in taken_levels_fire(batch).items():
                result.outcomes[outcome] = result.outcomes.get(outcome, 0) + count
        else:
            row = _claim_next_due(current)
            if row is None:
                return result
            outcome = escalation_deliver_claimed(row, now=current)
            result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
        if result.handled >= limit or time.monotonic() > deadline:
            result.more = Escalation.objects.filter(_sweepable(now or timezone.now())).exists()
            return result


def escalation_fire_or_sweep(*, escalation_id: int, version: int, due_at: datetime | None = None
                             ) -> tuple[FireOutcome, SweepResult | None]:
    """A level's delayed task: fire it, or, if it is long overdue (so likely one of many, after an
    outage), sweep: the overdue levels fire in batches in due order, this one among them (it is
    due and pending, so this sweep or a concurrent one takes it). With the sweep's ``more`` set,
    the caller queues another sweep to go on. ``due_at``: the level's due time as queued, if the
    task carries it (a task on time then fires at once)."""
    now = timezone.now()
    if not _batches() or (due_at is not None and now - due_at <= CATCH_UP_AFTER):
        return escalation_fire(escalation_id=escalation_id, version=version, via=FiredVia.TASK), None
    # After an outage most tasks find their level fired by a batch, or long overdue: a look at the
    # row's state alone (no ticket, channel, tier or snapshot) tells them so, at a fraction of the cost.
    found = (Escalation.objects.filter(pk=escalation_id)
             .values_list("state", "version", "due_at", "not_before").first())
    if found is None:
        return FireOutcome.MISSING, None
    state, current, due_at, not_before = found
    if state != EscalationState.PENDING or current != version:
        return FireOutcome.STALE, None
    if now - due_at <= CATCH_UP_AFTER or (not_before and not_before > now):
        return escalation_fire(escalation_id=escalation_id, version=version, via=FiredVia.TASK), None
    return FireOutcome.OVERDUE, escalations_sweep()
