"""The one place a Slack message becomes a ticket (Events API and channel scan alike).

Idempotent through the (channel, slack_ts) unique constraint: whichever path
sees a message first creates the ticket, arms it and writes 'opened' in one
transaction; every later sighting finds it and does nothing.
``tickets_intake_messages`` does the same for a batch of messages at once (the
drain's hot path under a flood), with the same outcome for each message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from escalation.arming import ticket_arm, tickets_arm_new
from slackbot.identity import own_bot_id
from slackbot.parsing import MENTIONS_BOT, ChannelRules, ParsedTicket, Verdict, message_parse
from slackbot.roster import roster_slack_ids
from tickets.models import Ticket, TicketEvent, TicketEventKind, WatchedChannel
from tickets.timeline import timeline_record, timeline_record_many

logger = logging.getLogger("slabuddy.intake")


@dataclass(frozen=True)
class IntakeResult:
    ticket: Ticket | None
    created: bool
    reason: str


def channel_rules(channel: WatchedChannel) -> ChannelRules:
    return ChannelRules(
        intake_mode=channel.intake_mode,
        allowed_bot_ids=ChannelRules.bot_ids(channel.allowed_bot_ids),
        lookback_minutes=channel.lookback_minutes,
    )


def ticket_intake_message(
    *,
    channel: WatchedChannel,
    message: dict[str, Any],
    source: str,
    now: datetime,
    bot_user_id: str,
) -> IntakeResult:
    """Create (and arm) the ticket for ``message`` if it is one and is new."""
    verdict = _judge(channel=channel, message=message, now=now, bot_user_id=bot_user_id)
    parsed = verdict.ticket
    if parsed is None:
        return IntakeResult(None, False, verdict.reason)
    if verdict.reason == MENTIONS_BOT and roster_slack_ids([parsed.author]):
        return IntakeResult(None, False, "talks to the bot")  # a support engineer, not a customer

    existing = Ticket.objects.filter(channel=channel, slack_ts=parsed.slack_ts).first()
    if existing is not None:
        return IntakeResult(existing, False, "already a ticket")
    try:
        with transaction.atomic():
            ticket = _ticket(channel, parsed)
            ticket.save(force_insert=True)
            timeline_record(**_opened(ticket, parsed, verdict, source))
            # Same transaction: a ticket never exists unarmed (arming enqueues after commit).
            ticket_arm(ticket=ticket, now=now)
    except IntegrityError:
        # The other path (or another worker) created it between our read and insert.
        ticket = Ticket.objects.get(channel=channel, slack_ts=parsed.slack_ts)
        return IntakeResult(ticket, False, "already a ticket")
    _log_opened(ticket, source)
    return IntakeResult(ticket, True, verdict.reason)


def tickets_intake_messages(
    *,
    messages: list[tuple[WatchedChannel, dict[str, Any]]],
    source: str,
    now: datetime,
    bot_user_id: str,
) -> list[IntakeResult]:
    """``ticket_intake_message`` for many messages at once, one result for each, in order.

    The new tickets are created, written 'opened' and armed with one INSERT per
    table for the lot. If one of them appeared meanwhile (the channel scan or
    another worker got there first), the lot is rolled back and each message
    takes the one-at-a-time path, which sorts that out.
    """
    verdicts = [
        _judge(channel=channel, message=message, now=now, bot_user_id=bot_user_id)
        for channel, message in messages
    ]
    wanted = {(c.pk, v.ticket.slack_ts) for (c, _), v in zip(messages, verdicts, strict=True) if v.ticket}
    existing = {
        (t.channel_id, t.slack_ts): t
        for t in Ticket.objects.filter(
            channel_id__in={key[0] for key in wanted}, slack_ts__in={key[1] for key in wanted}
        )
        if (t.channel_id, t.slack_ts) in wanted
    }
    results: list[IntakeResult | None] = []
    new: dict[tuple[int, str], Ticket] = {}
    opened = []
    for (channel, _), verdict in zip(messages, verdicts, strict=True):
        parsed = verdict.ticket
        key = (channel.pk, parsed.slack_ts) if parsed else None
        if parsed is None:
            results.append(IntakeResult(None, False, verdict.reason))
        elif key in existing or key in new:  # seen before, or twice in this batch
            results.append(None)
        else:
            new[key] = _ticket(channel, parsed)
            opened.append((parsed, verdict))
            results.append(IntakeResult(new[key], True, verdict.reason))
    if new:
        try:
            with transaction.atomic():
                tickets = Ticket.objects.bulk_create(new.values())
                timeline_record_many([
                    TicketEvent(**_opened(ticket, parsed, verdict, source))
                    for ticket, (parsed, verdict) in zip(tickets, opened, strict=True)
                ])
                tickets_arm_new(tickets=tickets, now=now)
        except IntegrityError:
            return [
                ticket_intake_message(channel=channel, message=message, source=source, now=now,
                                      bot_user_id=bot_user_id)
                for channel, message in messages
            ]
        for ticket in tickets:
            _log_opened(ticket, source)
    found = {**existing, **new}
    return [
        result or IntakeResult(found[(channel.pk, verdict.ticket.slack_ts)], False, "already a ticket")
        for result, (channel, _), verdict in zip(results, messages, verdicts, strict=True)
    ]


def _judge(*, channel: WatchedChannel, message: dict[str, Any], now: datetime, bot_user_id: str) -> Verdict:
    """Is ``message`` a ticket of ``channel``? (Called outside any transaction: it may ask Slack.)"""
    if not channel.active:
        return Verdict(None, "channel inactive")
    rules = channel_rules(channel)
    verdict = message_parse(message=message, rules=rules, bot_user_id=bot_user_id, now=now)
    if verdict.ticket is not None and message.get("bot_id"):
        # Could be our own classic bot_message (bot id, no user): only now ask who we are.
        verdict = message_parse(message=message, rules=rules, bot_user_id=bot_user_id, now=now,
                                own_bot_id=own_bot_id())
    if verdict.reason == MENTIONS_BOT and verdict.ticket and roster_slack_ids([verdict.ticket.author]):
        return Verdict(None, "talks to the bot")  # a support engineer, not a customer
    return verdict


def _ticket(channel: WatchedChannel, parsed: ParsedTicket) -> Ticket:
    return Ticket(
        channel=channel,
        slack_ts=parsed.slack_ts,
        helpdesk_ticket_id=parsed.helpdesk_ticket_id,
        priority=parsed.priority,
        ticket_type=parsed.ticket_type,
        text=parsed.text,
        author_slack_id=parsed.author,
        opened_at=parsed.opened_at,
    )


def _opened(ticket: Ticket, parsed: ParsedTicket, verdict: Verdict, source: str) -> dict[str, Any]:
    """The 'opened' timeline row of a new ticket."""
    return {
        "ticket": ticket,
        "kind": TicketEventKind.OPENED,
        "at": parsed.opened_at,
        "actor": parsed.author or "system",
        "details": {
            "source": source,
            "why": verdict.reason,
            "helpdesk_ticket_id": parsed.helpdesk_ticket_id,
            "priority": parsed.priority,
            "type": parsed.ticket_type,
        },
    }


def _log_opened(ticket: Ticket, source: str) -> None:
    logger.info(
        "ticket_opened ticket=%s channel=%s ts=%s source=%s helpdesk_id=%s priority=%s",
        ticket.pk, ticket.channel.slack_channel_id, ticket.slack_ts, source,
        ticket.helpdesk_ticket_id or "-", ticket.priority or "-",
    )
