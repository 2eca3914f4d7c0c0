"""The one place a Slack message becomes a ticket (Events API and channel scan alike).

Idempotent through the (channel, slack_ts) unique constraint: whichever path
sees a message first creates the ticket, arms it and writes 'opened' in one
transaction; every later sighting finds it and does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from escalation.arming import ticket_arm
from slackbot.identity import own_bot_id
from slackbot.parsing import MENTIONS_BOT, ChannelRules, Verdict, message_parse
from slackbot.roster import roster_slack_ids
from tickets.models import Ticket, TicketEventKind, WatchedChannel
from tickets.timeline import timeline_record

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
    if not channel.active:
        return IntakeResult(None, False, "channel inactive")
    rules = channel_rules(channel)
    verdict: Verdict = message_parse(message=message, rules=rules, bot_user_id=bot_user_id, now=now)
    if verdict.ticket is not None and message.get("bot_id"):
        # Could be our own classic bot_message (bot id, no user): only now ask who we are.
        verdict = message_parse(message=message, rules=rules, bot_user_id=bot_user_id, now=now,
                                own_bot_id=own_bot_id())
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
            ticket = Ticket.objects.create(
                channel=channel,
                slack_ts=parsed.slack_ts,
                helpdesk_ticket_id=parsed.helpdesk_ticket_id,
                priority=parsed.priority,
                ticket_type=parsed.ticket_type,
                text=parsed.text,
                author_slack_id=parsed.author,
                opened_at=parsed.opened_at,
            )
            timeline_record(
                ticket=ticket,
                kind=TicketEventKind.OPENED,
                at=parsed.opened_at,
                actor=parsed.author or "system",
                details={
                    "source": source,
                    "why": verdict.reason,
                    "helpdesk_ticket_id": parsed.helpdesk_ticket_id,
                    "priority": parsed.priority,
                    "type": parsed.ticket_type,
                },
            )
            # Same transaction: a ticket never exists unarmed (arming enqueues after commit).
            ticket_arm(ticket=ticket, now=now)
    except IntegrityError:
        # The other path (or another worker) created it between our read and insert.
        ticket = Ticket.objects.get(channel=channel, slack_ts=parsed.slack_ts)
        return IntakeResult(ticket, False, "already a ticket")
    logger.info(
        "ticket_opened ticket=%s channel=%s ts=%s source=%s helpdesk_id=%s priority=%s",
        ticket.pk, channel.slack_channel_id, ticket.slack_ts, source,
        ticket.helpdesk_ticket_id or "-", ticket.priority or "-",
    )
    return IntakeResult(ticket, True, verdict.reason)
