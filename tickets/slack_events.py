"""What a stored Slack delivery means: a new ticket, a mention, a response, a button press.

Runs in a Celery task (``tickets.tasks.slack_inbound_process``), never in the
HTTP request. Every action it takes is idempotent on its own (the ticket's
unique constraint, the snooze's request key, the reply's key,
``ticket_mark_responded``), so a delivery processed twice changes nothing more.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from django.db.models import F
from django.utils import timezone

from calendars.models import Engineer
from slabuddy.slack import bot_user_id, slack_client
from tickets.intake import ticket_intake_message
from tickets.models import (
    InboundKind,
    InboundState,
    ResponseMode,
    ResponsePath,
    SlackInbound,
    Ticket,
    TicketState,
    WatchedChannel,
)
from tickets.parsing import mentions_user, ts_to_datetime
from tickets.replies import SlackRetryLater, bot_reply_post, slack_error_raise

logger = logging.getLogger("slabuddy.events")

HANDLED_EVENT_TYPES = ("message", "app_mention")  # tuples: payload values may be unhashable
SNOOZE_ACTION_ID = "snooze"
MAX_ATTEMPTS = 8
# Thread-reply subtypes that can still be a person answering (a reply with a file).
HUMAN_SUBTYPES = (None, "", "file_share")

HELP_TEXT = (
    "*SLA Buddy* watches this channel for support tickets and escalates the ones nobody has "
    "answered yet, in each ticket's thread.\n"
    "• Support engineers: mention me in a ticket's thread (`@SLA Buddy`) to *snooze* it: every "
    "pending escalation level moves later (30 minutes by default). The *Snooze* button on an "
    "escalation does the same.\n"
    "• A real answer stops the escalations: a support engineer's reply in the thread, or the "
    "helpdesk's first agent reply, depending on how the channel is set up.\n"
    "• Mentions, reactions and snoozes never count as an answer.\n"
    "• `@SLA Buddy help` shows this message."
)
HOW_TO_TEXT = (
    "I only act inside a ticket's thread: mention me there to snooze its escalations, "
    "or say `@SLA Buddy help` for a short guide."
)

NOT_ROSTER_TEXT = (
    "Only support engineers on SLA Buddy's roster can snooze escalations. "
    "An admin can add you under Engineers (with your Slack user id)."
)


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
    channel = _watched(event.get("channel"))
    if channel is None:
        return "unwatched channel"
    bot = bot_user_id()
    user = _str(event.get("user"))
    text = _str(event.get("text"))
    ts = _str(event.get("ts"))
    thread_ts = _str(event.get("thread_ts"))
    is_human = bool(user) and user != bot and not event.get("bot_id")

    if event_type == "app_mention":
        if not is_human:
            return "mention by a bot"
        return mention_handle(channel=channel, event=event, now=now)

    subtype = event.get("subtype")
    if subtype == "thread_broadcast" or (thread_ts and thread_ts != ts):
        if subtype not in HUMAN_SUBTYPES and subtype != "thread_broadcast":
            return f"ignored subtype {subtype}"
        if is_human and mentions_user(text, bot):
            return mention_handle(channel=channel, event=event, now=now)
        return thread_reply_handle(channel=channel, event=event)
    if is_human and subtype in HUMAN_SUBTYPES and mentions_user(text, bot):
        return mention_handle(channel=channel, event=event, now=now)
    result = ticket_intake_message(
        channel=channel, message=event, source="events", now=now, bot_user_id=bot
    )
    return f"intake: {result.reason}"


def _mention_command(text: str) -> str:
    stripped = re.sub(r"<@[A-Z0-9]+(?:\|[^>]*)?>", " ", text).strip().lower()
    return stripped.split()[0].strip(".!?:,") if stripped else ""


def mention_handle(*, channel: WatchedChannel, event: dict[str, Any], now: datetime) -> str:
    """Snooze the thread's ticket, or answer with help: once per mention message."""
    from escalation.services import ticket_snooze

    ts = _str(event.get("ts"))
    thread_ts = _str(event.get("thread_ts"))
    user = _str(event.get("user"))
    if not ts:
        return "mention without ts"
    key = f"mention:{channel.slack_channel_id}:{ts}"
    reply_thread = thread_ts or ts
    if _mention_command(_str(event.get("text"))) == "help":
        bot_reply_post(key=key, channel=channel.slack_channel_id, thread_ts=reply_thread, text=HELP_TEXT)
        return "help"
    ticket = (
        Ticket.objects.filter(channel=channel, slack_ts=thread_ts).first()
        if thread_ts and thread_ts != ts else None
    )
    if ticket is None:
        bot_reply_post(key=key, channel=channel.slack_channel_id, thread_ts=reply_thread, text=HOW_TO_TEXT)
        return "how-to"
    if not roster_slack_ids([user]):
        # In shared channels customers can mention the bot too; only support snoozes.
        bot_reply_post(
            key=key, channel=channel.slack_channel_id, thread_ts=reply_thread, text=NOT_ROSTER_TEXT
        )
        return "snooze refused: not on the roster"
    result = ticket_snooze(ticket=ticket, request_key=f"slack:{channel.slack_channel_id}:{ts}",
                           actor=user, now=now)
    ticket.refresh_from_db()
    bot_reply_post(
        key=key, channel=channel.slack_channel_id, thread_ts=reply_thread,
        text=snooze_reply_text(ticket=ticket, result=result, actor=user),
    )
    return "snoozed" if result.applied else "snooze not applied"


def snooze_due_times(result: Any) -> list[tuple[int, datetime]]:
    """(level, new due time) pairs from the engine's SnoozeResult, soonest first."""
    due = getattr(result, "due_times", None) or {}
    return sorted(((int(level), at) for level, at in due.items()), key=lambda pair: (pair[1], pair[0]))


def slack_time(moment: datetime) -> str:
    """Shown in each reader's own time zone by Slack; UTC in the fallback text."""
    moment = moment.astimezone(UTC)
    return f"<!date^{int(moment.timestamp())}^{{time}}|{moment:%H:%M} UTC>"


def snooze_reply_text(*, ticket: Ticket, result: Any, actor: str) -> str:
    if ticket.state == TicketState.RESPONDED:
        return "This ticket has already been answered, so there is nothing left to snooze."
    pairs = snooze_due_times(result)
    if not pairs:
        return "This ticket has no pending escalation levels, so there is nothing to snooze."
    lines = [f"• Level {level}: {slack_time(at)}" for level, at in pairs]
    # A duplicate delivery of the same request reads exactly like the first: only
    # one of the two replies is posted, and it may be either.
    minutes = getattr(result, "snooze_minutes", 30)
    unit = "minute" if minutes == 1 else "minutes"
    head = f"Snoozed for {minutes} {unit} by <@{actor}>. Pending escalations now fire at:"
    return "\n".join([head, *lines])


def thread_reply_is_response(*, message: dict[str, Any], bot: str, engineer_ids: set[str]) -> bool:
    """A reply in a ticket's thread by an active roster engineer that is not a bot mention."""
    user = _str(message.get("user"))
    if not user or user == bot or message.get("bot_id"):
        return False
    if message.get("subtype") not in HUMAN_SUBTYPES and message.get("subtype") != "thread_broadcast":
        return False
    thread_ts = _str(message.get("thread_ts"))
    if not thread_ts or thread_ts == _str(message.get("ts")):
        return False
    if mentions_user(_str(message.get("text")), bot):
        return False  # a mention snoozes; it never answers the customer
    return user in engineer_ids


def roster_slack_ids(user_ids: list[str] | None = None) -> set[str]:
    engineers = Engineer.objects.filter(active=True).exclude(slack_user_id=None)
    if user_ids is not None:
        engineers = engineers.filter(slack_user_id__in=user_ids)
    return set(engineers.values_list("slack_user_id", flat=True))


def thread_reply_handle(*, channel: WatchedChannel, event: dict[str, Any]) -> str:
    """In Slack-native channels a roster engineer's reply in the thread is the response."""
    from escalation.services import ticket_mark_responded

    if channel.response_mode != ResponseMode.SLACK_THREAD:
        return "responses come from the helpdesk here"
    ticket = Ticket.objects.filter(channel=channel, slack_ts=_str(event.get("thread_ts"))).first()
    if ticket is None:
        return "not a ticket thread"
    if ticket.state == TicketState.RESPONDED:
        return "already responded"
    user = _str(event.get("user"))
    if not thread_reply_is_response(message=event, bot=bot_user_id(), engineer_ids=roster_slack_ids([user])):
        return "not a response"
    at = ts_to_datetime(event.get("ts")) or timezone.now()
    changed = ticket_mark_responded(ticket=ticket, path=ResponsePath.SLACK_THREAD, actor=user, at=at)
    return "responded" if changed else "already responded"


# -- interactions (the Snooze button) -----------------------------------------


def interaction_snooze_action(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The 'snooze' button action in a block_actions payload, if there is one."""
    if payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions")
    if not isinstance(actions, list):
        return None
    for action in actions:
        if isinstance(action, dict) and action.get("action_id") == SNOOZE_ACTION_ID:
            return action
    return None


def interaction_key(payload: dict[str, Any]) -> str | None:
    action = interaction_snooze_action(payload)
    container = payload.get("container")
    user = payload.get("user")
    if action is None or not isinstance(container, dict) or not isinstance(user, dict):
        return None
    parts = (container.get("channel_id"), container.get("message_ts"), action.get("action_ts"),
             user.get("id"))
    if not all(isinstance(part, str) and part for part in parts):
        return None
    return "button:" + ":".join(parts)[:190]


def slack_interaction_handle(*, payload: dict[str, Any], now: datetime) -> str:
    from escalation.services import ticket_snooze

    action = interaction_snooze_action(payload)
    key = interaction_key(payload)
    if action is None or key is None:
        return "not a snooze"
    container = payload["container"]
    channel_id, message_ts = container["channel_id"], container["message_ts"]
    user = payload["user"]["id"]
    try:
        ticket = Ticket.objects.select_related("channel").get(pk=int(str(action.get("value"))))
    except (Ticket.DoesNotExist, ValueError):
        return "unknown ticket"
    if ticket.channel.slack_channel_id != channel_id:
        return "button from another channel"
    if not roster_slack_ids([user]):
        bot_reply_post(key=key, channel=channel_id, thread_ts=ticket.slack_ts, text=NOT_ROSTER_TEXT)
        return "snooze refused: not on the roster"
    result = ticket_snooze(ticket=ticket, request_key=key, actor=user, now=now)
    ticket.refresh_from_db()
    # Updated even when this request's snooze was applied by an earlier attempt
    # (whose update then failed): showing who snoozed is idempotent.
    if ticket.state == TicketState.ARMED:
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        blocks = [
            block for block in (message.get("blocks") or [])
            if isinstance(block, dict) and block.get("block_id") != "slabuddy_snoozed"
        ]
        pairs = snooze_due_times(result)
        next_due = f", next level at {slack_time(pairs[0][1])}" if pairs else ""
        note = f":zzz: Snoozed by <@{user}>{next_due}."
        blocks.append({"type": "context", "block_id": "slabuddy_snoozed",
                       "elements": [{"type": "mrkdwn", "text": note}]})
        try:
            slack_client().chat_update(
                channel=channel_id, ts=message_ts, text=_str(message.get("text")) or note, blocks=blocks
            )
        except Exception as exc:
            slack_error_raise(exc, what="chat.update")
    bot_reply_post(
        key=key, channel=channel_id, thread_ts=ticket.slack_ts,
        text=snooze_reply_text(ticket=ticket, result=result, actor=user),
    )
    return "snoozed" if result.applied else "snooze not applied"
