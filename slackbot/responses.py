"""Response detection: an engineer's reply in the thread (as an event, or read back by a
poll), the helpdesk's first agent reply (polled), and the signed helpdesk webhook.

Every path ends in the engine's ``ticket_mark_responded``. Network calls are
made outside any database transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from base.helpdesk import helpdesk_status_word, helpdesk_ticket_check
from base.slack_api import SlackError, bot_user_id, slack_call, slack_client
from escalation.cycles import ticket_cycle_current
from escalation.disarming import ticket_mark_responded
from escalation.helpdesk_status import ticket_helpdesk_status_apply
from slackbot.lifecycle import customer_message_is, customer_wrote_handle
from slackbot.parsing import HUMAN_SUBTYPES, mentions_user, ts_to_datetime
from slackbot.replies import SlackRetryLater, slack_error_raise
from slackbot.roster import roster_slack_ids
from tickets.models import LIVE_STATES, ResponseMode, ResponsePath, Ticket, TicketState, WatchedChannel

logger = logging.getLogger("slabuddy.responses")

HELPDESK_PROVIDERS = {
    ResponseMode.ZENDESK: ResponsePath.ZENDESK,
    ResponseMode.FRESHDESK: ResponsePath.FRESHDESK,
}
POLL_MAX_AGE = timedelta(days=7)  # an armed ticket older than this has escalated to the top long ago


@dataclass(frozen=True)
class PollResult:
    checked: int
    responded: int
    unknown: int


# The helpdesk poll also reads the status of answered tickets: pending, then open again, is the
# customer writing again (a next-response cycle); solved closes them.
HELPDESK_POLLED_STATES = (TicketState.ARMED, TicketState.WAITING, TicketState.RESPONDED)


def _due_for_check(*, modes: list[str], now: datetime, limit: int,
                   states: tuple[str, ...] = (TicketState.ARMED,)) -> list[Ticket]:
    """Tickets to check, least recently checked first (a round robin across runs)."""
    return list(
        Ticket.objects.filter(
            state__in=states,
            channel__active=True,
            channel__response_mode__in=modes,
            opened_at__gte=now - POLL_MAX_AGE,
        )
        .select_related("channel")
        .order_by(F("responses_checked_at").asc(nulls_first=True), "opened_at")[:limit]
    )


def _checked(ticket: Ticket, now: datetime) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(responses_checked_at=now)


def helpdesk_poll(*, now: datetime, limit: int = 200) -> PollResult:
    """Ask the helpdesk about open tickets in helpdesk channels: a first reply disarms one, and
    a change of its status closes, pauses, resumes it or starts a next-response cycle."""
    tickets = [
        t for t in _due_for_check(modes=list(HELPDESK_PROVIDERS), now=now, limit=limit,
                                  states=HELPDESK_POLLED_STATES)
        if t.helpdesk_ticket_id
    ]
    responded = unknown = 0
    for ticket in tickets:
        mode = ticket.channel.response_mode
        awaiting_first = ticket.state == TicketState.ARMED and ticket.responded_at is None
        check = helpdesk_ticket_check(provider=mode, ticket_id=ticket.helpdesk_ticket_id,
                                      first_reply=awaiting_first)
        _checked(ticket, now)
        if (awaiting_first and check.replied is None) or (not awaiting_first and check.status is None):
            unknown += 1
        if awaiting_first and check.replied:
            responded += int(ticket_mark_responded(ticket=ticket, path=HELPDESK_PROVIDERS[mode], actor=mode,
                                                   at=min(check.at or now, now)))
        if check.status is not None:
            ticket_helpdesk_status_apply(ticket=ticket, status=check.status, actor=mode, at=now, now=now)
    return PollResult(len(tickets), responded, unknown)


def slack_threads_poll(*, now: datetime, limit: int = 50) -> PollResult:
    """Backfill Slack-thread responses the Events API missed (downtime, lost deliveries).

    Reads the threads of armed tickets in Slack-native channels with
    ``conversations.replies``; stops at the first rate limit or outage (the
    next run carries on where this one stopped, least recently checked first).
    """
    tickets = _due_for_check(modes=[ResponseMode.SLACK_THREAD], now=now, limit=limit)
    if not tickets:
        return PollResult(0, 0, 0)
    client, bot = slack_client(), bot_user_id()
    engineers = roster_slack_ids()
    checked = responded = unknown = 0
    for ticket in tickets:
        try:
            reply = _engineer_reply(client=client, ticket=ticket, bot=bot, engineers=engineers)
        except SlackRetryLater as exc:
            logger.warning("thread_poll_paused ticket=%s reason=%s", ticket.pk, exc)
            unknown += 1
            break
        checked += 1
        _checked(ticket, now)
        if reply is not None:
            at = min(ts_to_datetime(reply.get("ts")) or now, now)
            responded += int(ticket_mark_responded(
                ticket=ticket, path=ResponsePath.SLACK_THREAD, actor=str(reply.get("user")), at=at
            ))
    return PollResult(checked, responded, unknown)


def _engineer_reply(*, client, ticket: Ticket, bot: str, engineers: set[str]) -> dict | None:
    """The first engineer's reply of the ticket's current cycle (after the message that started it)."""
    cycle = ticket_cycle_current(ticket.pk)
    since = cycle.started_at if cycle is not None and cycle.number > 1 else None
    cursor = None
    for _ in range(20):  # 20 pages of 200 replies: far beyond any support thread
        try:
            page = slack_call(client.conversations_replies, channel=ticket.channel.slack_channel_id,
                              ts=ticket.slack_ts, limit=200, cursor=cursor)
        except SlackError as exc:
            slack_error_raise(exc, what="conversations.replies")
            return None  # permanent (thread deleted, bot removed): nothing to find
        for message in page.get("messages") or []:
            written = ts_to_datetime(message.get("ts"))
            if since is not None and (written is None or written < since):
                continue
            if thread_reply_is_response(message=message, bot=bot, engineer_ids=engineers):
                return message
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not (page.get("has_more") and cursor):
            return None
    return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


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


def thread_reply_handle(*, channel: WatchedChannel, event: dict[str, Any],
                        now: datetime | None = None) -> str:
    """In Slack-native channels a roster engineer's reply in the thread is the response. In any
    channel, the customer writing in the thread ends a wait or starts a next-response cycle."""
    now = now or timezone.now()
    ticket = Ticket.objects.filter(channel=channel, slack_ts=_str(event.get("thread_ts"))).select_related(
        "channel").first()
    if ticket is None:
        return "not a ticket thread"
    user, bot = _str(event.get("user")), bot_user_id()
    engineers = roster_slack_ids([user]) if user else set()
    if customer_message_is(message=event, bot=bot, engineer_ids=engineers):
        return customer_wrote_handle(ticket=ticket, event=event, now=now)
    if channel.response_mode != ResponseMode.SLACK_THREAD:
        return "responses come from the helpdesk here"
    if ticket.state not in LIVE_STATES:
        return f"not awaiting a response ({ticket.state})"
    if not thread_reply_is_response(message=event, bot=bot, engineer_ids=engineers):
        return "not a response"
    at = ts_to_datetime(event.get("ts")) or now
    changed = ticket_mark_responded(ticket=ticket, path=ResponsePath.SLACK_THREAD, actor=user, at=at)
    return "responded" if changed else "already responded"


class WebhookPayloadError(ValueError):
    pass


@dataclass(frozen=True)
class WebhookResult:
    responded: int  # tickets this request marked answered
    status: dict[int, str]  # ticket id -> what its status change did


def helpdesk_webhook_handle(*, provider: str, payload: Any, now: datetime) -> WebhookResult:
    """Mark the helpdesk ticket named in the payload responded, and act on its status.

    Body: ``{"ticket_id": "123", "responded_at": "2026-01-01T10:00:00Z", "agent": "Ana",
    "status": "pending"}``, every key but ``ticket_id`` optional. A body with ``status`` and
    neither ``responded_at`` nor ``agent`` reports a status only (solved/closed close the ticket,
    pending/on-hold pause it, open resumes it or starts a next-response cycle); any other body
    reports a reply, as it always did. Only tickets in channels whose response mode is this
    provider or ``webhook`` are matched, so two helpdesks' ticket numbers cannot collide.
    """
    if not isinstance(payload, dict):
        raise WebhookPayloadError("body must be a JSON object")
    ticket_id = payload.get("ticket_id")
    if isinstance(ticket_id, int) and not isinstance(ticket_id, bool):
        ticket_id = str(ticket_id)
    if not isinstance(ticket_id, str) or not ticket_id.strip() or len(ticket_id) > 64:
        raise WebhookPayloadError("ticket_id (string or integer) is required")
    raw_status = payload.get("status")
    if raw_status is not None and (isinstance(raw_status, bool) or not isinstance(raw_status, str | int)):
        raise WebhookPayloadError("status must be a string, such as open, pending, solved or closed")
    status = helpdesk_status_word(raw_status)
    is_reply = raw_status is None or "responded_at" in payload or "agent" in payload
    at = _responded_at(payload.get("responded_at"), now=now)
    agent = payload.get("agent")
    actor = f"{provider}: {agent}"[:200] if isinstance(agent, str) and agent.strip() else provider
    matching = Ticket.objects.filter(
        helpdesk_ticket_id=ticket_id.strip().removeprefix("#"),
        channel__response_mode__in=[provider, ResponseMode.WEBHOOK],
    ).select_related("channel")
    replied = list(matching.filter(state__in=[*LIVE_STATES, TicketState.NO_POLICY])) if is_reply else []
    # Checked for every ticket before any changes: a refused body changes nothing.
    if any(at < ticket.opened_at for ticket in replied):
        raise WebhookPayloadError("responded_at is before the ticket was opened")
    responded = 0
    for ticket in replied:
        responded += int(ticket_mark_responded(ticket=ticket, path=ResponsePath.WEBHOOK, actor=actor, at=at))
    changes = {}
    if status is not None:
        for ticket in matching.exclude(state__in=[TicketState.NO_POLICY, TicketState.EXCLUDED]):
            changes[ticket.pk] = ticket_helpdesk_status_apply(ticket=ticket, status=status, actor=actor,
                                                              at=now, now=now)
    elif raw_status is not None:
        logger.info("helpdesk_webhook_status_ignored provider=%s status=%r", provider, str(raw_status)[:50])
    logger.info("helpdesk_webhook provider=%s helpdesk_id=%s responded=%s status=%s", provider, ticket_id,
                responded, changes or "-")
    return WebhookResult(responded, changes)


RESPONDED_AT_SKEW = timedelta(minutes=1)  # a helpdesk clock a little ahead of ours is not an error


def _responded_at(raw: Any, *, now: datetime) -> datetime:
    """When the reply happened: now if not given; never in the future, never before the ticket."""
    if raw is None:
        return now
    try:
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise WebhookPayloadError("responded_at must be an ISO 8601 time with a time zone")
    if parsed > now + RESPONDED_AT_SKEW:
        raise WebhookPayloadError("responded_at is in the future")
    return min(parsed, now)
