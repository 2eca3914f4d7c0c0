"""What a stored Slack delivery means: a new ticket, a mention, a response, a button press.

Runs in a worker (the drain, slackbot/drain.py, or ``slackbot.tasks.slack_inbound_process``),
never in the HTTP request. Every action it takes is idempotent on its own (the ticket's
unique constraint, the snooze's request key, the reply's outbox key,
``ticket_mark_responded``), so a delivery processed twice changes nothing more.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from base.slack_api import bot_user_id
from slackbot.app_home import app_home_opened_handle
from slackbot.identity import own_bot_id_known
from slackbot.intake import ticket_intake_message, tickets_intake_messages
from slackbot.interactions import slack_interaction_handle
from slackbot.lifecycle import message_changed_handle, message_deleted_handle, reaction_handle
from slackbot.mentions import mention_handle
from slackbot.models import InboundKind, InboundState, SlackInbound
from slackbot.parsing import HUMAN_SUBTYPES, mentions_user
from slackbot.replies import SlackRetryLater
from slackbot.responses import thread_reply_handle
from slackbot.roster import roster_slack_ids
from tickets.models import IntakeMode, WatchedChannel

logger = logging.getLogger("slabuddy.events")

# Tuples: values may be unhashable.
HANDLED_EVENT_TYPES = ("message", "app_mention", "app_home_opened", "reaction_added", "reaction_removed")
REACTION_EVENTS = ("reaction_added", "reaction_removed")
MAX_ATTEMPTS = 8
RETRY_BACKOFF = timedelta(seconds=30)


class Route(enum.StrEnum):
    """Where an event goes. Only INTAKE is database work alone; the others may call Slack."""

    IGNORE = "ignore"
    INTAKE = "intake"
    MENTION = "mention"
    THREAD_REPLY = "thread_reply"
    REACTION = "reaction"  # a close or waiting reaction, added or removed
    DELETED = "deleted"  # a message deleted: a ticket's closes it
    CHANGED = "changed"  # a message edited: may have become a ticket


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def slack_event_route(*, event: dict[str, Any], bot: str) -> tuple[Route, str]:
    """Where an event goes, from the event alone (no database, no network)."""
    event_type = event.get("type")
    if event_type not in HANDLED_EVENT_TYPES:
        return Route.IGNORE, f"ignored event type {event_type}"
    user, text = _str(event.get("user")), _str(event.get("text"))
    ts, thread_ts = _str(event.get("ts")), _str(event.get("thread_ts"))
    is_human = bool(user) and user != bot and not event.get("bot_id")
    if event_type in REACTION_EVENTS:
        return Route.REACTION, ""
    if event_type == "app_mention":
        return (Route.MENTION, "") if is_human else (Route.IGNORE, "mention by a bot")
    if event_type != "message":  # only a channel message can be a ticket, whatever else is handled
        return Route.IGNORE, f"ignored event type {event_type}"
    subtype = event.get("subtype")
    if subtype == "message_deleted":
        return Route.DELETED, ""
    if subtype == "message_changed":
        return Route.CHANGED, ""
    if subtype == "thread_broadcast" or (thread_ts and thread_ts != ts):
        if subtype not in HUMAN_SUBTYPES and subtype != "thread_broadcast":
            return Route.IGNORE, f"ignored subtype {subtype}"
        if is_human and mentions_user(text, bot):
            return Route.MENTION, ""
        return Route.THREAD_REPLY, ""
    if is_human and subtype in HUMAN_SUBTYPES and mentions_user(text, bot):
        return Route.MENTION, ""
    return Route.INTAKE, ""


def inbound_is_intake(inbound: SlackInbound, *, bot: str) -> bool:
    """A new top-level message: database work only, so it can share a transaction with others.
    (A bot's message needs the bot's own id to be judged: until this process knows it, the
    message is handled on its own, where Slack may be asked.)"""
    if inbound.kind != InboundKind.EVENT or not isinstance(inbound.payload, dict):
        return False
    event = inbound.payload.get("event")
    if not isinstance(event, dict) or slack_event_route(event=event, bot=bot)[0] != Route.INTAKE:
        return False
    return not event.get("bot_id") or own_bot_id_known()


def inbound_channel_id(inbound: SlackInbound) -> str:
    event = inbound.payload.get("event") if isinstance(inbound.payload, dict) else None
    return _str(event.get("channel")) if isinstance(event, dict) else ""


def inbound_failure_record(inbound: SlackInbound, exc: Exception, *, now: datetime) -> None:
    """Note the error of attempt ``inbound.attempts``; try again after a backoff (or when
    Slack said), give up after MAX_ATTEMPTS (a rate limit never counts against it)."""
    retry_later = isinstance(exc, SlackRetryLater)
    give_up = inbound.attempts >= MAX_ATTEMPTS and not retry_later
    wait = timedelta(seconds=exc.retry_after) if retry_later else RETRY_BACKOFF
    SlackInbound.objects.filter(pk=inbound.pk, state=InboundState.PENDING).update(
        state=InboundState.FAILED if give_up else InboundState.PENDING,
        attempts=inbound.attempts,
        last_error=f"{type(exc).__name__}: {exc}"[:2000],
        not_before=None if give_up else now + wait,
    )


def slack_inbound_process(*, inbound_id: int, now: datetime | None = None) -> str:
    """Handle one stored delivery on its own. Raises SlackRetryLater for the task to reschedule."""
    inbound = SlackInbound.objects.filter(pk=inbound_id).first()
    if inbound is None or inbound.state != InboundState.PENDING:
        return "already handled"
    # Counted before the attempt, so that one that kills the process counts too.
    SlackInbound.objects.filter(pk=inbound.pk).update(attempts=F("attempts") + 1)
    inbound.attempts += 1
    now = now or timezone.now()
    try:
        if inbound.kind == InboundKind.INTERACTION:
            outcome = slack_interaction_handle(payload=inbound.payload, now=now)
        else:
            outcome = slack_event_handle(payload=inbound.payload, now=now)
    except Exception as exc:
        inbound_failure_record(inbound, exc, now=now)
        raise
    SlackInbound.objects.filter(pk=inbound.pk, state=InboundState.PENDING).update(
        state=InboundState.DONE, processed_at=timezone.now(), last_error=outcome[:2000], not_before=None
    )
    return outcome


ChannelLookup = Callable[[str], WatchedChannel | None]


def watched_channel(channel_id: str) -> WatchedChannel | None:
    return WatchedChannel.objects.filter(slack_channel_id=channel_id, active=True).select_related(
        "tier"
    ).first()


def watched_channels(channel_ids: set[str]) -> ChannelLookup:
    """One query for a batch's channels; unknown or inactive ones map to None."""
    found = {
        c.slack_channel_id: c
        for c in WatchedChannel.objects.filter(slack_channel_id__in=channel_ids, active=True)
        .select_related("tier")
    }
    return found.get


def slack_event_handle(
    *, payload: dict[str, Any], now: datetime, channels: ChannelLookup = watched_channel
) -> str:
    event = payload.get("event")
    if not isinstance(event, dict):
        return "no event"
    if event.get("type") == "app_home_opened":
        return app_home_opened_handle(event=event, now=now)
    bot = bot_user_id()
    route, reason = slack_event_route(event=event, bot=bot)
    if route == Route.IGNORE:
        return reason
    if route == Route.REACTION:
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        channel = _channel(channels, item.get("channel"))
        return reaction_handle(channel=channel, event=event, now=now) if channel else "unwatched channel"
    channel = _channel(channels, event.get("channel"))
    if channel is None:
        return "unwatched channel"
    if route == Route.DELETED:
        return message_deleted_handle(channel=channel, event=event, now=now)
    if route == Route.CHANGED:
        return message_changed_handle(channel=channel, event=event, now=now, bot=bot)
    if route == Route.THREAD_REPLY:
        return thread_reply_handle(channel=channel, event=event, now=now)
    if route == Route.MENTION:
        user, ts, thread_ts = _str(event.get("user")), _str(event.get("ts")), _str(event.get("thread_ts"))
        top_level = not thread_ts or thread_ts == ts
        if top_level and _a_customers_ticket(channel, user):
            return _intake(channel, event, bot=bot, now=now)
        answered = mention_handle(channel=channel, event=event, now=now)
        if top_level or event.get("type") != "message" or roster_slack_ids([user]):
            return answered
        # Someone off the roster (the customer) mentioning the bot also wrote in the thread.
        return f"{answered}; {thread_reply_handle(channel=channel, event=event, now=now)}"
    return _intake(channel, event, bot=bot, now=now)


def _channel(channels: ChannelLookup, channel_id: Any) -> WatchedChannel | None:
    return channels(channel_id) if isinstance(channel_id, str) and channel_id else None


def _a_customers_ticket(channel: WatchedChannel, user: str) -> bool:
    """In a plain channel, a customer's top-level message that mentions the bot ("@SLA Buddy our
    database is down") is a ticket; a support engineer's is talking to the bot (help, how-to)."""
    return channel.intake_mode == IntakeMode.PLAIN and not roster_slack_ids([user])


def _intake(channel: WatchedChannel, event: dict[str, Any], *, bot: str, now: datetime) -> str:
    message = {**event, "type": "message"}  # an app_mention is the same message
    result = ticket_intake_message(
        channel=channel, message=message, source="events", now=now, bot_user_id=bot
    )
    return f"intake: {result.reason}"


def slack_events_intake(*, inbounds: list[SlackInbound], now: datetime) -> dict[int, str]:
    """New top-level messages (``inbound_is_intake``) handled together, in the caller's
    transaction: the outcome ``slack_event_handle`` would give each, by delivery id."""
    bot = bot_user_id()
    channels = watched_channels({inbound_channel_id(inbound) for inbound in inbounds})
    outcomes: dict[int, str] = {}
    batch = []
    for inbound in inbounds:
        channel = channels(inbound_channel_id(inbound))
        if channel is None:
            outcomes[inbound.pk] = "unwatched channel"
        else:
            batch.append((inbound, channel))
    results = tickets_intake_messages(
        messages=[(channel, inbound.payload["event"]) for inbound, channel in batch],
        source="events", now=now, bot_user_id=bot,
    )
    for (inbound, _), result in zip(batch, results, strict=True):
        outcomes[inbound.pk] = f"intake: {result.reason}"
    return outcomes
