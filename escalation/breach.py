"""The first-response target: when a ticket breaches, and how a message says so.

A ticket's breach time is set when it is armed (``TicketSla.breach_at``, on the
policy's clock). It is breached when that time passed before its first
response, or before now while no response came. Tickets without a policy,
and tickets armed before breach times existed and never given one, are not
breaches. The admin's Breached filter and ``/metrics`` use this definition.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import DateTimeField, Exists, OuterRef, Value
from django.db.models.functions import Coalesce

from base.formatting import duration_text
from escalation.models import TicketSla


def breached_q(now: datetime) -> Exists:
    """For a Ticket queryset: its breach time passed before its response (or before ``now``)."""
    deadline = Coalesce(OuterRef("responded_at"), Value(now, output_field=DateTimeField()))
    return Exists(TicketSla.objects.filter(ticket=OuterRef("pk"), breach_at__lt=deadline))


def breach_text(breach_at: datetime | None, *, now: datetime) -> str:
    """'breached 12 min ago' or 'breaches in 5 min' (or that there is no target)."""
    if breach_at is None:
        return "has no first-response target"
    if breach_at <= now:
        return f"breached {duration_text(now - breach_at)} ago"
    return f"breaches in {duration_text(breach_at - now)}"
