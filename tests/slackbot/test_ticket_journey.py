"""A ticket's journey through Slack, end to end with the real escalation engine and the fake Slack:
a helpdesk-bot ticket becomes exactly one armed ticket through events, the scan, or both; the
Snooze button / a thread mention moves its levels 30 minutes; a response through any path stops
it; forged input changes nothing."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from calendars.factories import EngineerFactory
from escalation.firing import escalation_fire
from escalation.models import Escalation
from escalation.transitions import EscalationState
from slackbot.models import SlackInbound
from slackbot.parsing import ts_to_datetime
from slackbot.scan import channel_scan
from tests.support.helpdesk_server import ZD, Helpdesk
from tests.support.slack_requests import event_callback, post_event, post_interaction, process_pending
from tickets.models import ResponseMode, Ticket, TicketState

pytestmark = pytest.mark.django_db

TEXT = "New ticket\n*Ticket ID*: 4711\n*Ticket priority*: Urgent\n*Type*: Incident"


def helpdesk_post(fake, channel="CSUPPORT1", minutes_ago=1):
    return fake.add_message(channel, TEXT, ts=f"{time.time() - minutes_ago * 60:.6f}",
                            subtype="bot_message", bot_id="BZENDESK", username="Zendesk")


def fire(level_row):
    level_row.refresh_from_db()
    return escalation_fire(escalation_id=level_row.pk, version=level_row.version,
                           now=level_row.due_at + timedelta(seconds=1))


def test_events_and_scan_snooze_button_and_thread_response(client, slack_secrets, channel, fake_slack):
    EngineerFactory(slack_user_id="UENG1", name="Ana")
    message = helpdesk_post(fake_slack)
    event = {**message, "channel": "CSUPPORT1"}
    # Forged first: nothing.
    assert post_event(client, event_callback(event, event_id="EvF"), secret="forged").status_code == 403
    assert SlackInbound.objects.count() == 0
    # Events, a Slack retry, and the scan all see it.
    post_event(client, event_callback(event, event_id="Ev1"))
    post_event(client, event_callback(event, event_id="Ev1"), retry_num=1)
    process_pending()
    channel_scan(channel=channel, now=ts_to_datetime(message["ts"]) + timedelta(minutes=1))
    ticket = Ticket.objects.get()
    assert ticket.state == TicketState.ARMED and ticket.priority == "urgent"
    levels = {row.level: row for row in Escalation.objects.filter(ticket=ticket)}
    assert sorted(levels) == [1, 2, 3]

    # Level 1 fires into the thread with a Snooze button.
    assert fire(levels[1]) == "fired"
    [posted] = fake_slack.posts(thread_ts=ticket.slack_ts)
    assert any(b.get("type") == "actions" for b in posted["blocks"])

    # An engineer presses Snooze on that very message.
    before = {lvl: row.due_at for lvl, row in levels.items() if lvl > 1}
    payload = {
        "type": "block_actions", "user": {"id": "UENG1"}, "team": {"id": "T1"},
        "container": {"type": "message", "message_ts": posted["ts"], "channel_id": "CSUPPORT1"},
        "channel": {"id": "CSUPPORT1"}, "message": {k: posted[k] for k in ("ts", "text", "blocks")},
        "actions": [{**posted["blocks"][1]["elements"][0], "action_ts": f"{time.time():.6f}"}],
    }
    assert post_interaction(client, payload).status_code == 200
    process_pending()
    for lvl, due in before.items():
        levels[lvl].refresh_from_db()
        assert levels[lvl].due_at - due == timedelta(minutes=30)
    updated = [m for m in fake_slack.thread("CSUPPORT1", ticket.slack_ts) if m["ts"] == posted["ts"]][0]
    assert "Snoozed by <@UENG1>" in json.dumps(updated["blocks"])

    # Ana answers in the thread: the ticket is disarmed and level 2 never posts.
    reply = fake_slack.add_message("CSUPPORT1", "On it!", user="UENG1", thread_ts=ticket.slack_ts)
    post_event(client, event_callback({**reply, "channel": "CSUPPORT1"}, event_id="Ev2"))
    process_pending()
    ticket.refresh_from_db()
    assert ticket.state == TicketState.RESPONDED and ticket.response_path == "slack_thread"
    posts_before = len(fake_slack.posts())
    assert fire(levels[2]) in ("stale", "cancelled")
    assert len(fake_slack.posts()) == posts_before
    assert set(Escalation.objects.filter(ticket=ticket, level__gt=1).values_list("state", flat=True)) == {
        EscalationState.CANCELLED}


def test_zendesk_first_reply_seen_before_a_level_fires(client, slack_secrets, channel, fake_slack, settings):
    EngineerFactory(slack_user_id="UENG1")
    channel.response_mode = ResponseMode.ZENDESK
    channel.save()
    server = Helpdesk()
    try:
        settings.ZENDESK_BASE_URL, settings.ZENDESK_EMAIL, settings.ZENDESK_API_TOKEN = (
            server.base_url, "bot@acme.example", "zd-token")
        settings.HELPDESK_TIMEOUT_SECONDS = 1
        message = helpdesk_post(fake_slack)
        post_event(client, event_callback({**message, "channel": "CSUPPORT1"}, event_id="Ev1"))
        process_pending()
        ticket = Ticket.objects.get()
        level1 = Escalation.objects.get(ticket=ticket, level=1)
        server.route(ZD, "zendesk_metrics_waiting.json")
        assert fire(level1) == "fired"  # no reply yet: it fires
        server.route(ZD, "zendesk_metrics_replied.json")
        level2 = Escalation.objects.get(ticket=ticket, level=2)
        assert fire(level2) == "responded"  # an agent answered in Zendesk: it does not
        ticket.refresh_from_db()
        assert ticket.state == TicketState.RESPONDED and ticket.response_path == "zendesk"
        assert len(fake_slack.posts(thread_ts=ticket.slack_ts)) == 1
    finally:
        server.stop()


def test_helpdesk_down_means_the_level_still_fires(client, slack_secrets, channel, fake_slack, settings):
    EngineerFactory(slack_user_id="UENG1")
    channel.response_mode = ResponseMode.FRESHDESK
    channel.save()
    settings.FRESHDESK_BASE_URL, settings.FRESHDESK_API_KEY = "http://127.0.0.1:9", "fd-key"
    message = helpdesk_post(fake_slack)
    post_event(client, event_callback({**message, "channel": "CSUPPORT1"}, event_id="Ev1"))
    process_pending()
    ticket = Ticket.objects.get()
    assert fire(Escalation.objects.get(ticket=ticket, level=1)) == "fired"
