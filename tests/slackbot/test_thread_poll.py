"""Backfilling Slack-thread responses the Events API missed, with conversations.replies."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from base.fake_slack import BOT_USER_ID
from calendars.factories import EngineerFactory
from escalation.arming import ticket_arm
from slackbot.parsing import ts_to_datetime
from slackbot.responses import slack_threads_poll
from slackbot.tasks import slack_threads_poll as poll_task
from tickets.factories import TicketFactory
from tickets.models import ResponseMode, TicketState

pytestmark = pytest.mark.django_db


def thread_ticket(channel, fake, minutes_ago=20):
    ts = f"{time.time() - minutes_ago * 60:.6f}"
    fake.add_message(channel.slack_channel_id, "*Ticket ID*: 1", ts=ts, bot_id="BZ", subtype="bot_message")
    ticket = TicketFactory(channel=channel, slack_ts=ts, opened_at=ts_to_datetime(ts))
    ticket_arm(ticket=ticket)
    return ticket


def say(fake, ticket, user, text, minutes_ago, **fields):
    return fake.add_message(ticket.channel.slack_channel_id, text, user=user, thread_ts=ticket.slack_ts,
                            ts=f"{time.time() - minutes_ago * 60:.6f}", **fields)


def test_engineer_reply_missed_by_events_is_found(channel, fake_slack):
    EngineerFactory(slack_user_id="UENG1")
    answered = thread_ticket(channel, fake_slack)
    say(fake_slack, answered, "UCUSTOMER", "any news?", 15)
    say(fake_slack, answered, "UENG1", f"<@{BOT_USER_ID}> snooze", 14)  # a mention is not an answer
    say(fake_slack, answered, "UOTHER", "me too", 13)
    reply = say(fake_slack, answered, "UENG1", "Fixed, sorry for the wait", 12)
    waiting = thread_ticket(channel, fake_slack)
    say(fake_slack, waiting, "UCUSTOMER", "hello?", 5)
    say(fake_slack, waiting, BOT_USER_ID, "Level 1", 4, bot_id="BFAKEBOT01")
    now = datetime.now(UTC)
    result = slack_threads_poll(now=now)
    assert (result.checked, result.responded) == (2, 1)
    answered.refresh_from_db()
    waiting.refresh_from_db()
    assert answered.state == TicketState.RESPONDED
    assert (answered.response_path, answered.responded_by) == ("slack_thread", "UENG1")
    assert answered.responded_at == ts_to_datetime(reply["ts"])
    assert waiting.state == TicketState.ARMED and waiting.responses_checked_at == now


def test_rate_limit_pauses_and_the_next_run_carries_on(channel, fake_slack):
    EngineerFactory(slack_user_id="UENG1")
    first, second = thread_ticket(channel, fake_slack, 30), thread_ticket(channel, fake_slack, 20)
    say(fake_slack, second, "UENG1", "on it", 10)
    fake_slack.fail_next("conversations.replies", status=429, retry_after=30)
    started = time.monotonic()
    paused = slack_threads_poll(now=datetime.now(UTC))
    assert time.monotonic() - started < 5 and paused.checked == 0 and paused.unknown == 1
    assert "responded=1" in poll_task()
    second.refresh_from_db()
    assert second.state == TicketState.RESPONDED
    first.refresh_from_db()
    assert first.state == TicketState.ARMED


def test_helpdesk_channels_and_answered_tickets_are_not_read(channel, fake_slack):
    channel.response_mode = ResponseMode.ZENDESK
    channel.save()
    thread_ticket(channel, fake_slack)
    assert slack_threads_poll(now=datetime.now(UTC)).checked == 0
    assert fake_slack.calls("conversations.replies") == []


def test_in_a_next_response_cycle_only_a_reply_after_the_customers_message_answers(channel, fake_slack):
    from escalation.cycles import ticket_next_response_start
    from escalation.disarming import ticket_mark_responded
    from escalation.factories import NextResponseStepFactory
    from escalation.models import TicketCycle

    EngineerFactory(slack_user_id="UENG1")
    NextResponseStepFactory(policy=channel.tier.policies.get(), level=1)
    ticket = thread_ticket(channel, fake_slack)
    first = say(fake_slack, ticket, "UENG1", "Fixed", 15)
    assert ticket_mark_responded(ticket=ticket, path="slack_thread", actor="UENG1",
                                 at=ts_to_datetime(first["ts"]))
    follow_up = say(fake_slack, ticket, "UCUSTOMER", "broken again", 10)
    ticket_next_response_start(ticket=ticket, request_key="m:1", message_ts=follow_up["ts"],
                               actor="UCUSTOMER", at=ts_to_datetime(follow_up["ts"]))
    assert slack_threads_poll(now=datetime.now(UTC)).responded == 0  # Ana's earlier answer is not this one
    second = say(fake_slack, ticket, "UENG1", "Fixed again", 5)
    assert slack_threads_poll(now=datetime.now(UTC)).responded == 1
    cycle = TicketCycle.objects.get(ticket=ticket, number=2)
    assert cycle.responded_at == ts_to_datetime(second["ts"])
    ticket.refresh_from_db()
    assert ticket.responded_at == ts_to_datetime(first["ts"])  # the first response stays the ticket's
