"""Snooze: an engineer's @mention (or the Snooze button) moves every pending level later, once per request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from base.formatting import duration_text
from base.tasks_by_name import tasks_revoke_on_commit
from escalation.clock import Clock
from escalation.cycles import ticket_cycle_current
from escalation.models import DEFAULT_SNOOZE_MINUTES, Escalation, SnoozeRequest, TicketCycle, TicketSla
from escalation.planning import level_clock, ticket_clock
from escalation.queueing import escalations_queue_within_horizon
from escalation.thread_state import ticket_thread_refresh
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
    refused: str = ""  # why it did not snooze: the policy's maximum total snooze was reached
    debounced: bool = False  # the same person snoozed this ticket seconds ago: counted once


def _pending_due_times(ticket_id: int) -> dict[int, datetime]:
    return dict(
        Escalation.objects.filter(ticket_id=ticket_id, state=EscalationState.PENDING)
        .order_by("level")
        .values_list("level", "due_at")
    )


# Two snoozes of one ticket by the same person this close together are one (a double click).
SNOOZE_DEBOUNCE = timedelta(seconds=10)
SNOOZE_DEBOUNCE_REFUSAL = "a second snooze by the same person within seconds"  # recorded on the request


def ticket_snooze_minutes(ticket_id: int) -> int:
    """The snooze of the policy the ticket was armed with (its snapshot)."""
    minutes = TicketSla.objects.filter(ticket_id=ticket_id).values_list("snooze_minutes", flat=True).first()
    return minutes or DEFAULT_SNOOZE_MINUTES


def ticket_snooze(
    *, ticket: Ticket, request_key: str, actor: str, now: datetime | None = None, debounce: bool = False
) -> SnoozeResult:
    """Move every pending level by the ticket's snooze minutes, once per request key.
    ``debounce`` (the Snooze button): a second press by the same person within
    ``SNOOZE_DEBOUNCE`` counts once. Past the policy's maximum total snooze, nothing moves."""
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
        sla = TicketSla.objects.filter(ticket=locked).first()
        earlier = SnoozeRequest.objects.filter(ticket=locked, applied=True).exclude(pk=request.pk)
        if debounce and earlier.filter(actor=actor, at__gt=now - SNOOZE_DEBOUNCE, at__lte=now).exists():
            _refuse(request, SNOOZE_DEBOUNCE_REFUSAL)
            return SnoozeResult(False, True, minutes, _pending_due_times(locked.pk), debounced=True)
        refused = _over_the_limit(sla, snoozed=earlier.count() * timedelta(minutes=minutes),
                                  more=timedelta(minutes=minutes))
        if refused:
            _refuse(request, refused)
            return SnoozeResult(False, False, minutes, _pending_due_times(locked.pk), refused=refused)
        delta = timedelta(minutes=minutes)
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
        breach_moved = _breach_extend(sla, ticket_id=locked.pk, clock=clock, by=delta, now=now)
        due_times = {row.level: row.due_at for row in sorted(moved, key=lambda r: r.level)}
        request.applied = bool(moved) or breach_moved
        request.due_times = {str(level): at.isoformat() for level, at in due_times.items()}
        request.save(update_fields=["applied", "due_times"])
        if request.applied:
            details = {"minutes": minutes, "request_key": request_key, "due_times": request.due_times}
            if breach_moved:
                details["breach_at"] = breach_moved.isoformat()
            timeline_record(ticket=locked, kind=TicketEventKind.SNOOZED, at=now, actor=actor, details=details)
            ticket_thread_refresh(ticket_id=locked.pk)  # "Snoozed by @Amy, next level at …"
        tasks_revoke_on_commit(old_task_ids)
    cycle = ticket_cycle_current(locked.pk)
    breach_at = cycle.breach_at if cycle is not None else (sla.breach_at if sla else None)
    return SnoozeResult(request.applied, False, minutes, due_times, breach_at)


def _refuse(request: SnoozeRequest, why: str) -> None:
    request.refused = why[:200]
    request.save(update_fields=["refused"])


def _over_the_limit(sla: TicketSla | None, *, snoozed: timedelta, more: timedelta) -> str:
    """Why one more snooze would pass the policy's maximum total snooze ('' if it would not)."""
    limit = sla.max_total_snooze if sla is not None else None
    if limit is None or snoozed + more <= limit:
        return ""
    return (f"this ticket has been snoozed for {duration_text(snoozed)} in total, and its policy allows "
            f"at most {duration_text(limit)}")


def _breach_extend(sla: TicketSla | None, *, ticket_id: int, clock: Clock, by: timedelta, now: datetime
                   ) -> datetime | None:
    """Move the current cycle's breach time by the snooze, if the policy said snoozes extend the
    target (the ticket's too, for the first response). A breach that already happened stays."""
    if sla is None or not sla.snoozes_extend_target:
        return None
    cycle = ticket_cycle_current(ticket_id)
    current = cycle.breach_at if cycle is not None else sla.breach_at
    if current is None or current <= now:
        return None
    moved = clock.add(current, by)
    if cycle is not None:
        TicketCycle.objects.filter(pk=cycle.pk).update(breach_at=moved)
    if cycle is None or cycle.number == 1:
        sla.breach_at = moved
        sla.save(update_fields=["breach_at"])
    return moved
