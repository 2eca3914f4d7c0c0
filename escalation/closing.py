"""Closed without a (further) reply: the helpdesk solved or closed it, its Slack message was
deleted, a roster engineer reacted with the close emoji or pressed Close.

Nothing more escalates: every level still to fire is cancelled and revoked, pages are
resolved, the thread's escalation messages say how and by whom. A close is nobody's response:
the ticket keeps no response time, and its cycle records the close instead (reports count
closes separately). A customer who writes again reopens the ticket into a next-response cycle
(escalation/cycles.py).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from base.tasks_by_name import tasks_revoke_on_commit
from escalation.cycles import ticket_cycle_current
from escalation.lifecycle_requests import lifecycle_request_applied, lifecycle_request_take
from escalation.models import Escalation, LifecycleAction, TicketCycle, TicketPause
from escalation.paging import ticket_pages_resolve_record
from escalation.thread_state import ticket_thread_refresh
from tickets.models import Ticket, TicketEventKind, TicketState, TicketVia
from tickets.timeline import timeline_record


def ticket_close(
    *, ticket: Ticket, via: str, actor: str, at: datetime, request_key: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Close the ticket (armed, waiting or answered). Returns False if nothing changed: already
    closed, never armed, or the same request (``request_key``) seen before."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Ticket.objects.select_for_update(of=("self",)).select_related("channel").get(pk=ticket.pk)
        if locked.state not in (TicketState.ARMED, TicketState.WAITING, TicketState.RESPONDED):
            return False
        request = lifecycle_request_take(ticket=locked, key=request_key, action=LifecycleAction.CLOSE,
                                         actor=actor, at=now)
        if request is None:
            return False
        was = locked.state
        if not Ticket.objects.mark_closed(pk=locked.pk, at=at, via=via, actor=actor):
            return False
        lifecycle_request_applied(request)
        cancelled = Escalation.objects.cancel_pending(ticket_id=locked.pk)
        cycle = ticket_cycle_current(locked.pk)
        if cycle is not None:
            TicketCycle.objects.end_closed(pk=cycle.pk, at=at, via=via, actor=actor)
        for pause in TicketPause.objects.filter(ticket_id=locked.pk, resumed_at__isnull=True):
            TicketPause.objects.end(pk=pause.pk, at=at, via=TicketVia.CLOSE, actor=actor)
        details = {"via": via, "cancelled_levels": sorted(level for level, _ in cancelled),
                   "without_reply": was != TicketState.RESPONDED}
        if cycle is not None:
            details["cycle"] = cycle.number
        timeline_record(ticket=locked, kind=TicketEventKind.CLOSED, at=at, actor=actor, details=details)
        tasks_revoke_on_commit([task_id for _, task_id in cancelled])
        ticket_pages_resolve_record(ticket_id=locked.pk, why="Closed")
        ticket_thread_refresh(ticket_id=locked.pk)
    ticket.state, ticket.closed_at, ticket.closed_via, ticket.closed_by = TicketState.CLOSED, at, via, actor
    return True
