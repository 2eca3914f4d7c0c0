"""What Slack tells us about a ticket besides answers: its message deleted or edited, a close or
waiting reaction, and the customer writing again in its thread.

Each path ends in an engine service (escalation/closing.py, pausing.py, cycles.py) keyed by the
Slack thing that asked (the message, the reaction), so a duplicate delivery (the same event id,
or the same message under a new event id) changes nothing more.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from escalation.closing import ticket_close
from escalation.cycles import ticket_next_response_start
from escalation.models import Escalation
from escalation.pausing import ticket_pause, ticket_resume
from slackbot.intake import channel_rules, ticket_intake_message
from slackbot.parsing import HUMAN_SUBTYPES, message_parse, ts_to_datetime
from slackbot.roster import roster_slack_ids
from tickets.models import Ticket, TicketState, TicketVia, WatchedChannel, reaction_name

DELETED_BY = "slack"  # Slack does not say who deleted a message


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _ticket(channel: WatchedChannel, ts: str) -> Ticket | None:
    if not ts:
        return None
    return Ticket.objects.filter(channel=channel, slack_ts=ts).select_related("channel").first()


def message_deleted_handle(*, channel: WatchedChannel, event: dict[str, Any], now: datetime) -> str:
    """The ticket's own message was deleted: close it (its thread may live on, nothing escalates)."""
    deleted_ts = _str(event.get("deleted_ts"))
    ticket = _ticket(channel, deleted_ts)
    if ticket is None:
        return "deleted message was not a ticket"
    at = ts_to_datetime(event.get("event_ts") or event.get("ts")) or now
    changed = ticket_close(ticket=ticket, via=TicketVia.DELETED, actor=DELETED_BY, at=min(at, now),
                           request_key=f"deleted:{channel.slack_channel_id}:{deleted_ts}", now=now)
    return "closed: message deleted" if changed else "deleted ticket already closed"


def message_changed_handle(*, channel: WatchedChannel, event: dict[str, Any], now: datetime, bot: str) -> str:
    """An edit: a top-level message edited into a ticket becomes one (opened at its original ts);
    a ticket whose message became a tombstone (deleted with replies) is closed. Other edits
    never create tickets."""
    message = event.get("message")
    if not isinstance(message, dict):
        return "edit without a message"
    ts = _str(message.get("ts"))
    if message.get("subtype") == "tombstone":
        return message_deleted_handle(channel=channel, event={**event, "deleted_ts": ts}, now=now)
    thread_ts = _str(message.get("thread_ts"))
    if not ts or (thread_ts and thread_ts != ts):
        return "edit of a thread reply"
    if _ticket(channel, ts) is not None:
        return "edit of a ticket"
    before = event.get("previous_message")
    rules = channel_rules(channel)
    if isinstance(before, dict) and message_parse(message=before, rules=rules, bot_user_id=bot,
                                                  now=now).ticket is not None:
        return "edit of a message that already was a ticket (the events and the scan take it)"
    # Judged exactly like a new message, as the events and the scan judge it: one ticket per message.
    edited = {key: value for key, value in message.items() if key not in ("edited", "thread_ts")}
    result = ticket_intake_message(channel=channel, message=edited, source="edit", now=now, bot_user_id=bot)
    return f"edit: {result.reason}"


def _reacted_ticket(channel: WatchedChannel, ts: str) -> Ticket | None:
    """The ticket whose own message, or one of whose escalation messages, carries ``ts``."""
    ticket = _ticket(channel, ts)
    if ticket is not None or not ts:
        return ticket
    level = Escalation.objects.filter(ticket__channel=channel, slack_message_ts=ts).select_related(
        "ticket__channel").first()
    return level.ticket if level is not None else None


def reaction_handle(*, channel: WatchedChannel, event: dict[str, Any], now: datetime) -> str:
    """A roster engineer's close reaction closes the ticket; the waiting reaction marks it waiting
    on the customer, and removing it resumes. On the ticket's message or an escalation message."""
    item = event.get("item") if isinstance(event.get("item"), dict) else {}
    user = _str(event.get("user"))
    emoji = reaction_name(_str(event.get("reaction")).split("::")[0])  # skin tones: "thumbsup::skin-tone-2"
    if emoji not in (channel.close_emoji, channel.waiting_emoji):
        return "other reaction"
    ticket = _reacted_ticket(channel, _str(item.get("ts")))
    if ticket is None:
        return "reaction outside a ticket"
    if not user or not roster_slack_ids([user]):
        return "reaction by someone off the roster"
    at = min(ts_to_datetime(event.get("event_ts")) or now, now)
    # The reaction itself, by its event time: Slack's retries (and a new event id) carry the same one.
    key = ":".join(("reaction", channel.slack_channel_id, _str(item.get("ts")), user, emoji,
                    _str(event.get("event_ts"))))
    how = {"via": TicketVia.REACTION, "actor": user, "at": at, "request_key": key, "now": now}
    added = event.get("type") == "reaction_added"
    if emoji == channel.close_emoji:
        if not added:
            return "close reaction removed: a closed ticket reopens when the customer writes"
        return "closed" if ticket_close(ticket=ticket, **how) else "not closed"
    if added:
        result = ticket_pause(ticket=ticket, **how)
        return "waiting" if result.changed else f"not paused: {result.reason}"
    result = ticket_resume(ticket=ticket, **how)
    return "resumed" if result.changed else f"not resumed: {result.reason}"


def customer_message_is(*, message: dict[str, Any], bot: str, engineer_ids: set[str]) -> bool:
    """A person who is not on the roster (the customer, in a shared channel) writing in a thread,
    whether or not they mention the bot."""
    user = _str(message.get("user"))
    if not user or user == bot or message.get("bot_id") or user in engineer_ids:
        return False
    return message.get("subtype") in HUMAN_SUBTYPES or message.get("subtype") == "thread_broadcast"


def customer_wrote_handle(*, ticket: Ticket, event: dict[str, Any], now: datetime) -> str:
    """The customer wrote in the ticket's thread: a wait is over, or (after an answer or a
    close) a next-response cycle starts from this message. Once per message."""
    ts = _str(event.get("ts"))
    at = ts_to_datetime(ts) or now  # Slack's own time of the message, as for an engineer's answer
    user = _str(event.get("user"))
    key = f"message:{ticket.channel.slack_channel_id}:{ts}"
    if ticket.state == TicketState.WAITING:
        result = ticket_resume(ticket=ticket, via=TicketVia.CUSTOMER, actor=user, at=at, request_key=key,
                               now=now)
        return "resumed: the customer wrote" if result.changed else f"not resumed: {result.reason}"
    if ticket.state in (TicketState.RESPONDED, TicketState.CLOSED):
        started = ticket_next_response_start(ticket=ticket, request_key=key, message_ts=ts, actor=user, at=at,
                                             now=now)
        return f"next-response cycle {started.number}" if started.started else f"no cycle: {started.reason}"
    return f"customer wrote; ticket is {ticket.state}"
