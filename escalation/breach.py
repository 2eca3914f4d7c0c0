"""The first-response target: when a ticket breaches, and how a message says so.

A ticket's breach time is set when it is armed (``TicketSla.breach_at``, on the
policy's clock; a wait on the customer moves it by the time left when the wait
began). It is breached when that time passed before its first response, before
it was closed without one, before a wait on the customer began (the clock stood
still), or before now while none of these happened. Tickets without a policy,
and tickets armed before breach times existed and never given one, are not
breaches. The admin's Breached filter and ``/metrics`` use this definition.
Next-response cycles keep their own breach times (``TicketCycle.breach_at``).

A response is ON TIME when it came at or before the breach time: the breach time
itself is still in time, a target passes only after it. ``on_time`` (one response,
in Python: the replay) and ``on_time_q`` (a condition on rows: the SLA report and
``/metrics``) are that one definition; ``breached_q`` is its other side.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import DateTimeField, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from base.formatting import duration_text
from escalation.models import TicketCycle, TicketSla


def on_time(responded_at: datetime, breach_at: datetime) -> bool:
    """A response at ``responded_at`` met a target that passes after ``breach_at`` (that instant is met)."""
    return responded_at <= breach_at


def on_time_q(*, responded_at: str = "responded_at", breach_at: str = "sla__breach_at") -> Q:
    """``on_time`` as a condition on rows (a Ticket's first response and snapshot by default; a
    TicketCycle's own fields with ``breach_at="breach_at"``): answered, with a breach time, on time."""
    return Q(**{f"{responded_at}__isnull": False, f"{breach_at}__gte": F(responded_at)})


def answered_with_target_q(*, responded_at: str = "responded_at", breach_at: str = "sla__breach_at") -> Q:
    """Answered and with a breach time: the tickets (or cycles) attainment is counted over."""
    return Q(**{f"{responded_at}__isnull": False, f"{breach_at}__isnull": False})


def passed_before_q(deadline, *, breach_at: str = "sla__breach_at") -> Q:
    """The breach time passed before ``deadline`` (an expression): not on time by it (see ``on_time``)."""
    return Q(**{f"{breach_at}__lt": deadline})


def breached_q(now: datetime) -> Exists:
    """For a Ticket queryset: its breach time passed before its first response (or its close
    without one, or the wait on the customer it is in, or ``now``)."""
    first = TicketCycle.objects.filter(ticket=OuterRef(OuterRef("pk")), number=1)
    closed_unanswered = first.values("closed_at")
    deadline = Coalesce(OuterRef("responded_at"), Subquery(closed_unanswered[:1]), OuterRef("waiting_since"),
                        Value(now, output_field=DateTimeField()))
    passed = passed_before_q(deadline, breach_at="breach_at")
    return Exists(TicketSla.objects.filter(passed, ticket=OuterRef("pk")))


def breach_text(breach_at: datetime | None, *, now: datetime) -> str:
    """'breached 12 min ago' or 'breaches in 5 min' (or that there is no target)."""
    if breach_at is None:
        return "has no first-response target"
    if breach_at <= now:
        return f"breached {duration_text(now - breach_at)} ago"
    return f"breaches in {duration_text(breach_at - now)}"
