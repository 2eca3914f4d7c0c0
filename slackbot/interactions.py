"""The buttons on an escalation message (Slack ``block_actions``): Snooze, Waiting on customer,
Close, and Resume while waiting.

A press is refused unless it comes from a roster engineer and from one of the ticket's own
escalation messages (the button's ticket must match the message it was pressed on). The message
itself is never rewritten from the payload (some clients send none): the engine records what
every escalation message of the ticket should show now, and the outbox updates them
(escalation/thread_state.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from escalation.closing import ticket_close
from escalation.messages import (
    ACTION_IDS,
    CLOSE_ACTION_ID,
    RESUME_ACTION_ID,
    SNOOZE_ACTION_ID,
    WAITING_ACTION_ID,
)
from escalation.models import Escalation
from escalation.pausing import ticket_pause, ticket_resume
from escalation.snooze import ticket_snooze
from slackbot.mentions import NOT_ROSTER_TEXT, snooze_reply_text
from slackbot.replies import bot_reply_post
from slackbot.roster import roster_slack_ids
from tickets.models import Ticket, TicketVia

logger = logging.getLogger("slabuddy.interactions")

NOT_ROSTER_BUTTON_TEXT = (
    "Only support engineers on SLA Buddy's roster can use these buttons. "
    "An admin can add you under Engineers (with your Slack user id)."
)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def interaction_action(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The first of our buttons in a block_actions payload, if there is one."""
    if payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions")
    if not isinstance(actions, list):
        return None
    for action in actions:
        if isinstance(action, dict) and action.get("action_id") in ACTION_IDS:
            return action
    return None


def interaction_key(payload: dict[str, Any]) -> str | None:
    """One press: the message, the action's own timestamp and who pressed (a Slack retry repeats it)."""
    action = interaction_action(payload)
    container = payload.get("container")
    user = payload.get("user")
    if action is None or not isinstance(container, dict) or not isinstance(user, dict):
        return None
    parts = (container.get("channel_id"), container.get("message_ts"), action.get("action_ts"),
             user.get("id"))
    if not all(isinstance(part, str) and part for part in parts):
        return None
    return "button:" + ":".join(parts)[:190]


def _pressed_on_its_ticket(ticket: Ticket, *, container: dict[str, Any]) -> bool:
    """The button's ticket must be the one whose escalation message it was pressed on."""
    if ticket.channel.slack_channel_id != container.get("channel_id"):
        return False
    thread_ts = _str(container.get("thread_ts"))
    if thread_ts and thread_ts != ticket.slack_ts:
        return False
    pressed_on = _str(container.get("message_ts"))
    return bool(pressed_on) and Escalation.objects.filter(ticket=ticket, slack_message_ts=pressed_on).exists()


def slack_interaction_handle(*, payload: dict[str, Any], now: datetime) -> str:
    action = interaction_action(payload)
    key = interaction_key(payload)
    if action is None or key is None:
        return "not one of our buttons"
    container = payload["container"]
    user = payload["user"]["id"]
    try:
        ticket = Ticket.objects.select_related("channel").get(pk=int(str(action.get("value"))))
    except (Ticket.DoesNotExist, ValueError):
        return "unknown ticket"
    if not _pressed_on_its_ticket(ticket, container=container):
        logger.warning("button_refused key=%s ticket=%s: not pressed on one of its escalation messages",
                       key, ticket.pk)
        return "refused: the button's ticket does not match its message"
    channel_id = ticket.channel.slack_channel_id
    action_id = action.get("action_id")
    if not roster_slack_ids([user]):
        text = NOT_ROSTER_TEXT if action_id == SNOOZE_ACTION_ID else NOT_ROSTER_BUTTON_TEXT
        bot_reply_post(key=key, channel=channel_id, thread_ts=ticket.slack_ts, text=text)
        return f"{action_id} refused: not on the roster"
    how = {"via": TicketVia.BUTTON, "actor": user, "at": now, "request_key": key, "now": now}
    if action_id == WAITING_ACTION_ID:
        result = ticket_pause(ticket=ticket, **how)
        return "waiting" if result.changed else f"not paused: {result.reason}"
    if action_id == RESUME_ACTION_ID:
        result = ticket_resume(ticket=ticket, **how)
        return "resumed" if result.changed else f"not resumed: {result.reason}"
    if action_id == CLOSE_ACTION_ID:
        return "closed" if ticket_close(ticket=ticket, **how) else "not closed"
    result = ticket_snooze(ticket=ticket, request_key=key, actor=user, now=now, debounce=True)
    if result.debounced:
        return "snooze not applied: pressed twice"
    ticket.refresh_from_db()
    bot_reply_post(key=key, channel=channel_id, thread_ts=ticket.slack_ts,
                   text=snooze_reply_text(ticket=ticket, result=result, actor=user))
    return "snoozed" if result.applied else "snooze not applied"
