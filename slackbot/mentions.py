"""@SLA Buddy in a thread: snooze the ticket (roster engineers only), or answer with help."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from base.formatting import slack_time
from escalation.snooze import SnoozeResult, ticket_snooze
from slackbot.replies import bot_reply_post
from slackbot.roster import roster_slack_ids
from tickets.models import Ticket, TicketState, WatchedChannel

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


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _mention_command(text: str) -> str:
    stripped = re.sub(r"<@[A-Z0-9]+(?:\|[^>]*)?>", " ", text).strip().lower()
    return stripped.split()[0].strip(".!?:,") if stripped else ""


def mention_handle(*, channel: WatchedChannel, event: dict[str, Any], now: datetime) -> str:
    """Snooze the thread's ticket, or answer with help: once per mention message."""
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


def snooze_due_times(result: SnoozeResult) -> list[tuple[int, datetime]]:
    """(level, new due time) pairs from the engine's SnoozeResult, soonest first."""
    due = result.due_times or {}
    return sorted(((int(level), at) for level, at in due.items()), key=lambda pair: (pair[1], pair[0]))


def snooze_reply_text(*, ticket: Ticket, result: SnoozeResult, actor: str) -> str:
    if ticket.state == TicketState.RESPONDED:
        return "This ticket has already been answered, so there is nothing left to snooze."
    if ticket.state == TicketState.WAITING:
        return ("This ticket is waiting on the customer: its escalations are paused until the customer "
                "writes again, so there is nothing to snooze.")
    if ticket.state == TicketState.CLOSED:
        return "This ticket is closed, so there is nothing left to snooze."
    if result.refused:
        return f"Not snoozed: {result.refused}."
    pairs = snooze_due_times(result)
    if not pairs:
        return "This ticket has no pending escalation levels, so there is nothing to snooze."
    lines = [f"• Level {level}: {slack_time(at)}" for level, at in pairs]
    # A duplicate delivery of the same request reads exactly like the first: only
    # one of the two replies is posted, and it may be either.
    minutes = result.snooze_minutes
    unit = "minute" if minutes == 1 else "minutes"
    head = f"Snoozed for {minutes} {unit} by <@{actor}>. Pending escalations now fire at:"
    return "\n".join([head, *lines])
