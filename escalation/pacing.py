"""A level takes its channel's turn before it posts (base/channel_pacing.py).

It asks right before the post (claimed, its message recorded), so that the
turn is taken when the post leaves: asked earlier, on a busy worker the time
between "go" and the post varied by seconds and posts clumped into 429s. A
level told to wait is released and holds no worker: pending again, not before
its turn (the sweeper leaves it alone until then), with a delayed task for
that time. Coming back, it finds the slot it was given and posts at once.
Page steps page first and are not paced (a page must not wait behind
the channel's posts); their "paged" message in the thread may then meet a
429, which is honoured by rescheduling like any other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from base.channel_pacing import channel_turn, channel_turn_done, channel_turns
from escalation.keys import post_key
from escalation.models import Escalation
from escalation.queueing import escalation_queue, escalation_task_id, escalation_task_send, horizon
from escalation.transitions import EscalationState
from tickets.models import Ticket

WAIT_ERROR = "waiting for the channel's turn"


def level_turn_wait(row: Escalation, *, ticket: Ticket) -> float:
    """Seconds this level's post must wait for its channel's turn (0: now)."""
    key = post_key(ticket_id=row.ticket_id, level=row.level, cycle=row.cycle)
    return channel_turn(channel=ticket.channel.slack_channel_id, key=key)


def level_turn_done(row: Escalation, *, ticket: Ticket) -> None:
    """The level's post has gone (or will not go now): the channel's later turns need not wait for it."""
    channel_turn_done(channel=ticket.channel.slack_channel_id,
                      key=post_key(ticket_id=row.ticket_id, level=row.level, cycle=row.cycle))


def levels_turn_waits(levels: list[tuple[Escalation, Ticket]]) -> list[float]:
    """``level_turn_wait`` for several levels in one round trip, asked in the order given."""
    return channel_turns([(ticket.channel.slack_channel_id,
                           post_key(ticket_id=row.ticket_id, level=row.level, cycle=row.cycle))
                          for row, ticket in levels])


def claimed_levels_wait_for_turns(waits: list[tuple[Escalation, float]], *, now: datetime
                                  ) -> list[Escalation]:
    """``claimed_level_wait_for_turn`` for many levels in one statement, each with its delayed
    task for its turn (a turn beyond the horizon is left to the horizon job). Returns those
    released; if one of the claims ran out meanwhile, each is released on its own instead."""
    released = [(row, now + timedelta(seconds=wait)) for row, wait in waits]
    queued = [(row, at, escalation_task_id() if at <= now + horizon() else "") for row, at in released]
    try:
        with transaction.atomic():
            if Escalation.objects.release_for_turn_many(queued, error=WAIT_ERROR) != len(queued):
                raise _ClaimChanged
            for row, at, task_id in queued:
                row.state, row.version, row.not_before = EscalationState.PENDING, row.version + 1, at
                row.celery_task_id, row.enqueued_for = task_id, row.due_at if task_id else None
                if task_id:
                    escalation_task_send(row, task_id=task_id, at=at)
    except _ClaimChanged:
        return [row for row, wait in waits if claimed_level_wait_for_turn(row, wait=wait, now=now)]
    return [row for row, _ in waits]


class _ClaimChanged(Exception):
    """A level of a batch is no longer ours as claimed: the batch's statement is rolled back."""


def claimed_level_wait_for_turn(row: Escalation, *, wait: float, now: datetime) -> bool:
    """The same for a level the sweeper claimed: release it, pending until its turn."""
    at = now + timedelta(seconds=wait)
    with transaction.atomic():
        if not Escalation.objects.release_for_turn(row, not_before=at, error=WAIT_ERROR):
            return False
        row.state, row.version, row.not_before = EscalationState.PENDING, row.version + 1, at
        if at <= now + horizon():
            escalation_queue(row, at=at)
    return True
