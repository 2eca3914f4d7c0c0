"""POST /slack/interactions: the Snooze button on escalation messages."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from calendars.factories import EngineerFactory
from escalation.models import Escalation
from slackbot.models import SlackInbound
from tests.support.slack_requests import (
    button_payload,
    deliver,
    helpdesk_message,
    now_ts,
    post_interaction,
    process_pending,
    slack_headers,
)
from tickets.models import TicketEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def escalated(client, slack_secrets, channel, fake_slack):
    """A ticket and the bot's level-1 message in its thread, with the Snooze button."""
    for user in ("UAMY", "UBOB"):
        EngineerFactory(slack_user_id=user)
    deliver(client, helpdesk_message())
    from tickets.models import Ticket

    ticket = Ticket.objects.get()
    blocks = [
        {"type": "section", "block_id": "body", "text": {"type": "mrkdwn", "text": "Level 1: <@U1>"}},
        {"type": "actions", "block_id": "act", "elements": [
            {"type": "button", "action_id": "snooze", "value": str(ticket.pk),
             "text": {"type": "plain_text", "text": "Snooze 30 min"}}]},
    ]
    posted = fake_slack.add_message("CSUPPORT1", "Level 1: <@U1>", user="UFAKEBOT01", bot_id="BFAKEBOT01",
                                    thread_ts=ticket.slack_ts, blocks=blocks)
    return ticket, posted


def test_snooze_button_snoozes_updates_the_message_and_replies(client, escalated, fake_slack):
    ticket, posted = escalated
    before = dict(Escalation.objects.filter(ticket=ticket).values_list("level", "due_at"))
    payload = button_payload(ticket, posted)
    assert post_interaction(client, payload).status_code == 200
    assert post_interaction(client, payload).status_code == 200  # double click / redelivery
    process_pending()
    after = dict(Escalation.objects.filter(ticket=ticket).values_list("level", "due_at"))
    assert all(after[level] - before[level] == timedelta(minutes=30) for level in before)
    assert TicketEvent.objects.filter(ticket=ticket, kind="snoozed").get().actor == "UAMY"
    [updated] = [m for m in fake_slack.thread("CSUPPORT1", ticket.slack_ts) if m["ts"] == posted["ts"]]
    assert "Snoozed by <@UAMY>" in json.dumps(updated["blocks"])
    assert any(b.get("type") == "actions" for b in updated["blocks"])  # others can still snooze
    replies = [p for p in fake_slack.posts(thread_ts=ticket.slack_ts) if p["ts"] != posted["ts"]]
    assert len(replies) == 1 and "Snoozed for 30 minutes by <@UAMY>" in replies[0]["text"]
    assert len(fake_slack.calls("chat.update")) == 1


def test_a_second_press_snoozes_again_and_shows_the_latest(client, escalated, fake_slack):
    ticket, posted = escalated
    before = Escalation.objects.get(ticket=ticket, level=1).due_at
    post_interaction(client, button_payload(ticket, posted, user="UAMY"))
    post_interaction(client, button_payload(ticket, posted, user="UBOB"))
    process_pending()
    assert Escalation.objects.get(ticket=ticket, level=1).due_at - before == timedelta(minutes=60)
    [updated] = [m for m in fake_slack.thread("CSUPPORT1", ticket.slack_ts) if m["ts"] == posted["ts"]]
    text = json.dumps(updated["blocks"])
    assert "UBOB" in text and text.count("slabuddy_snoozed") == 1


@pytest.mark.parametrize("change", ["other_action", "unknown_ticket", "not_a_number", "other_channel",
                                    "off_roster"])
def test_buttons_that_do_nothing(client, escalated, fake_slack, change):
    ticket, posted = escalated
    payload = button_payload(ticket, posted)
    if change == "other_action":
        payload = button_payload(ticket, posted, action_id="open_admin")
    elif change == "unknown_ticket":
        payload = button_payload(ticket, posted, value="999999")
    elif change == "not_a_number":
        payload = button_payload(ticket, posted, value="abc")
    elif change == "off_roster":
        payload = button_payload(ticket, posted, user="UCUSTOMER")
    else:
        payload["container"]["channel_id"] = "COTHER"
    before = dict(Escalation.objects.filter(ticket=ticket).values_list("level", "due_at"))
    assert post_interaction(client, payload).status_code == 200
    process_pending()
    assert dict(Escalation.objects.filter(ticket=ticket).values_list("level", "due_at")) == before
    replies = [p for p in fake_slack.posts(thread_ts=ticket.slack_ts) if p["ts"] != posted["ts"]]
    assert replies == [] or (change == "off_roster" and "roster" in replies[0]["text"])
    assert fake_slack.calls("chat.update") == []


def test_interactions_need_a_valid_signature(client, escalated):
    ticket, posted = escalated
    count = SlackInbound.objects.count()
    assert post_interaction(client, button_payload(ticket, posted), secret="wrong").status_code == 403
    assert post_interaction(client, button_payload(ticket, posted),
                            timestamp=int(time.time()) - 600).status_code == 403
    body = urlencode({"payload": json.dumps(button_payload(ticket, posted))}).encode()
    unsigned = client.post("/slack/interactions", data=body, content_type="application/x-www-form-urlencoded")
    assert unsigned.status_code == 401
    assert SlackInbound.objects.count() == count


@pytest.mark.parametrize("body", [b"", b"payload=not-json", b"other=1", b"payload=%5B1%5D", b"\xff"])
def test_malformed_interactions_get_400(client, slack_secrets, body):
    response = client.post("/slack/interactions", data=body,
                           content_type="application/x-www-form-urlencoded", **slack_headers(body))
    assert response.status_code == 400
    assert SlackInbound.objects.count() == 0


def test_interaction_ts_helper_is_unique_per_press(client, escalated):
    ticket, posted = escalated
    post_interaction(client, button_payload(ticket, posted, action_ts=now_ts()))
    post_interaction(client, button_payload(ticket, posted, action_ts=now_ts()))
    assert SlackInbound.objects.filter(kind="interaction").count() == 2
