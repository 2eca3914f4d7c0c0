"""The first-response target: when a ticket breaches, and how a message says so.

A ticket's breach time is set when it is armed (``TicketSla.breach_at``, on the
policy's clock; a wait on the customer moves it by the time left when the wait
began). It is breached when that time passed before its first response, before
it was closed without one, before a wait on the customer began (the clock stood
still), or before now while none of these happened. Tickets without a policy,
and tickets armed before breach times existed and never given one, are not
breaches. The admin's Breached filter and ``/metrics`` use this definition.
Next-response cycles keep their own breach times (``TicketCycle.breach_at``).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import DateTimeField, Exists, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from base.formatting import duration_text
from escalation.models import TicketCycle, TicketSla


def breached_q(now: datetime) -> Exists:
    """For a Ticket queryset: its breach time passed before its first response (or its close
    without one, or the wait on the customer it is in, or ``now``)."""
    first = TicketCycle.objects.filter(ticket=OuterRef(OuterRef("pk")), number=1)
    closed_unanswered = first.values("closed_at")
    deadline = Coalesce(OuterRef("responded_at"), Subquery(closed_unanswered[:1]), OuterRef("waiting_since"),
                        Value(now, output_field=DateTimeField()))
    return Exists(TicketSla.objects.filter(ticket=OuterRef("pk"), breach_at__lt=deadline))


def breach_text(breach_at: datetime | None, *, now: datetime) -> str:
    """'breached 12 min ago' or 'breaches in 5 min' (or that there is no target)."""
    if breach_at is None:
        return "has no first-response target"
    if breach_at <= now:
        return f"breached {duration_text(now - breach_at)} ago"
    return f"breaches in {duration_text(breach_at - now)}"
