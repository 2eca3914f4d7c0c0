"""A real response disarms a ticket for good: every pending level is cancelled and revoked,
and every page it sent outside Slack is resolved."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from base.tasks_by_name import tasks_revoke_on_commit
from escalation.models import Escalation
from escalation.paging import ticket_pages_resolve_record
from tickets.models import Ticket, TicketEventKind, TicketState
from tickets.timeline import timeline_record


def ticket_mark_responded(*, ticket: Ticket, path: str, actor: str, at: datetime) -> bool:
    """Record the response and cancel what is pending. Returns False if the
    ticket was already responded (nothing changes)."""
    with transaction.atomic():
        if not Ticket.objects.mark_responded(pk=ticket.pk, at=at, path=path, actor=actor):
            return False
        cancelled = Escalation.objects.cancel_pending(ticket_id=ticket.pk)
        ticket.state, ticket.responded_at = TicketState.RESPONDED, at
        ticket.response_path, ticket.responded_by = path, actor
        timeline_record(
            ticket=ticket,
            kind=TicketEventKind.RESPONDED,
            at=at,
            actor=actor,
            details={"path": path, "cancelled_levels": sorted(level for level, _ in cancelled)},
        )
        tasks_revoke_on_commit([task_id for _, task_id in cancelled])
        ticket_pages_resolve_record(ticket_id=ticket.pk)  # PagerDuty resolve, OnCall "ok", after commit
    return True
