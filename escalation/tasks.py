"""Thin Celery tasks: load by id, call a service. Routed to the ``escalation`` queue."""

from __future__ import annotations

from celery import shared_task

from escalation import services
from escalation.models import FiredVia


@shared_task(name="escalation.tasks.escalation_fire", ignore_result=True)
def escalation_fire(escalation_id: int, version: int) -> str:
    """The delayed task of one level. A duplicate, stale or early one does nothing."""
    return services.escalation_fire(escalation_id=escalation_id, version=version, via=FiredVia.TASK)


@shared_task(name="escalation.tasks.escalations_sweep", ignore_result=True)
def escalations_sweep() -> dict[str, int]:
    """Beat: fire every due, still-pending level, whatever happened to its task."""
    result = services.escalations_sweep()
    if result.more:
        # A backlog (after a broker flush, say): continue at once, possibly on another worker.
        escalations_sweep.delay()
    return result.outcomes


@shared_task(name="escalation.tasks.escalations_enqueue_horizon", ignore_result=True)
def escalations_enqueue_horizon() -> int:
    """Beat: give levels that have come within the horizon their delayed task."""
    return services.escalations_enqueue_horizon()
