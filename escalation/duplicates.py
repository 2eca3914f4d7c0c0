"""The second look after a post that followed an ambiguous attempt: a duplicate never stays.

A post that timed out (or got a 5xx, or lost its connection) may still land in Slack after
the retry has looked in the thread and posted. ``base.outbox`` marks such a message for a
second look (``verify_at``); this runs it (a task queued for that moment, and the beat job
"escalation: check for duplicate posts" for anything the task missed), deletes every later
message with the same key, keeps the earliest, points the level (and its thread-state
update) at the message that stays, and writes the deletion into the ticket's timeline.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from base.models import OutboxMessage, OutboxPurpose
from base.outbox import DuplicateCheck, outbox_duplicates_check, outbox_duplicates_due
from base.tasks_by_name import task_send
from escalation.models import Escalation
from escalation.thread_state import update_key
from tickets.models import Ticket, TicketEventKind
from tickets.timeline import timeline_record

logger = logging.getLogger("slabuddy.escalation")

CHECK_TASK = "escalation.tasks.outbox_duplicates_check"


def outbox_duplicates_check_queue(*, message_id: int, at: datetime | None) -> None:
    """Queue the second look for ``at`` (the outbox's ``verify_at``); the beat job is the fallback."""
    if at is not None:
        task_send(CHECK_TASK, args=(message_id,), eta=at,
                  why_safe="the beat job 'check for duplicate posts' runs it")


def _ticket_of(message: OutboxMessage) -> Ticket | None:
    tickets = Ticket.objects.filter(channel__slack_channel_id=message.channel, slack_ts=message.thread_ts)
    return tickets.first()


def _settle(check: DuplicateCheck, *, now: datetime) -> None:
    """Record what the check deleted, and point whatever referred to a deleted message at the kept one."""
    if not check.deleted:
        return
    message = check.message
    payload = message.payload or {}
    with transaction.atomic():
        if message.purpose == OutboxPurpose.ESCALATION and payload.get("ticket") and payload.get("level"):
            Escalation.objects.repoint_message(
                ticket_id=payload["ticket"], level=payload["level"], cycle=payload.get("cycle", 1),
                deleted=list(check.deleted), kept=check.kept_ts,
            )
        OutboxMessage.objects.filter(key=update_key(message.key), slack_ts__in=check.deleted).update(
            slack_ts=check.kept_ts, updated_at=now
        )
        ticket = _ticket_of(message)
        if ticket is not None:
            timeline_record(
                ticket=ticket, kind=TicketEventKind.DUPLICATE_DELETED, at=now,
                level=payload.get("level") if message.purpose == OutboxPurpose.ESCALATION else None,
                details={"key": message.key, "kept_ts": check.kept_ts, "deleted_ts": list(check.deleted)},
            )


def outbox_duplicate_check_one(*, message_id: int, now: datetime | None = None) -> DuplicateCheck | None:
    message = OutboxMessage.objects.filter(pk=message_id).first()
    if message is None:
        return None
    now = now or timezone.now()
    check = outbox_duplicates_check(message, now=now)
    _settle(check, now=now)
    return check


def outbox_duplicates_check_due(*, now: datetime | None = None) -> dict[str, int]:
    """Run every second look that is due (the beat job). Returns how many ended how."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for message in outbox_duplicates_due(now=now):
        check = outbox_duplicates_check(message, now=now)
        _settle(check, now=now)
        counts[check.status] = counts.get(check.status, 0) + 1
    return counts
