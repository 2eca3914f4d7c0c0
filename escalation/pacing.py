"""A level takes its channel's turn before it posts (base/channel_pacing.py).

It asks right before its claim and post (its message drafted), so that the
turn is taken when the post leaves: asked earlier, on a busy worker the time
between "go" and the post varied by seconds and posts clumped into 429s. A
level told to wait stays pending (a claimed one the sweeper took is released)
and holds no worker, not before
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


def level_turn_wait(row: Escalation, *, ticket: Ticket, at: datetime | None = None) -> float:
    """Seconds this level's post must wait for its channel's turn (0: now), counted from ``at``
    (default now): a task that came early asks for the moment it will post."""
    key = post_key(ticket_id=row.ticket_id, level=row.level, cycle=row.cycle)
    return channel_turn(channel=ticket.channel.slack_channel_id, key=key, now=at.timestamp() if at else None)


def level_turn_done(row: Escalation, *, ticket: Ticket) -> None:
    """The level's post has gone (or will not go now): the channel's later turns need not wait for it."""
    channel_turn_done(channel=ticket.channel.slack_channel_id,
                      key=post_key(ticket_id=row.ticket_id, level=row.level, cycle=row.cycle))


def levels_turn_waits(levels: list[tuple[Escalation, Ticket]]) -> list[float]:
    """``level_turn_wait`` for several levels in one round trip, asked in the order given."""
    return channel_turns([(ticket.channel.slack_channel_id,
                           post_key(ticket_id=row.ticket_id, level=row.level, cycle=row.cycle))
                          for row, ticket in levels])


def locked_levels_wait_for_turns(waits: list[tuple[Escalation, float]], *, now: datetime) -> None:
    """Due levels the caller has locked wait, pending, for their channels' turns, in one
    statement, each with a delayed task for its turn (a turn beyond the horizon is left to the
    horizon job); the tasks are published when the caller's transaction commits."""
    queued = _turns_queued(waits, now=now)
    Escalation.objects.wait_for_turn_locked(queued, error=WAIT_ERROR)
    _turns_waited(queued)


def level_wait_for_turn(row: Escalation, *, wait: float, now: datetime) -> bool:
    """The same for one due level read as pending (its turn asked before its claim), if it is
    still pending at the version read; False if something else changed it meanwhile."""
    queued = _turns_queued([(row, wait)], now=now)
    with transaction.atomic():
        (_, at, task_id), = queued
        if not Escalation.objects.wait_for_turn(row, not_before=at, task_id=task_id, error=WAIT_ERROR):
            return False
        _turns_waited(queued)
    return True


Queued = list[tuple[Escalation, datetime, str]]  # a level, its turn, its task's id ("": none)


def _turns_queued(waits: list[tuple[Escalation, float]], *, now: datetime) -> Queued:
    """Each level's turn and the id of its delayed task for then ("": beyond the horizon)."""
    queued = []
    for row, wait in waits:
        at = now + timedelta(seconds=wait)
        queued.append((row, at, escalation_task_id() if at <= now + horizon() else ""))
    return queued


def _turns_waited(queued: Queued) -> None:
    """The rows as waiting left them, and their tasks sent when the transaction commits."""
    for row, at, task_id in queued:
        row.state, row.version, row.not_before = EscalationState.PENDING, row.version + 1, at
        row.celery_task_id, row.enqueued_for = task_id, row.due_at if task_id else None
        if task_id:
            escalation_task_send(row, task_id=task_id, at=at)


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
