"""The helpdesk's status drives the lifecycle of tickets in helpdesk channels (poll and webhook).

Only a *change* of status acts (``Ticket.helpdesk_status`` keeps the last one reported), so a
status the helpdesk keeps reporting never undoes what someone did in Slack since:

* solved or closed: the ticket is closed (escalation/closing.py);
* pending or on hold: waiting on the customer, the clock pauses (escalation/pausing.py);
* open again: a pause ends; after an answer (or a close), a ticket that goes from waiting (or
  closed) back to open has heard from the customer again: a next-response cycle starts.

The first status seen only closes or pauses: "open" is what an untouched ticket says anyway.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from base.helpdesk import CLOSED, OPEN, WAITING
from escalation.closing import ticket_close
from escalation.cycles import ticket_next_response_start
from escalation.pausing import ticket_pause, ticket_resume
from tickets.models import Ticket, TicketState, TicketVia


def ticket_helpdesk_status_apply(*, ticket: Ticket, status: str, actor: str, at: datetime,
                                 now: datetime | None = None) -> str:
    """Act on the helpdesk's status of ``ticket`` (open / waiting / closed). Returns what it did."""
    now = now or timezone.now()
    was = Ticket.objects.filter(pk=ticket.pk).values_list("helpdesk_status", flat=True).first()
    if was is None or was == status:
        return "unchanged"
    if not Ticket.objects.note_helpdesk_status(pk=ticket.pk, was=was, now=status):
        return "changed meanwhile"  # another poll or webhook saw this change and acts on it
    ticket.refresh_from_db()
    if status == CLOSED:
        changed = ticket_close(ticket=ticket, via=TicketVia.HELPDESK, actor=actor, at=at, now=now)
        return "closed" if changed else f"not closed: {ticket.state}"
    if status == WAITING:
        result = ticket_pause(ticket=ticket, via=TicketVia.HELPDESK, actor=actor, at=at, now=now)
        return "waiting" if result.changed else f"not paused: {result.reason}"
    if status != OPEN or not was:
        return "noted"
    if ticket.state == TicketState.WAITING:
        result = ticket_resume(ticket=ticket, via=TicketVia.HELPDESK, actor=actor, at=at, now=now)
        return "resumed" if result.changed else f"not resumed: {result.reason}"
    if ticket.state in (TicketState.RESPONDED, TicketState.CLOSED):
        started = ticket_next_response_start(ticket=ticket, request_key=None, message_ts="", actor=actor,
                                             at=at, now=now)
        return f"cycle {started.number}" if started.started else f"no cycle: {started.reason}"
    return "noted"
