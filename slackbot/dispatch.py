"""What a stored Slack delivery means: a new ticket, a mention, a response, a button press.

Runs in a Celery task (``slackbot.tasks.slack_inbound_process``), never in the
HTTP request. Every action it takes is idempotent on its own (the ticket's
unique constraint, the snooze's request key, the reply's outbox key,
``ticket_mark_responded``), so a delivery processed twice changes nothing more.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db.models import F
from django.utils import timezone

from base.slack_api import bot_user_id
from slackbot.app_home import app_home_opened_handle
from slackbot.intake import ticket_intake_message
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


def slack_inbound_process(*, inbound_id: int, now: datetime | None = None) -> str:
    """Handle one stored delivery. Raises SlackRetryLater for the task to reschedule."""
    inbound = SlackInbound.objects.filter(pk=inbound_id).first()
    if inbound is None or inbound.state != InboundState.PENDING:
        return "already handled"
    SlackInbound.objects.filter(pk=inbound.pk).update(attempts=F("attempts") + 1)
    now = now or timezone.now()
    try:
        if inbound.kind == InboundKind.INTERACTION:
            outcome = slack_interaction_handle(payload=inbound.payload, now=now)
        else:
            outcome = slack_event_handle(payload=inbound.payload, now=now)
    except Exception as exc:
        give_up = inbound.attempts + 1 >= MAX_ATTEMPTS and not isinstance(exc, SlackRetryLater)
        SlackInbound.objects.filter(pk=inbound.pk, state=InboundState.PENDING).update(
            state=InboundState.FAILED if give_up else InboundState.PENDING,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        raise
    SlackInbound.objects.filter(pk=inbound.pk, state=InboundState.PENDING).update(
        state=InboundState.DONE, processed_at=timezone.now(), last_error=outcome[:2000]
    )
    return outcome


def _watched(channel_id: Any) -> WatchedChannel | None:
    if not isinstance(channel_id, str) or not channel_id:
        return None
    return WatchedChannel.objects.filter(slack_channel_id=channel_id, active=True).select_related(
        "tier"
    ).first()


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def slack_event_handle(*, payload: dict[str, Any], now: datetime) -> str:
    event = payload.get("event")
    if not isinstance(event, dict):
        return "no event"
    event_type = event.get("type")
    if event_type not in HANDLED_EVENT_TYPES:
        return f"ignored event type {event_type}"
    if event_type == "app_home_opened":
        return app_home_opened_handle(event=event, now=now)
    if event_type in REACTION_EVENTS:
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        channel = _watched(item.get("channel"))
        return reaction_handle(channel=channel, event=event, now=now) if channel else "unwatched channel"
    channel = _watched(event.get("channel"))
    if channel is None:
        return "unwatched channel"
    bot = bot_user_id()
    user = _str(event.get("user"))
    text = _str(event.get("text"))
    ts = _str(event.get("ts"))
    thread_ts = _str(event.get("thread_ts"))
    is_human = bool(user) and user != bot and not event.get("bot_id")

    top_level = not thread_ts or thread_ts == ts
    if event_type == "app_mention":
        if not is_human:
            return "mention by a bot"
        if top_level and _a_customers_ticket(channel, user):
            return _intake(channel, event, bot=bot, now=now)
        return mention_handle(channel=channel, event=event, now=now)

    subtype = event.get("subtype")
    if subtype == "message_deleted":
        return message_deleted_handle(channel=channel, event=event, now=now)
    if subtype == "message_changed":
        return message_changed_handle(channel=channel, event=event, now=now, bot=bot)
    if subtype == "thread_broadcast" or not top_level:
        if subtype not in HUMAN_SUBTYPES and subtype != "thread_broadcast":
            return f"ignored subtype {subtype}"
        if is_human and mentions_user(text, bot):
            answered = mention_handle(channel=channel, event=event, now=now)
            if roster_slack_ids([user]):
                return answered
            # Someone off the roster (the customer) mentioning the bot also wrote in the thread.
            return f"{answered}; {thread_reply_handle(channel=channel, event=event, now=now)}"
        return thread_reply_handle(channel=channel, event=event, now=now)
    if is_human and subtype in HUMAN_SUBTYPES and mentions_user(text, bot):
        if _a_customers_ticket(channel, user):
            return _intake(channel, event, bot=bot, now=now)
        return mention_handle(channel=channel, event=event, now=now)
    return _intake(channel, event, bot=bot, now=now)


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
