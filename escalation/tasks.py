"""Thin Celery tasks: load by id, call a service. Routed to the ``escalation`` queue.

The engine sends them by name (escalation/queueing.py), so it never imports this module.
"""

from __future__ import annotations

from datetime import UTC, datetime

from celery import shared_task

from escalation.duplicates import CHECK_TASK, outbox_duplicate_check_one, outbox_duplicates_check_due
from escalation.paging import RESOLVE_TASK, pages_resolve_pending
from escalation.paging import ticket_pages_resolve as resolve
from escalation.queueing import escalations_enqueue_horizon as enqueue_horizon
from escalation.queueing import escalations_requeue_horizon as requeue_horizon
from escalation.sweeping import escalation_fire_or_sweep as fire_or_sweep
from escalation.sweeping import escalations_sweep as sweep
from escalation.thread_state import UPDATE_TASK, thread_updates_send_pending
from escalation.thread_state import ticket_thread_updates_send as send_thread_updates


@shared_task(name="escalation.tasks.escalation_fire", ignore_result=True)
def escalation_fire(escalation_id: int, version: int, due: float | None = None) -> str:
    """The delayed task of one level (``due``: its due time, epoch seconds; absent from tasks
    queued before it was sent). A duplicate, stale or early one does nothing; a long overdue
    one sweeps (the overdue levels fire in batches), and a backlog goes on at once."""
    due_at = datetime.fromtimestamp(due, tz=UTC) if due is not None else None
    outcome, sweep_result = fire_or_sweep(escalation_id=escalation_id, version=version, due_at=due_at)
    if sweep_result is not None and sweep_result.more:
        escalations_sweep.delay()
    return str(outcome)


@shared_task(name="escalation.tasks.escalations_sweep", ignore_result=True)
def escalations_sweep() -> dict[str, int]:
    """Beat: fire every due, still-pending level, whatever happened to its task."""
    result = sweep()
    if result.more:
        # A backlog (after a broker flush, say): continue at once, possibly on another worker.
        escalations_sweep.delay()
    return {str(outcome): n for outcome, n in result.outcomes.items()}


@shared_task(name="escalation.tasks.escalations_enqueue_horizon", ignore_result=True)
def escalations_enqueue_horizon() -> int:
    """Beat: give levels that have come within the horizon their delayed task."""
    return enqueue_horizon()


@shared_task(name=RESOLVE_TASK, bind=True, ignore_result=True, max_retries=30)
def ticket_pages_resolve(self, ticket_id: int) -> dict[str, int]:
    """After a response: resolve the ticket's pages. One still being sent is waited for;
    a rate limit or an outage is left to the beat job 'resolve pages'."""
    result = resolve(ticket_id=ticket_id)
    if result.waiting:
        raise self.retry(countdown=5)
    return vars(result)


@shared_task(name="escalation.tasks.pages_resolve_pending", ignore_result=True)
def pages_resolve_pending_job() -> dict[str, int]:
    """Beat: send every resolve still waiting, whatever happened to its task."""
    return vars(pages_resolve_pending())


@shared_task(name="escalation.tasks.escalations_requeue_horizon", ignore_result=True)
def escalations_requeue_horizon() -> int:
    """A worker (re)connected to the broker: the delayed tasks it held are gone; queue them anew."""
    return requeue_horizon()


@shared_task(name=UPDATE_TASK, bind=True, ignore_result=True, max_retries=20)
def ticket_thread_updates_send(self, ticket_id: int) -> dict:
    """After a state change: update the ticket's escalation messages (chat.update). A rate limit
    or an outage is retried here, and the beat job 'update threads' catches what this misses."""
    result = send_thread_updates(ticket_id=ticket_id)
    if result.retry:
        raise self.retry(countdown=max(2, int(result.retry_after) or 5))
    return vars(result)


@shared_task(name="escalation.tasks.thread_updates_send_pending", ignore_result=True)
def thread_updates_send_pending_job() -> dict:
    """Beat: send every thread update still due, whatever happened to its task."""
    return vars(thread_updates_send_pending())


@shared_task(name=CHECK_TASK, ignore_result=True)
def outbox_duplicates_check(message_id: int) -> str:
    """The second look after a post that followed an ambiguous attempt: delete a later duplicate."""
    check = outbox_duplicate_check_one(message_id=message_id)
    return str(check.status) if check else "missing"


@shared_task(name="escalation.tasks.outbox_duplicates_check_due", ignore_result=True)
def outbox_duplicates_check_due_job() -> dict[str, int]:
    """Beat: every second look that is due, whatever happened to its task."""
    return {str(k): v for k, v in outbox_duplicates_check_due().items()}
