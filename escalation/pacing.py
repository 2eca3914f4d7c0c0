"""A level takes its channel's turn before it posts (base/channel_pacing.py).

A level told to wait is not claimed and holds no worker: it stays pending,
not before its turn (so the sweeper leaves it alone until then), with a
delayed task for that time. Coming back, it finds the slot it was given and
posts at once. A level the sweeper had already claimed is released the same
way. Page steps page first and are not paced (a page must not wait behind
the channel's posts); their "paged" message in the thread may then meet a
429, which is honoured by rescheduling like any other.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import transaction

from base.channel_pacing import channel_turn
from base.tasks_by_name import task_send_on_commit
from escalation.keys import post_key
from escalation.models import Escalation
from escalation.queueing import FIRE_TASK, escalation_queue, horizon
from escalation.transitions import EscalationState
from tickets.models import Ticket

WAIT_ERROR = "waiting for the channel's turn"


def level_turn_wait(row: Escalation, *, ticket: Ticket) -> float:
    """Seconds this level's post must wait for its channel's turn (0: now)."""
    key = post_key(ticket_id=row.ticket_id, level=row.level, cycle=row.cycle)
    return channel_turn(channel=ticket.channel.slack_channel_id, key=key)


def level_wait_for_turn(row: Escalation, *, wait: float, now: datetime) -> bool:
    """Leave a pending level until its turn, with a task for then. False if it changed meanwhile."""
    at = now + timedelta(seconds=wait)
    task_id = str(uuid.uuid4())
    with transaction.atomic():
        if not Escalation.objects.wait_for_turn(row, not_before=at, task_id=task_id):
            return False
        task_send_on_commit(FIRE_TASK, args=(row.pk, row.version), task_id=task_id, eta=at,
                            why_safe="the sweeper fires it at its turn")
    return True


def claimed_level_wait_for_turn(row: Escalation, *, wait: float, now: datetime) -> bool:
    """The same for a level the sweeper claimed: release it, pending until its turn."""
    at = now + timedelta(seconds=wait)
    with transaction.atomic():
        if not Escalation.objects.release_for_retry(row, not_before=at, error=WAIT_ERROR):
            return False
        row.state, row.version, row.not_before = EscalationState.PENDING, row.version + 1, at
        if at <= now + horizon():
            escalation_queue(row, at=at)
    return True
