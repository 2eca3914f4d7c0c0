"""Where a level fires: claim the row, post through the outbox, settle the row.

1. Load the level; a stale, early or already-answered one does nothing. Its
   task comes ``ESCALATION_PREPARE_AHEAD_MS`` early (escalation/queueing.py).
2. Ask the helpdesk (short timeout, outside any transaction) whether the
   ticket was answered; if so, disarm it instead.
3. Resolve the target and render the message (database reads only), and ask
   the channel's turn for the level's moment (escalation/pacing.py): a level
   whose turn is later stays pending until then, holding no worker.
4. Wait for the level's moment: nothing is claimed or posted before it. Then,
   in one transaction, claim the row (conditional UPDATE on state + version:
   a snooze or an answer while the task waited wins) and record the message
   in the outbox, marked "sending", under the key ``ticket:<id>:level:<n>``.
5. Post, and settle the row by what Slack answered: fired (the message "sent"
   in the same commit), pending again after Retry-After or a backoff, or
   failed. After an ambiguous failure the level is pending again no earlier
   than the outbox's ``not_before`` (the wait counted from when the failure
   was seen). A message an earlier attempt recorded goes through
   ``outbox_send``, which looks in the thread first if that attempt may have
   landed; a post that followed one gets a second look for a duplicate
   (escalation/duplicates.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from base.helpdesk import helpdesk_first_reply
from base.models import OutboxMessage, OutboxPurpose
from base.outbox import (
    Delivery,
    DeliveryStatus,
    outbox_post_marked,
    outbox_record,
    outbox_record_sending,
    outbox_recorded,
    outbox_send,
    outbox_sent_record,
)
from base.pages import page_send
from calendars.resolve import Resolution, resolve_target
from calendars.targets import TargetKind
from escalation.cycles import level_cycle_times
from escalation.disarming import ticket_mark_responded
from escalation.duplicates import outbox_duplicates_check_queue
from escalation.keys import post_key
from escalation.messages import NextStep, render_escalation
from escalation.models import DEFAULT_SNOOZE_MINUTES, Escalation, FiredVia, TicketSla
from escalation.outcomes import FireOutcome
from escalation.pacing import (
    claimed_level_wait_for_turn,
    level_turn_done,
    level_turn_wait,
    level_wait_for_turn,
)
from escalation.paging import page_level_abandon, page_level_draft, page_level_event, page_level_record
from escalation.queueing import escalation_queue, horizon, prepare_ahead
from escalation.thread_state import ticket_thread_refresh
from escalation.transitions import EscalationState
from tickets.models import (
    LIVE_STATES,
    ResponseMode,
    ResponsePath,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketState,
)
from tickets.timeline import timeline_record, timeline_record_many

logger = logging.getLogger("slabuddy.escalation")

MAX_BACKOFF_SECONDS = 60
_HELPDESK_PATHS = {ResponseMode.ZENDESK: ResponsePath.ZENDESK, ResponseMode.FRESHDESK: ResponsePath.FRESHDESK}


def idempotency_key(*, ticket_id: int, level: int, cycle: int = 1) -> str:
    return post_key(ticket_id=ticket_id, level=level, cycle=cycle)


def claim_lease() -> timedelta:
    return timedelta(seconds=settings.ESCALATION_CLAIM_LEASE_SECONDS)


def escalation_claim(row: Escalation, *, now: datetime, via: str) -> Escalation | None:
    """Take ``row`` for firing; None if someone else won."""
    if not Escalation.objects.claim(row, now=now, via=via, lease=claim_lease()):
        return None
    return escalation_claimed(row, now=now, via=via)


def escalations_claim_locked(rows: list[Escalation], *, now: datetime, via: str) -> list[Escalation]:
    """Take ``rows`` for firing, in one statement: rows the caller has locked (SELECT ... FOR
    UPDATE in its transaction) as claimable, so none can be lost to another claimer."""
    if rows:
        Escalation.objects.claim_locked(rows, now=now, via=via, lease=claim_lease())
    return [escalation_claimed(row, now=now, via=via) for row in rows]


def escalation_claimed(row: Escalation, *, now: datetime, via: str) -> Escalation:
    """``row`` as its claim left it in the database."""
    row.state, row.version, row.not_before = EscalationState.FIRING, row.version + 1, now + claim_lease()
    row.attempts += 1
    row.fired_via = via
    return row


# --- the message ----------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """The message for one level, resolved and rendered (database reads only)."""

    text: str
    blocks: list
    notified: list
    details: dict


def _next_step(row: Escalation) -> NextStep | None:
    nxt = (
        Escalation.objects.filter(
            ticket_id=row.ticket_id, cycle=row.cycle, level__gt=row.level, state=EscalationState.PENDING
        )
        .order_by("level")
        .first()
    )
    return NextStep(nxt.level, nxt.due_at, nxt.target_kind) if nxt else None


def _sla_of(ticket: Ticket) -> dict:
    """Snooze minutes and breach time of the ticket's snapshot (loaded with the level: no query)."""
    try:
        sla = ticket.sla
    except TicketSla.DoesNotExist:
        return {}
    return {"snooze_minutes": sla.snooze_minutes, "breach_at": sla.breach_at}


_LOOK_UP = object()  # escalation_draft: no answer given, read it


def escalation_draft(row: Escalation, *, ticket: Ticket, now: datetime, resolution: Resolution | None = None,
                     next_step: NextStep | None | object = _LOOK_UP) -> Draft:
    """``resolution`` and ``next_step`` may be given when known already (levels fired in a batch
    resolve each target once, and read the next steps of all of them together)."""
    sla = _sla_of(ticket)
    if resolution is None:
        resolution = resolve_target(
            kind=row.target_kind, ref=row.target_ref, engineer_id=row.engineer_id, at=now
        )
    if next_step is _LOOK_UP:
        next_step = _next_step(row)
    waiting_since, breach_at = level_cycle_times(row, ticket=ticket, first_breach_at=sla.get("breach_at"))
    message = render_escalation(
        template=row.message_template,
        level=row.level,
        mentions=resolution.mentions,
        note=resolution.note,
        opened_at=waiting_since,
        now=now,
        next_step=next_step,
        snooze_minutes=sla.get("snooze_minutes") or DEFAULT_SNOOZE_MINUTES,
        ticket_pk=ticket.pk,
        ticket_id=ticket.helpdesk_ticket_id,
        tier=ticket.channel.tier.name,
        priority=ticket.priority,
        time_zone=ticket.channel.tier.time_zone,
        breach_at=breach_at,
    )
    return Draft(
        text=message.text,
        blocks=message.blocks,
        notified=resolution.notified,
        details={
            "mentions": resolution.mentions,
            "resolved_kind": resolution.kind,
            "fell_through_from": resolution.fell_through_from,
            "note": resolution.note,
            "cycle": row.cycle,
        },
    )


def level_message_fields(row: Escalation, *, ticket: Ticket, draft: Draft) -> dict:
    """The level's outbox message: its key, where it goes, and what it says."""
    payload = {"ticket": ticket.pk, "level": row.level}
    if row.cycle != 1:
        payload["cycle"] = row.cycle
    return {
        "key": idempotency_key(ticket_id=ticket.pk, level=row.level, cycle=row.cycle),
        "purpose": OutboxPurpose.ESCALATION,
        "channel": ticket.channel.slack_channel_id,
        "thread_ts": ticket.slack_ts,
        "text": draft.text,
        "blocks": draft.blocks,
        "payload": payload,
        "context": {"notified": draft.notified, "details": draft.details},
    }


def level_message_record(row: Escalation, *, ticket: Ticket, draft: Draft) -> OutboxMessage:
    """Write the message down before it is sent."""
    return outbox_record(**level_message_fields(row, ticket=ticket, draft=draft))


# --- settling ---------------------------------------------------------------------


def _backoff(attempts: int) -> float:
    return float(min(2 ** max(attempts, 1), MAX_BACKOFF_SECONDS))


def _retry_later(row: Escalation, *, delay: float, error: str, now: datetime,
                 not_before: datetime | None = None) -> None:
    """Release the level for another attempt ``delay`` seconds from now: from when the failure
    was seen, not from ``now`` (the moment the level began firing, before the HTTP call). With
    ``not_before`` (an earlier post may still land in Slack) never before then."""
    seen = max(timezone.now(), now)
    not_before = max(seen + timedelta(seconds=delay), not_before or seen)
    with transaction.atomic():
        if not Escalation.objects.release_for_retry(row, not_before=not_before, error=error):
            return
        row.state, row.version, row.not_before = EscalationState.PENDING, row.version + 1, not_before
        if not_before <= now + horizon():
            escalation_queue(row, at=not_before)


def level_fired_event(row: Escalation, *, ticket: Ticket, delivery: Delivery, now: datetime) -> TicketEvent:
    """The timeline's "level fired" row for a delivered level (unsaved)."""
    context = delivery.message.context or {}
    return TicketEvent(
        ticket=ticket,
        kind=TicketEventKind.LEVEL_FIRED,
        at=now,
        actor="system",
        level=row.level,
        details={
            "notified": context.get("notified") or [],
            "via": row.fired_via,
            "slack_ts": delivery.slack_ts,
            "recovered": delivery.recovered,
            **(context.get("details") or {}),
        },
    )


def claimed_level_fired(row: Escalation, *, ticket: Ticket, delivery: Delivery, now: datetime,
                        record_sent: bool = False) -> FireOutcome:
    """Settle a claimed level whose message is in Slack: fired, with its timeline event. With
    ``record_sent`` (a post by ``outbox_post_marked``) its outbox row is marked "sent" too."""
    notified = (delivery.message.context or {}).get("notified") or []
    with transaction.atomic():
        if record_sent:
            outbox_sent_record([delivery])  # sent, whatever becomes of the claim
        if not Escalation.objects.settle_fired(row, at=now, slack_ts=delivery.slack_ts, notified=notified):
            return FireOutcome.LOST  # our claim ran out and someone else took it over
        timeline_record_many([level_fired_event(row, ticket=ticket, delivery=delivery, now=now)])
        _thread_catch_up(row, ticket=ticket)
    return FireOutcome.FIRED


def _thread_catch_up(row: Escalation, *, ticket: Ticket) -> None:
    """A level claimed before the ticket was answered, closed or paused posts with the armed
    buttons: bring its message in line with the state the thread shows."""
    if not Ticket.objects.filter(pk=ticket.pk, state=TicketState.ARMED).exists():
        ticket_thread_refresh(ticket_id=ticket.pk)


def _failed(row: Escalation, *, ticket: Ticket, error: str, now: datetime) -> FireOutcome:
    with transaction.atomic():
        if Escalation.objects.settle_failed(row, error=error):
            timeline_record(
                ticket=ticket,
                kind=TicketEventKind.LEVEL_FAILED,
                at=now,
                level=row.level,
                details={"error": error},
            )
    logger.error("escalation %s (ticket %s level %s) failed: %s", row.pk, ticket.pk, row.level, error)
    return FireOutcome.FAILED


def claimed_level_post(row: Escalation, *, ticket: Ticket, message: OutboxMessage, now: datetime
                       ) -> FireOutcome:
    """Send a claimed level's recorded message and settle the row by the answer."""
    delivery = outbox_send(message, held=True)  # our claim on the row keeps other senders out
    if delivery.status == DeliveryStatus.SENT:
        # Sent after an attempt that may have landed: look again for a duplicate a little later.
        outbox_duplicates_check_queue(message_id=message.pk, at=delivery.verify_at)
        return claimed_level_fired(row, ticket=ticket, delivery=delivery, now=now)
    return claimed_level_not_posted(row, ticket=ticket, delivery=delivery, now=now)


def claimed_level_not_posted(row: Escalation, *, ticket: Ticket, delivery: Delivery, now: datetime
                             ) -> FireOutcome:
    """Settle a claimed level whose post did not go (a 429, a failure, or in flight elsewhere)."""
    if delivery.status == DeliveryStatus.RATE_LIMITED:
        # Slack refused it: nothing was posted. Come back after Retry-After.
        _retry_later(row, delay=delivery.retry_after, error=delivery.error, now=now)
        return FireOutcome.RATE_LIMITED
    if delivery.status == DeliveryStatus.PERMANENT:
        return _failed(row, ticket=ticket, error=delivery.error, now=now)
    # Ambiguous (it may have landed: the next attempt waits until it cannot land any more, then
    # looks first), or another sender holds it.
    _retry_later(row, delay=_backoff(row.attempts), error=delivery.error or delivery.status, now=now,
                 not_before=delivery.not_before)
    return FireOutcome.RETRY


# --- entry points -------------------------------------------------------------------


def _helpdesk_answered(ticket: Ticket, *, now: datetime) -> bool:
    """Ask the helpdesk (outside any transaction); a first reply disarms the ticket."""
    try:
        seen = helpdesk_first_reply(
            provider=ticket.channel.response_mode, ticket_id=ticket.helpdesk_ticket_id
        ).replied
    except Exception:  # the helpdesk adapter must never stop a level
        logger.warning("helpdesk check failed for ticket %s; firing", ticket.pk, exc_info=True)
        seen = None
    if not seen:
        return False
    path = _HELPDESK_PATHS.get(ticket.channel.response_mode, ResponsePath.WEBHOOK)
    ticket_mark_responded(ticket=ticket, path=path, actor="helpdesk", at=now)
    return True


def escalation_fire(
    *, escalation_id: int, version: int, via: str = FiredVia.TASK, now: datetime | None = None
) -> FireOutcome:
    """Fire one level if it is still pending at ``version`` and due (a level's delayed task;
    escalation/sweeping.py's ``escalation_fire_or_sweep`` sweeps instead when it is long overdue)."""
    now, began = now or timezone.now(), time.monotonic()
    row = (Escalation.objects.select_related("ticket__channel__tier", "ticket__sla")
           .filter(pk=escalation_id).first())
    if row is None:
        return FireOutcome.MISSING
    if row.state != EscalationState.PENDING or row.version != version:
        return FireOutcome.STALE
    start = max(row.due_at, row.not_before or row.due_at)
    if start > now + prepare_ahead():
        # Early beyond the lead (clock skew, or a task from before a snooze that kept its
        # version): queue again for the right time, or leave it to the horizon job.
        with transaction.atomic():
            if start <= now + horizon():
                escalation_queue(row, at=start)
            else:
                Escalation.objects.forget_queued(row)
        return FireOutcome.EARLY
    ticket = row.ticket
    if ticket.state != TicketState.ARMED:
        return FireOutcome.STALE  # answered: its pending levels are (being) cancelled
    if _helpdesk_answered(ticket, now=now):
        return FireOutcome.RESPONDED
    at = max(now, start)  # the moment it fires
    if row.target_kind == TargetKind.PAGE:
        _wait_until(at, now=now, began=began)
        return _page_fire(row, ticket=ticket, now=at, via=via)
    draft = escalation_draft(row, ticket=ticket, now=at)
    # Its channel's turn for that moment: a level told to wait stays pending until then, never claimed.
    if wait := level_turn_wait(row, ticket=ticket, at=at):
        if level_wait_for_turn(row, wait=wait, now=at):
            return FireOutcome.PACED
        level_turn_done(row, ticket=ticket)  # changed meanwhile: its slot must not hold the channel
        return FireOutcome.LOST
    _wait_until(at, now=now, began=began)
    # Where a worker killed between two statements leaves the level (each later attempt is a
    # claim of a level whose claim lease ran out, by the sweeper, then escalation_deliver_claimed):
    # - before the claim's commit: pending, no message; its task or the sweeper fires it.
    # - after it (claimed, its message recorded "sending" in the same commit), during the call or
    #   before "sent" is written: the later attempt waits until that request can no longer land,
    #   looks for the key in the thread, and posts only if it is not there.
    # - after the settle's commit (the message "sent", the level fired): nothing is left to do.
    with transaction.atomic():
        if escalation_claim(row, now=at, via=via) is None:
            level_turn_done(row, ticket=ticket)
            return FireOutcome.LOST
        message = OutboxMessage(**level_message_fields(row, ticket=ticket, draft=draft))
        marked = outbox_record_sending(message)
        if not marked:  # recorded by an earlier attempt: it may have reached Slack
            message = outbox_recorded(message)
    if not marked:
        return claimed_level_post_in_turn(row, ticket=ticket, message=message, now=at)
    delivery = marked_level_post(row, ticket=ticket, message=message)
    if delivery.status == DeliveryStatus.SENT:
        return claimed_level_fired(row, ticket=ticket, delivery=delivery, now=at, record_sent=True)
    return claimed_level_not_posted(row, ticket=ticket, delivery=delivery, now=at)


def _wait_until(at: datetime, *, now: datetime, began: float) -> None:
    """Sleep until ``at`` if the task came early to prepare (``now`` was read at ``began``, a
    monotonic time); never longer than the lead."""
    ahead = (at - now).total_seconds() - (time.monotonic() - began)
    if ahead > 0:
        time.sleep(min(ahead, prepare_ahead().total_seconds()))


def escalation_deliver_claimed(row: Escalation, *, now: datetime) -> FireOutcome:
    """Fire a level the sweeper has already claimed."""
    ticket = Ticket.objects.select_related("channel__tier", "sla").get(pk=row.ticket_id)
    if ticket.state not in LIVE_STATES:  # claimed before a wait began: it still posts
        Escalation.objects.settle_cancelled(row)
        return FireOutcome.CANCELLED
    if _helpdesk_answered(ticket, now=now):
        Escalation.objects.settle_cancelled(row)
        return FireOutcome.RESPONDED
    if row.target_kind == TargetKind.PAGE:
        event = page_level_event(row, ticket=ticket, now=now)
        return _page_and_post(row, ticket=ticket, event=event, now=now)
    message = level_message_record(row, ticket=ticket, draft=escalation_draft(row, ticket=ticket, now=now))
    if wait := level_turn_wait(row, ticket=ticket):
        return _wait_for_turn(row, wait=wait)
    return claimed_level_post_in_turn(row, ticket=ticket, message=message, now=now)


def marked_level_post(row: Escalation, *, ticket: Ticket, message: OutboxMessage) -> Delivery:
    """Post a claimed level's message recorded "sending" (``outbox_record_sending``, or
    ``outbox_start_new`` for a batch) in its channel's turn, taken already; the turn is given back
    once the post has gone or failed, but kept after a 429, as ``claimed_level_post_in_turn``
    does. A success is recorded with the level's settle (``claimed_level_fired``)."""
    delivery = None
    try:
        delivery = outbox_post_marked(message)
        return delivery
    finally:
        if delivery is None or delivery.status != DeliveryStatus.RATE_LIMITED:
            level_turn_done(row, ticket=ticket)


def claimed_level_post_in_turn(row: Escalation, *, ticket: Ticket, message: OutboxMessage, now: datetime
                               ) -> FireOutcome:
    """Post at the channel's turn; the turn is given back once the post has gone (or failed). A
    post Slack refused with a 429 keeps its turn: the channel's later turns wait for it (up to
    ``ABANDONED_SECONDS``), so it is not overtaken when it comes back after Retry-After."""
    outcome = None
    try:
        outcome = claimed_level_post(row, ticket=ticket, message=message, now=now)
        return outcome
    finally:
        if outcome != FireOutcome.RATE_LIMITED:
            level_turn_done(row, ticket=ticket)


def _wait_for_turn(row: Escalation, *, wait: float) -> FireOutcome:
    """Its channel's turn is later (escalation/pacing.py): released, it comes back then. Asked
    just before the post, so that the turn is taken when the post leaves, not a draft earlier."""
    released = claimed_level_wait_for_turn(row, wait=wait, now=timezone.now())
    return FireOutcome.PACED if released else FireOutcome.LOST


# --- a page step: page outside Slack first, then say so in the thread (escalation/paging.py) ---


def _page_fire(row: Escalation, *, ticket: Ticket, now: datetime, via: str) -> FireOutcome:
    event = page_level_event(row, ticket=ticket, now=now)  # outside the transaction: it may ask Slack
    with transaction.atomic():
        if escalation_claim(row, now=now, via=via) is None:
            return FireOutcome.LOST
        page_level_record(row, ticket=ticket, event=event)
    return _page_and_post(row, ticket=ticket, event=event, now=now)


def _page_and_post(row: Escalation, *, ticket: Ticket, event, now: datetime) -> FireOutcome:
    """Page (at most one incident, however often this runs), then post in the thread."""
    page = page_level_record(row, ticket=ticket, event=event)  # the row written at the claim
    if not Ticket.objects.filter(pk=ticket.pk, state__in=LIVE_STATES).exists():
        page_level_abandon(page)  # answered meanwhile: the resolve (if it left after all) follows
        Escalation.objects.settle_cancelled(row)
        return FireOutcome.CANCELLED
    delivery = page_send(page, held=True)  # our claim on the row keeps other senders out
    if delivery.status == DeliveryStatus.RATE_LIMITED:
        _retry_later(row, delay=delivery.retry_after, error=delivery.error, now=now)
        return FireOutcome.RATE_LIMITED
    if delivery.status in (DeliveryStatus.AMBIGUOUS, DeliveryStatus.IN_FLIGHT):
        # It may have been accepted: the retry sends the same dedup key, which the pager absorbs.
        _retry_later(row, delay=_backoff(row.attempts), error=delivery.error or delivery.status, now=now)
        return FireOutcome.RETRY
    paged = page_level_draft(row, ticket=ticket, delivery=delivery, next_step=_next_step(row), now=now)
    draft = Draft(text=paged.text, blocks=paged.blocks, notified=paged.notified, details=paged.details)
    message = level_message_record(row, ticket=ticket, draft=draft)
    return claimed_level_post(row, ticket=ticket, message=message, now=now)
