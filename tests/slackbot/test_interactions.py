"""POST /slack/interactions: the buttons on escalation messages (Snooze, Waiting on customer,
Close, Resume), who may press them, and on which message."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from calendars.factories import EngineerFactory
from escalation.firing import escalation_fire
from escalation.models import Escalation, TicketPause
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
from tickets.models import Ticket, TicketEvent, TicketState

pytestmark = pytest.mark.django_db


@pytest.fixture
def escalated(client, slack_secrets, channel, fake_slack):
    """A ticket and the bot's real level-1 message in its thread, with its buttons."""
    for user in ("UAMY", "UBOB"):
        EngineerFactory(slack_user_id=user)
    deliver(client, helpdesk_message())
    ticket = Ticket.objects.get()
    fake_slack.add_message("CSUPPORT1", "the ticket", ts=ticket.slack_ts, user="UCUSTOMER")
    level1 = Escalation.objects.get(ticket=ticket, level=1)
    assert escalation_fire(escalation_id=level1.pk, version=level1.version,
                           now=level1.due_at + timedelta(seconds=1)) == "fired"
    [posted] = fake_slack.posts(thread_ts=ticket.slack_ts)
    return ticket, posted


def message_now(fake_slack, ticket, posted) -> dict:
    return next(m for m in fake_slack.thread("CSUPPORT1", ticket.slack_ts) if m["ts"] == posted["ts"])


def buttons(message) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_snooze_button_snoozes_updates_the_message_and_replies(client, escalated, fake_slack):
    ticket, posted = escalated
    before = dict(Escalation.objects.filter(ticket=ticket).values_list("level", "due_at"))
    payload = button_payload(ticket, posted)
    assert post_interaction(client, payload).status_code == 200
    assert post_interaction(client, payload).status_code == 200  # a redelivery of the same press
    process_pending()
    after = dict(Escalation.objects.filter(ticket=ticket).values_list("level", "due_at"))
    assert all(after[level] - before[level] == timedelta(minutes=30) for level in (2, 3))
    assert TicketEvent.objects.filter(ticket=ticket, kind="snoozed").get().actor == "UAMY"
    updated = message_now(fake_slack, ticket, posted)
    assert "Snoozed by <@UAMY>" in json.dumps(updated["blocks"])
    assert buttons(updated) == ["snooze", "waiting", "close"]  # others can still snooze
    assert updated["blocks"][0] == posted["blocks"][0]  # the escalation itself is kept
    replies = [p for p in fake_slack.posts(thread_ts=ticket.slack_ts) if p["ts"] != posted["ts"]]
    assert len(replies) == 1 and "Snoozed for 30 minutes by <@UAMY>" in replies[0]["text"]
    assert len(fake_slack.calls("chat.update")) == 1


def test_a_press_by_someone_else_snoozes_again_and_shows_the_latest(client, escalated, fake_slack):
    ticket, posted = escalated
    before = Escalation.objects.get(ticket=ticket, level=2).due_at
    post_interaction(client, button_payload(ticket, posted, user="UAMY"))
    post_interaction(client, button_payload(ticket, posted, user="UBOB"))
    process_pending()
    assert Escalation.objects.get(ticket=ticket, level=2).due_at - before == timedelta(minutes=60)
    blocks = message_now(fake_slack, ticket, posted)["blocks"]
    [state] = [b for b in blocks if b.get("block_id") == "slabuddy_state"]
    assert "Snoozed by <@UBOB>" in json.dumps(state) and "UAMY" not in json.dumps(state)


def test_two_presses_by_the_same_person_within_seconds_snooze_once(client, escalated, fake_slack):
    ticket, posted = escalated
    before = Escalation.objects.get(ticket=ticket, level=2).due_at
    post_interaction(client, button_payload(ticket, posted, user="UAMY", action_ts=f"{time.time():.6f}"))
    post_interaction(client, button_payload(ticket, posted, user="UAMY", action_ts=f"{time.time() + 3:.6f}"))
    process_pending()
    assert Escalation.objects.get(ticket=ticket, level=2).due_at - before == timedelta(minutes=30)
    replies = [p for p in fake_slack.posts(thread_ts=ticket.slack_ts) if p["ts"] != posted["ts"]]
    assert len(replies) == 1


def test_a_snooze_press_without_the_message_in_its_payload_keeps_the_message(client, escalated, fake_slack):
    """Some clients send no ``message``: the escalation is never overwritten with only a note."""
    ticket, posted = escalated
    payload = button_payload(ticket, posted)
    del payload["message"]
    post_interaction(client, payload)
    process_pending()
    updated = message_now(fake_slack, ticket, posted)
    assert updated["blocks"][0] == posted["blocks"][0] and updated["text"].startswith(posted["text"])
    assert "Snoozed by <@UAMY>" in json.dumps(updated["blocks"])


def test_waiting_then_resume_then_close_buttons(client, escalated, fake_slack):
    ticket, posted = escalated
    post_interaction(client, button_payload(ticket, posted, action_id="waiting"))
    process_pending()
    ticket.refresh_from_db()
    assert ticket.state == TicketState.WAITING
    later = Escalation.objects.filter(ticket=ticket, level__gt=1)
    assert set(later.values_list("state", flat=True)) == {"paused"}
    waiting = message_now(fake_slack, ticket, posted)
    assert buttons(waiting) == ["resume", "close"] and "Waiting on customer since" in json.dumps(waiting)

    post_interaction(client, button_payload(ticket, posted, action_id="resume", user="UBOB"))
    process_pending()
    ticket.refresh_from_db()
    assert ticket.state == TicketState.ARMED
    assert TicketPause.objects.get(ticket=ticket).resumed_by == "UBOB"
    assert buttons(message_now(fake_slack, ticket, posted)) == ["snooze", "waiting", "close"]

    post_interaction(client, button_payload(ticket, posted, action_id="close"))
    process_pending()
    ticket.refresh_from_db()
    assert (ticket.state, ticket.closed_via, ticket.closed_by) == (TicketState.CLOSED, "button", "UAMY")
    closed = message_now(fake_slack, ticket, posted)
    assert buttons(closed) == [] and "Closed by <@UAMY> with the Close button" in json.dumps(closed)
    assert len(fake_slack.posts(thread_ts=ticket.slack_ts)) == 1  # states shown, nothing posted


@pytest.mark.parametrize("change", ["other_action", "unknown_ticket", "not_a_number", "other_channel",
                                    "off_roster", "other_message", "other_ticket"])
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
    elif change == "other_message":  # the ticket's own button, pressed on a message that is not its level
        payload["container"]["message_ts"] = ticket.slack_ts
    elif change == "other_ticket":  # a button naming another ticket, on this ticket's message
        other = Ticket.objects.create(channel=ticket.channel, slack_ts=now_ts(), opened_at=ticket.opened_at)
        payload = button_payload(ticket, posted, value=str(other.pk))
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
