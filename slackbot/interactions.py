"""The Snooze button on an escalation message (Slack ``block_actions``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from base.formatting import slack_time
from base.slack_api import SlackError, slack_call, slack_client
from escalation.messages import SNOOZE_ACTION_ID
from escalation.snooze import ticket_snooze
from slackbot.mentions import NOT_ROSTER_TEXT, snooze_due_times, snooze_reply_text
from slackbot.replies import bot_reply_post, slack_error_raise
from slackbot.roster import roster_slack_ids
from tickets.models import Ticket, TicketState


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


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
        client = slack_client()
        try:
            slack_call(client.chat_update, channel=channel_id, ts=message_ts,
                       text=_str(message.get("text")) or note, blocks=blocks)
        except SlackError as exc:
            slack_error_raise(exc, what="chat.update")
    bot_reply_post(
        key=key, channel=channel_id, thread_ts=ticket.slack_ts,
        text=snooze_reply_text(ticket=ticket, result=result, actor=user),
    )
    return "snoozed" if result.applied else "snooze not applied"
