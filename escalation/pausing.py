"""Waiting on the customer: the clock of the ticket's current cycle stops, and starts again when
the customer writes (or the helpdesk ticket is open again, or someone presses Resume).

Pause, not reset: each pending level keeps the time it still had to wait, measured on its own
clock (open time under a business clock, calendar time for an outside-hours step), and is due
exactly that long after the resume; so does the cycle's breach time, if it had not passed. The
clock uses the tier's hours as they are now, as snoozes do (``planning.ticket_clock``). While
waiting, no level can fire: paused rows are not pending, so neither their (revoked, now stale)
tasks nor the sweeper touch them. Pauses can be repeated; each is a ``TicketPause`` row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from base.tasks_by_name import tasks_revoke_on_commit
from escalation.cycles import ticket_cycle_current
from escalation.lifecycle_requests import lifecycle_request_applied, lifecycle_request_take
from escalation.models import Escalation, LifecycleAction, TicketCycle, TicketPause, TicketSla
from escalation.planning import pause_remaining, resume_due, ticket_clock
from escalation.queueing import escalations_queue_within_horizon
from escalation.thread_state import ticket_thread_refresh
from escalation.transitions import EscalationState
from tickets.models import Ticket, TicketEventKind, TicketState
from tickets.timeline import timeline_record


@dataclass(frozen=True)
class LifecycleResult:
    """``changed``: this call paused (or resumed) the ticket; otherwise ``reason`` says why not."""

    changed: bool
    reason: str = ""
    due_times: dict[int, datetime] = field(default_factory=dict)


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update(of=("self",)).select_related("channel__tier").get(pk=ticket.pk)


def ticket_pause(
    *, ticket: Ticket, via: str, actor: str, at: datetime, request_key: str | None = None,
    now: datetime | None = None,
) -> LifecycleResult:
    """Mark the ticket waiting on the customer from ``at``: every pending level of its cycle
    stops with the time it still had."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(ticket)
        if locked.state != TicketState.ARMED:
            return LifecycleResult(False, f"ticket is {locked.state}")
        request = lifecycle_request_take(ticket=locked, key=request_key, action=LifecycleAction.PAUSE,
                                         actor=actor, at=now)
        if request is None:
            return LifecycleResult(False, "duplicate")
        Ticket.objects.mark_waiting(pk=locked.pk, at=at)
        lifecycle_request_applied(request)
        sla = TicketSla.objects.filter(ticket=locked).first()
        clock = ticket_clock(sla, tier=locked.channel.tier, now=at)
        remaining: dict[str, float] = {}
        old_task_ids = []
        for row in Escalation.objects.filter(ticket=locked, state=EscalationState.PENDING).order_by("level"):
            due = max(row.due_at, row.not_before or row.due_at)
            left = pause_remaining(clock=clock, due_at=due, paused_at=at, outside_hours=row.outside_hours)
            if Escalation.objects.pause(row, remaining=left):
                old_task_ids.append(row.celery_task_id)
                remaining[str(row.level)] = left.total_seconds()
        cycle = ticket_cycle_current(locked.pk)
        breach_left = None
        if cycle is not None and cycle.breach_at is not None and cycle.breach_at > at:
            breach_left = pause_remaining(clock=clock, due_at=cycle.breach_at, paused_at=at)
        TicketPause.objects.create(
            ticket=locked, cycle=cycle.number if cycle else 1, paused_at=at, paused_via=via, paused_by=actor,
            remaining=remaining, breach_remaining=breach_left,
        )
        timeline_record(ticket=locked, kind=TicketEventKind.PAUSED, at=at, actor=actor,
                        details={"via": via, "remaining": remaining,
                                 "cycle": cycle.number if cycle else 1})
        tasks_revoke_on_commit(old_task_ids)
        ticket_thread_refresh(ticket_id=locked.pk)
    ticket.state, ticket.waiting_since = TicketState.WAITING, at
    return LifecycleResult(True)


def ticket_resume(
    *, ticket: Ticket, via: str, actor: str, at: datetime, request_key: str | None = None,
    now: datetime | None = None,
) -> LifecycleResult:
    """The wait is over at ``at``: each paused level is due its remaining time after it, on its
    clock, and the cycle's breach time moves by the pause. A message written before the pause
    began does not end it."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(ticket)
        if locked.state != TicketState.WAITING:
            return LifecycleResult(False, f"ticket is {locked.state}")
        pause = TicketPause.objects.filter(ticket=locked, resumed_at__isnull=True).first()
        if pause is not None and at < pause.paused_at:
            return LifecycleResult(False, "written before the wait began")
        request = lifecycle_request_take(ticket=locked, key=request_key, action=LifecycleAction.RESUME,
                                         actor=actor, at=now)
        if request is None:
            return LifecycleResult(False, "duplicate")
        Ticket.objects.mark_resumed(pk=locked.pk)
        lifecycle_request_applied(request)
        sla = TicketSla.objects.filter(ticket=locked).first()
        clock = ticket_clock(sla, tier=locked.channel.tier, now=at)
        resumed: list[Escalation] = []
        for row in Escalation.objects.filter(ticket=locked, state=EscalationState.PAUSED).order_by("level"):
            due_at = resume_due(clock=clock, remaining=row.paused_remaining or timedelta(0), resumed_at=at,
                                outside_hours=row.outside_hours)
            if Escalation.objects.resume(row, due_at=due_at):
                row.state, row.due_at, row.version = EscalationState.PENDING, due_at, row.version + 1
                row.paused_remaining, row.celery_task_id, row.enqueued_for = None, "", None
                resumed.append(row)
        escalations_queue_within_horizon(resumed, now=now)
        details: dict = {"via": via, "due_times": {str(r.level): r.due_at.isoformat() for r in resumed}}
        if pause is not None:
            TicketPause.objects.end(pk=pause.pk, at=at, via=via, actor=actor)
            details["paused_for"] = (at - pause.paused_at).total_seconds()
            cycle = TicketCycle.objects.filter(ticket=locked, number=pause.cycle).first()
            if cycle is not None and pause.breach_remaining is not None:
                cycle.breach_at = resume_due(clock=clock, remaining=pause.breach_remaining, resumed_at=at)
                cycle.save(update_fields=["breach_at"])
                if cycle.number == 1 and sla is not None:
                    sla.breach_at = cycle.breach_at  # the ticket's first-response breach time
                    sla.save(update_fields=["breach_at"])
                details["breach_at"] = cycle.breach_at.isoformat()
        timeline_record(ticket=locked, kind=TicketEventKind.RESUMED, at=at, actor=actor, details=details)
        ticket_thread_refresh(ticket_id=locked.pk)
    ticket.state, ticket.waiting_since = TicketState.ARMED, None
    return LifecycleResult(True, due_times={row.level: row.due_at for row in resumed})
