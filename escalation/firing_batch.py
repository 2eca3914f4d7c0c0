"""Overdue levels fire in batches: after an outage or a restart thousands can be due at once.

One level on its own (escalation/firing.py) costs about thirteen statements and a roster lookup.
The sweeper, and a level's task that finds its level long overdue (escalation/sweeping.py), take
the overdue levels a batch at a time, in due order, and fire them here by the same rules, with
the same outcomes, in a few statements for the whole batch.

In one transaction, holding the rows' locks (batches are taken one after another, so turns follow
due order across them too):

1. A level that needs more than a post is claimed and goes the one-level way afterwards
   (``escalation_deliver_claimed``): a page step, a ticket answered or closed meanwhile, a
   channel whose helpdesk is asked first.
2. The others ask their channels for turns in one Redis round trip, in due order
   (base/channel_pacing.py). Those told to wait stay pending until their turns, each with a
   delayed task for then, in one statement: nothing is drafted for them.
3. The rest are claimed in one statement and drafted (each distinct target resolved once: one
   moment, one roster; the next steps of all read together), their messages recorded in one
   INSERT and marked "sending" in one UPDATE. A message recorded by an earlier attempt is left
   as it is: it goes the one-level way (it may have reached Slack).

Then, outside it, they are posted one after another, and those Slack took are settled in one
transaction: outbox rows "sent", levels "fired", their timeline events.

Should the database fail before the first commit, nothing is claimed or recorded: the levels are
due as they were. Where a worker killed after it leaves them (as one level alone, many at a
time): claimed and marked "sending", the sweeper takes them over when the claim's lease runs out,
waits until the outbox row's ``not_before`` (the end of the lease plus the ambiguous wait; no
post of a batch starts later than the client timeout before the lease ends) and looks in the
thread before posting; posted and not settled, it finds them there and settles.
"""


from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from base.models import OutboxMessage
from base.outbox import (
    Delivery,
    DeliveryStatus,
    ambiguous_wait,
    outbox_record_new,
    outbox_recorded,
    outbox_sent_record,
    outbox_start_new,
)
from calendars.resolve import Resolution, resolve_target
from calendars.targets import TargetKind
from escalation.firing import (
    Draft,
    claim_lease,
    claimed_level_fired,
    claimed_level_not_posted,
    claimed_level_post_in_turn,
    escalation_deliver_claimed,
    escalation_draft,
    escalations_claim_locked,
    level_fired_event,
    level_message_fields,
    marked_level_post,
)
from escalation.messages import NextStep
from escalation.models import Escalation, FiredVia
from escalation.outcomes import FireOutcome
from escalation.pacing import level_turn_done, levels_turn_waits, locked_levels_wait_for_turns
from escalation.thread_state import ticket_thread_refresh
from escalation.transitions import EscalationState
from tickets.models import LIVE_STATES, ResponseMode, Ticket, TicketState
from tickets.timeline import timeline_record_many

# Levels claimed together. Small enough that a batch posts well within its claim's lease (and
# within the channels' turns it was given), large enough that its statements are shared widely.
BATCH_SIZE = 25
_HELPDESKS = (ResponseMode.ZENDESK, ResponseMode.FRESHDESK)


@dataclass
class _Level:
    row: Escalation
    ticket: Ticket
    draft: Draft | None = None
    message: OutboxMessage | None = None
    marked: bool = False  # its message was recorded now and marked "sending" with the batch


@dataclass
class Batch:
    """Due levels taken together, in due order."""

    now: datetime  # when they were claimed
    alone: list[Escalation] = field(default_factory=list)  # claimed: the one-level way
    going: list[_Level] = field(default_factory=list)  # claimed, drafted and recorded: they post
    waiting: int = 0  # left pending until their channels' turns

    @property
    def taken(self) -> int:
        return len(self.alone) + len(self.going) + self.waiting


# Batches are taken one after another (this lock, in the transaction that takes one): the
# channels' turns follow due order across batches too. Posting is what they do side by side.
_TAKE_LOCK = 0x51A_B0D1


def due_levels_lock_for_taking() -> None:
    """Wait for the batch being taken elsewhere; held until the caller's transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_TAKE_LOCK])


def locked_levels_take(rows: list[Escalation], *, now: datetime) -> Batch:
    """Take due levels the caller has locked in its transaction (under
    ``due_levels_lock_for_taking``; in due order, each with its ticket, channel, tier and snapshot
    loaded): ask their channels' turns in one round trip, leave those told to wait pending until
    then, claim the rest, and draft, record and mark "sending" the messages of those that post.
    It all commits with the caller's transaction: should the database fail before, nothing is
    claimed and nothing recorded, and the levels are due as they were."""
    batch = Batch(now=now, alone=[row for row in rows if _one_level_way(row)])
    plain = [_Level(row, row.ticket) for row in rows if not _one_level_way(row)]
    turns = levels_turn_waits([(level.row, level.ticket) for level in plain])
    waits = [(level.row, turn) for level, turn in zip(plain, turns, strict=True) if turn > 0]
    locked_levels_wait_for_turns(waits, now=timezone.now())
    batch.waiting = len(waits)
    batch.going = [level for level, turn in zip(plain, turns, strict=True) if turn <= 0]
    claimed = batch.alone + [level.row for level in batch.going]
    escalations_claim_locked(claimed, now=now, via=FiredVia.SWEEPER)
    if batch.going:
        _record_all(batch.going, now=now)
    return batch


def _record_all(levels: list[_Level], *, now: datetime) -> None:
    _draft_all(levels, now=now)
    messages = [OutboxMessage(**level_message_fields(level.row, ticket=level.ticket, draft=level.draft))
                for level in levels]
    fresh = outbox_record_new(messages)
    # Marked "sending" until no post of this batch can land any more (see the module's docstring).
    not_before = now + claim_lease() + ambiguous_wait()
    marked = {m.pk for m in outbox_start_new(list(fresh.values()), not_before=not_before)}
    for level, message in zip(levels, messages, strict=True):
        if message.key not in fresh:  # recorded by an earlier attempt: it may have reached Slack
            message = outbox_recorded(message)
        level.message, level.marked = message, message.pk in marked


def taken_levels_fire(batch: Batch) -> Counter[FireOutcome]:
    """Fire a batch taken by ``locked_levels_take`` (outside any transaction); the outcome of each
    level, counted (those left waiting for their turns as ``PACED``)."""
    outcomes: Counter[FireOutcome] = Counter({FireOutcome.PACED: batch.waiting})
    for row in batch.alone:
        outcomes[escalation_deliver_claimed(row, now=batch.now)] += 1
    if batch.going:
        outcomes.update(_post_all(batch.going, now=batch.now))
    return +outcomes


def _one_level_way(row: Escalation) -> bool:
    ticket = row.ticket
    return (row.target_kind == TargetKind.PAGE or ticket.state not in LIVE_STATES
            or ticket.channel.response_mode in _HELPDESKS)


def _post_all(levels: list[_Level], *, now: datetime) -> Counter[FireOutcome]:
    outcomes: Counter[FireOutcome] = Counter()
    # No post starts later than this: any that does ends (its client's deadline) within the lease.
    last_start = now + claim_lease() - timedelta(seconds=settings.SLACK_TIMEOUT_SECONDS + 5)
    sent: list[tuple[_Level, Delivery]] = []
    for level in levels:
        message = level.message
        if not level.marked:
            # Recorded by an earlier attempt (it may have reached Slack): the one-level way.
            outcome = claimed_level_post_in_turn(level.row, ticket=level.ticket, message=message, now=now)
            outcomes[outcome] += 1
            continue
        if timezone.now() > last_start:  # the claim's lease is running out: the next attempt looks first
            level_turn_done(level.row, ticket=level.ticket)
            delivery = Delivery(DeliveryStatus.AMBIGUOUS, message, error="batch ran out of time",
                                not_before=message.not_before)
        else:  # the channel's next turn need not wait for the settle
            delivery = marked_level_post(level.row, ticket=level.ticket, message=message)
        if delivery.status == DeliveryStatus.SENT:
            sent.append((level, delivery))
        else:
            outcome = claimed_level_not_posted(level.row, ticket=level.ticket, delivery=delivery, now=now)
            outcomes[outcome] += 1
    outcomes.update(_settle_sent(sent, now=now))
    return outcomes


def _draft_all(levels: list[_Level], *, now: datetime) -> None:
    resolutions: dict[tuple, Resolution] = {}
    next_steps = _next_steps([level.row for level in levels])
    for level in levels:
        row = level.row
        target = (row.target_kind, row.target_ref, row.engineer_id)
        if target not in resolutions:
            resolutions[target] = resolve_target(kind=row.target_kind, ref=row.target_ref,
                                                 engineer_id=row.engineer_id, at=now)
        level.draft = escalation_draft(row, ticket=level.ticket, now=now, resolution=resolutions[target],
                                       next_step=next_steps.get(row.pk))


def _next_steps(rows: list[Escalation]) -> dict[int, NextStep]:
    """Each row's next pending level of its ticket and cycle (escalation/firing.py's ``_next_step``
    for all of them in one query)."""
    pending: dict[tuple[int, int], list[tuple[int, datetime, str]]] = {}
    tickets = {row.ticket_id for row in rows}
    later = (Escalation.objects.filter(ticket_id__in=tickets, state=EscalationState.PENDING)
             .order_by("level").values_list("ticket_id", "cycle", "level", "due_at", "target_kind"))
    for ticket_id, cycle, level, due_at, kind in later:
        pending.setdefault((ticket_id, cycle), []).append((level, due_at, kind))
    steps: dict[int, NextStep] = {}
    for row in rows:
        after = [step for step in pending.get((row.ticket_id, row.cycle), []) if step[0] > row.level]
        if after:
            steps[row.pk] = NextStep(*after[0])
    return steps


class _ClaimLost(Exception):
    """A level of the batch is no longer ours as claimed: the batch's settle is rolled back."""


def _settle_sent(sent: list[tuple[_Level, Delivery]], *, now: datetime) -> Counter[FireOutcome]:
    """Record the posts and settle their levels in one transaction; if a claim ran out meanwhile
    (someone took the level over), each is settled on its own instead."""
    if not sent:
        return Counter()
    try:
        with transaction.atomic():
            outbox_sent_record([delivery for _, delivery in sent])
            fired = [(level.row, delivery.slack_ts, (delivery.message.context or {}).get("notified") or [])
                     for level, delivery in sent]
            if Escalation.objects.settle_fired_many(fired, at=now) != len(sent):
                raise _ClaimLost
            timeline_record_many([level_fired_event(level.row, ticket=level.ticket, delivery=d, now=now)
                                  for level, d in sent])
            # A level claimed before its ticket was answered, closed or paused posted with the
            # armed buttons: bring those messages in line with the thread's state.
            moved = (Ticket.objects.filter(pk__in={level.ticket.pk for level, _ in sent})
                     .exclude(state=TicketState.ARMED).values_list("pk", flat=True))
            for ticket_id in moved:
                ticket_thread_refresh(ticket_id=ticket_id)
    except _ClaimLost:
        outcomes: Counter[FireOutcome] = Counter()
        for level, delivery in sent:  # each with its outbox row "sent"
            outcomes[claimed_level_fired(level.row, ticket=level.ticket, delivery=delivery, now=now,
                                         record_sent=True)] += 1
        return outcomes
    return Counter({FireOutcome.FIRED: len(sent)})
