"""A real response disarms the ticket's current cycle for good: every level still to fire
(pending, or paused while waiting) is cancelled and revoked, every page it sent outside Slack
is resolved, and the thread's escalation messages say who answered."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from base.tasks_by_name import tasks_revoke_on_commit
from escalation.cycles import ticket_cycle_current
from escalation.models import Escalation, TicketCycle, TicketPause
from escalation.paging import ticket_pages_resolve_record
from escalation.thread_state import ticket_thread_refresh
from tickets.models import Ticket, TicketEventKind, TicketState, TicketVia
from tickets.timeline import timeline_record


def ticket_mark_responded(*, ticket: Ticket, path: str, actor: str, at: datetime) -> bool:
    """Record the response of the current cycle and cancel what is still to fire. Returns False
    if nothing changed: the ticket was already responded (or closed), or, in a next-response
    cycle, the reply is older than the customer's message that started it (an earlier answer)."""
    with transaction.atomic():
        cycle = ticket_cycle_current(ticket.pk)
        if cycle is not None and cycle.number > 1 and at < cycle.started_at:
            return False
        if not Ticket.objects.mark_responded(pk=ticket.pk, at=at, path=path, actor=actor):
            return False
        cancelled = Escalation.objects.cancel_pending(ticket_id=ticket.pk)
        ticket.state = TicketState.RESPONDED
        ticket.waiting_since = None
        if ticket.responded_at is None:
            ticket.responded_at, ticket.response_path, ticket.responded_by = at, path, actor
        if cycle is not None:
            TicketCycle.objects.end_responded(pk=cycle.pk, at=at, path=path, actor=actor)
        for pause in TicketPause.objects.filter(ticket_id=ticket.pk, resumed_at__isnull=True):
            TicketPause.objects.end(pk=pause.pk, at=at, via=TicketVia.RESPONSE, actor=actor)
        details = {"path": path, "cancelled_levels": sorted(level for level, _ in cancelled)}
        if cycle is not None and cycle.number > 1:
            details["cycle"] = cycle.number
        timeline_record(ticket=ticket, kind=TicketEventKind.RESPONDED, at=at, actor=actor, details=details)
        tasks_revoke_on_commit([task_id for _, task_id in cancelled])
        ticket_pages_resolve_record(ticket_id=ticket.pk)  # PagerDuty resolve, OnCall "ok", after commit
        ticket_thread_refresh(ticket_id=ticket.pk)  # "Answered by @Alice after 14 min", after commit
    return True
