"""Process stored Slack deliveries in batches: the worker half of "store first, process later".

1. A drain takes up to ``batch_size`` ready deliveries, oldest first. Concurrent
   drains skip each other's rows (SKIP LOCKED on PostgreSQL; SQLite has one
   writer at a time anyway).
2. New tickets (top-level messages: database work only) are created, armed and
   marked done together, with one INSERT per table and one commit for the lot:
   a flood of tickets costs a few round trips per batch instead of twenty per
   ticket. Should the batch fail, its messages are taken one at a time, each in
   a savepoint, so that only a bad one is held back.
3. Everything else (mentions, thread replies, button presses: they answer in
   Slack) is held with a lease in that transaction and processed one by one
   after the commit, so no transaction stays open across a Slack call.
4. It repeats until nothing is ready or its time budget is spent, then queues
   the next drain: a short budget keeps worker processes free for escalations
   even while a backlog of deliveries waits.

A delivery that fails is retried after a backoff (or when Slack said), and
given up after ``MAX_ATTEMPTS``; a drain that dies rolls its batch back and the
rows are simply taken again. The beat "inbound sweep" queues a drain for
anything left waiting, so a lost drain task loses nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from base.slack_api import bot_user_id
from slackbot.dispatch import (
    inbound_failure_record,
    inbound_is_intake,
    slack_event_handle,
    slack_events_intake,
    slack_inbound_process,
)
from slackbot.inbound import slack_inbound_drain_queue, slack_inbound_nudge_clear
from slackbot.models import InboundState, SlackInbound
from slackbot.replies import SlackRetryLater

logger = logging.getLogger("slabuddy.inbound")

BATCH_SIZE = 50
SQLITE_BATCH_SIZE = 10  # SQLite's write lock is held for the batch: keep requests' inserts waiting briefly
BUDGET_SECONDS = 1.0
HOLD = timedelta(seconds=60)  # the lease on deliveries processed one by one after a batch
SWEEP_AFTER = timedelta(seconds=10)
KEEP = timedelta(days=14)
DONE_FIELDS = ["state", "processed_at", "last_error", "not_before", "attempts"]


@dataclass
class DrainResult:
    processed: int = 0
    failed: int = 0
    batches: int = 0
    more: bool = False


def _ready(now: datetime) -> QuerySet:
    return SlackInbound.objects.filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now), state=InboundState.PENDING
    ).order_by("id")


def _batch_take(*, now: datetime, size: int, result: DrainResult) -> list[int] | None:
    """One batch: process its new tickets, hold the rest. Returns the held ids (None: nothing ready)."""
    bot = bot_user_id()  # may ask Slack (once per process): never inside the transaction
    with transaction.atomic():
        ready = _ready(now)
        if connection.features.has_select_for_update_skip_locked:
            ready = ready.select_for_update(skip_locked=True)
        rows = list(ready[:size])
        if not rows:
            return None
        result.batches += 1
        intake = [row for row in rows if inbound_is_intake(row, bot=bot)]
        intake_ids = {row.pk for row in intake}
        held = [row.pk for row in rows if row.pk not in intake_ids]
        if held:
            SlackInbound.objects.filter(pk__in=held).update(not_before=now + HOLD)
        try:
            with transaction.atomic():
                outcomes = slack_events_intake(inbounds=intake, now=now)
        except Exception:
            logger.exception("slack_inbound_batch_failed size=%s; one at a time instead", len(intake))
            outcomes = _one_at_a_time(intake, now=now, result=result)
        done = []
        for row in intake:
            if row.pk in outcomes:
                row.attempts += 1
                row.state, row.processed_at = InboundState.DONE, timezone.now()
                row.last_error, row.not_before = outcomes[row.pk][:2000], None
                done.append(row)
        SlackInbound.objects.bulk_update(done, DONE_FIELDS)
        result.processed += len(done)
    return held


def _one_at_a_time(rows: list[SlackInbound], *, now: datetime, result: DrainResult) -> dict[int, str]:
    """The batch failed: each delivery in a savepoint of its own, so only a bad one is held back."""
    outcomes = {}
    for row in rows:
        try:
            with transaction.atomic():
                outcomes[row.pk] = slack_event_handle(payload=row.payload, now=now)
        except Exception as exc:
            logger.exception("slack_inbound_failed key=%s", row.key)
            row.attempts += 1
            inbound_failure_record(row, exc, now=now)
            result.failed += 1
    return outcomes


def _process_held(inbound_id: int, *, now: datetime, result: DrainResult) -> None:
    """A delivery that may call Slack, outside any transaction."""
    try:
        slack_inbound_process(inbound_id=inbound_id, now=now)
    except SlackRetryLater as exc:  # recorded with its not_before; come back then
        slack_inbound_drain_queue(countdown=exc.retry_after)
        result.failed += 1
    except Exception:  # recorded with a backoff by slack_inbound_process
        logger.exception("slack_inbound_failed id=%s", inbound_id)
        result.failed += 1
    else:
        result.processed += 1


def slack_inbound_drain(
    *, now: datetime | None = None, budget_seconds: float = BUDGET_SECONDS, batch_size: int | None = None
) -> DrainResult:
    """Process ready deliveries until none is left or the budget is spent (then ``more`` is set)."""
    slack_inbound_nudge_clear()  # from now on a new delivery queues the next drain
    result = DrainResult()
    size = batch_size or (SQLITE_BATCH_SIZE if connection.vendor == "sqlite" else BATCH_SIZE)
    deadline = time.monotonic() + budget_seconds
    while True:
        current = now or timezone.now()
        held = _batch_take(now=current, size=size, result=result)
        if held is None:
            return result
        for inbound_id in held:
            _process_held(inbound_id, now=current, result=result)
        if time.monotonic() > deadline:
            result.more = _ready(now or timezone.now()).exists()
            return result


def slack_inbound_sweep(*, now: datetime | None = None) -> bool:
    """Queue a drain if a delivery has waited longer than a drain should take (its drain
    task was lost: a broker flush, a worker killed); forget deliveries handled long ago.
    Returns whether it queued one."""
    now = now or timezone.now()
    SlackInbound.objects.filter(received_at__lt=now - KEEP).exclude(state=InboundState.PENDING).delete()
    if not _ready(now).filter(received_at__lt=now - SWEEP_AFTER).exists():
        return False
    return slack_inbound_drain_queue()
