"""Snooze: an engineer's @mention (or the Snooze button) moves every pending level later, once per request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from base.tasks_by_name import tasks_revoke_on_commit
from escalation.clock import Clock
from escalation.models import DEFAULT_SNOOZE_MINUTES, Escalation, SnoozeRequest, TicketSla
from escalation.planning import level_clock, ticket_clock
from escalation.queueing import escalations_queue_within_horizon
from escalation.transitions import EscalationState
from tickets.models import Ticket, TicketEventKind, TicketState
from tickets.timeline import timeline_record


@dataclass(frozen=True)
class SnoozeResult:
    """``applied``: this call moved at least one pending level. ``duplicate``:
    the request key was seen before (nothing changed). ``due_times``: level ->
    due time of every pending level after the call, for the reply in Slack."""

    applied: bool
    duplicate: bool
    snooze_minutes: int
    due_times: dict[int, datetime] = field(default_factory=dict)
    breach_at: datetime | None = None  # the ticket's breach time after the call


def _pending_due_times(ticket_id: int) -> dict[int, datetime]:
    return dict(
        Escalation.objects.filter(ticket_id=ticket_id, state=EscalationState.PENDING)
        .order_by("level")
        .values_list("level", "due_at")
    )


def ticket_snooze_minutes(ticket_id: int) -> int:
    """The snooze of the policy the ticket was armed with (its snapshot)."""
    minutes = TicketSla.objects.filter(ticket_id=ticket_id).values_list("snooze_minutes", flat=True).first()
    return minutes or DEFAULT_SNOOZE_MINUTES


def ticket_snooze(
    *, ticket: Ticket, request_key: str, actor: str, now: datetime | None = None
) -> SnoozeResult:
    """Move every pending level by the ticket's snooze minutes, once per request key."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            Ticket.objects.select_for_update(of=("self",)).select_related("channel__tier").get(pk=ticket.pk)
        )
        minutes = ticket_snooze_minutes(locked.pk)
        try:
            with transaction.atomic():
                request = SnoozeRequest.objects.create(
                    request_key=request_key, ticket=locked, actor=actor, at=now
                )
        except IntegrityError:
            # The same Slack request again (Slack sends a mention as both app_mention
            # and message): report what the first delivery did, so either reply reads the same.
            first = SnoozeRequest.objects.filter(request_key=request_key).first()
            if first is not None and first.applied:
                stored = {int(level): datetime.fromisoformat(at) for level, at in first.due_times.items()}
                return SnoozeResult(False, True, minutes, stored)
            return SnoozeResult(False, True, minutes, _pending_due_times(locked.pk))
        if locked.state != TicketState.ARMED:
            return SnoozeResult(False, False, minutes, {})
        delta = timedelta(minutes=minutes)
        sla = TicketSla.objects.filter(ticket=locked).first()
        clock = ticket_clock(sla, tier=locked.channel.tier, now=now)
        moved: list[Escalation] = []
        old_task_ids: list[str] = []
        for row in Escalation.objects.filter(ticket=locked, state=EscalationState.PENDING):
            # Each level moves on the clock it counts on: open time, or calendar time if outside_hours.
            due_at = level_clock(clock, outside_hours=row.outside_hours).add(row.due_at, delta)
            if Escalation.objects.postpone(row, to=due_at):
                old_task_ids.append(row.celery_task_id)
                row.due_at = due_at
                row.version += 1
                row.celery_task_id, row.enqueued_for = "", None
                moved.append(row)
        escalations_queue_within_horizon(moved, now=now)
        breach_moved = _breach_extend(sla, clock=clock, by=delta, now=now)
        due_times = {row.level: row.due_at for row in sorted(moved, key=lambda r: r.level)}
        request.applied = bool(moved) or breach_moved
        request.due_times = {str(level): at.isoformat() for level, at in due_times.items()}
        request.save(update_fields=["applied", "due_times"])
        if request.applied:
            details = {"minutes": minutes, "request_key": request_key, "due_times": request.due_times}
            if breach_moved:
                details["breach_at"] = sla.breach_at.isoformat()
            timeline_record(ticket=locked, kind=TicketEventKind.SNOOZED, at=now, actor=actor, details=details)
        tasks_revoke_on_commit(old_task_ids)
    return SnoozeResult(request.applied, False, minutes, due_times, sla.breach_at if sla else None)


def _breach_extend(sla: TicketSla | None, *, clock: Clock, by: timedelta, now: datetime) -> bool:
    """Move the breach time by the snooze, if the policy said snoozes extend the target.
    A breach that already happened stays where it was."""
    if sla is None or not sla.snoozes_extend_target or sla.breach_at is None or sla.breach_at <= now:
        return False
    sla.breach_at = clock.add(sla.breach_at, by)
    sla.save(update_fields=["breach_at"])
    return True
