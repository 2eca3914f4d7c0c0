"""POST /slack/events: signatures, url_verification, de-duplication, and what each event does."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from base.fake_slack import BOT_USER_ID
from base.models import OutboxMessage
from calendars.factories import EngineerFactory
from escalation.models import Escalation
from escalation.transitions import EscalationState
from slackbot.dispatch import slack_inbound_process as process
from slackbot.models import InboundState, SlackInbound
from slackbot.replies import SlackRetryLater
from slackbot.tasks import slack_inbound_process
from tests.support.slack_requests import (
    deliver,
    event_callback,
    helpdesk_message,
    now_ts,
    post_event,
    slack_headers,
)
from tickets.models import ResponseMode, Ticket, TicketEvent, TicketState

pytestmark = pytest.mark.django_db

# -- signatures -------------------------------------------------------------------


def test_valid_signature_stores_and_queues(client, slack_secrets, channel, fake_slack,
                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_event(client, event_callback(helpdesk_message(), event_id="EvA"))
    assert response.status_code == 200
    assert fake_slack.calls() == [] and Ticket.objects.count() == 0  # the HTTP path only stores
    assert response.json() == {"ok": True, "duplicate": False}
    assert SlackInbound.objects.get().key == "EvA"
    assert len(callbacks) == 1  # one Celery task, after commit


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"HTTP_X_SLACK_REQUEST_TIMESTAMP": str(int(time.time()))}, 401),
    ({"HTTP_X_SLACK_SIGNATURE": "v0=abc"}, 401),
    ({"HTTP_X_SLACK_REQUEST_TIMESTAMP": "yesterday", "HTTP_X_SLACK_SIGNATURE": "v0=abc"}, 401),
])
def test_missing_headers_are_refused(client, slack_secrets, headers, status):
    body = json.dumps(event_callback(helpdesk_message())).encode()
    response = client.post("/slack/events", data=body, content_type="application/json", **headers)
    assert response.status_code == status
    assert SlackInbound.objects.count() == 0


def test_wrong_secret_is_refused(client, slack_secrets):
    response = post_event(client, event_callback(helpdesk_message()), secret="not-the-secret")
    assert response.status_code == 403
    assert SlackInbound.objects.count() == 0


def test_tampered_body_is_refused(client, slack_secrets):
    body = json.dumps(event_callback(helpdesk_message())).encode()
    headers = slack_headers(body)
    tampered = body.replace(b"4711", b"4712")
    response = client.post("/slack/events", data=tampered, content_type="application/json", **headers)
    assert response.status_code == 403
    assert SlackInbound.objects.count() == 0


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_stale_or_future_timestamp_is_refused(client, slack_secrets, age):
    response = post_event(client, event_callback(helpdesk_message()), timestamp=int(time.time()) - age)
    assert response.status_code == 403
    assert SlackInbound.objects.count() == 0


def test_just_inside_the_window_is_accepted(client, slack_secrets):
    response = post_event(client, event_callback(helpdesk_message()), timestamp=int(time.time()) - 290)
    assert response.status_code == 200


def test_without_a_configured_secret_everything_is_refused(client, settings):
    settings.SLACK_SIGNING_SECRET = None
    response = post_event(client, event_callback(helpdesk_message()))
    assert response.status_code == 403
    assert SlackInbound.objects.count() == 0


def test_get_is_not_allowed(client, slack_secrets):
    assert client.get("/slack/events").status_code == 405


# -- url_verification and malformed bodies ---------------------------------------------


def test_url_verification_answers_the_challenge(client, slack_secrets):
    payload = {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "type": "url_verification",
               "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    response = post_event(client, payload)
    assert response.status_code == 200
    assert response.json() == {"challenge": payload["challenge"]}
    assert SlackInbound.objects.count() == 0


def test_url_verification_must_be_signed(client, slack_secrets):
    body = json.dumps({"type": "url_verification", "challenge": "x"}).encode()
    response = client.post("/slack/events", data=body, content_type="application/json")
    assert response.status_code == 401


@pytest.mark.parametrize("body", [
    b"not json", b"[1, 2]", b"\xff\xfe", b'{"type": "event_callback"}',
    b'{"type": "event_callback", "event_id": "Ev1", "event": "x"}',
    b'{"type": "event_callback", "event_id": 5, "event": {"type": "message"}}',
    b'{"type": "url_verification"}', b'{"a": NaN}', b'{"type": "event_callback", "x": 1e400}',
    b'{"type": "event_callback", "x": -Infinity}', b'[' * 5000 + b']' * 5000,
    b'{"type": "event_callback", "event_id": "E1", "event": {"type": "message", "ts": 1e999}}',
    b'{"type": "event_callback", "event_id": "\\u0000"}',
    b'{"type": "event_callback", "event_id": "E\\ud800", "event": {"type": "message"}}',
])
def test_malformed_bodies_get_400_and_write_nothing(client, slack_secrets, body):
    response = post_event(client, body)
    assert response.status_code == 400
    assert SlackInbound.objects.count() == 0


def test_unhashable_event_type_is_not_a_crash(client, slack_secrets):
    payload = {"type": "event_callback", "event_id": "Ev1", "event": {"type": ["message"]}}
    assert post_event(client, payload).status_code == 200
    assert SlackInbound.objects.count() == 0


@pytest.mark.parametrize("event_id", [None, "", 5])
def test_an_ignored_event_type_without_event_id_is_acknowledged(client, slack_secrets, event_id):
    event = {"type": "pin_added", "user": "U1", "channel_id": "C1",
             "item": {"type": "message", "channel": "C1", "message": {"ts": now_ts()}}}
    payload = {k: v for k, v in event_callback(event).items() if k != "event_id"}
    if event_id is not None:
        payload["event_id"] = event_id
    response = post_event(client, payload)
    assert response.status_code == 200 and response.json()["ignored"] == "event type"
    assert SlackInbound.objects.count() == 0


@pytest.mark.parametrize("event_type", ["message", "app_mention"])
def test_a_handled_event_without_event_id_is_400(client, slack_secrets, event_type):
    payload = {k: v for k, v in event_callback({**helpdesk_message(), "type": event_type}).items()
               if k != "event_id"}
    assert post_event(client, payload).status_code == 400
    assert SlackInbound.objects.count() == 0


def test_unhandled_event_types_are_acknowledged_not_stored(client, slack_secrets):
    event = {"type": "pin_added", "user": "U1", "channel_id": "C1",
             "item": {"type": "message", "channel": "C1", "message": {"ts": now_ts()}}}
    assert post_event(client, event_callback(event)).status_code == 200
    assert post_event(client, {"type": "app_rate_limited", "minute_rate_limited": 1}).status_code == 200
    assert SlackInbound.objects.count() == 0


# -- de-duplication ------------------------------------------------------------------


def test_a_retry_of_a_stored_event_is_acknowledged_once(client, slack_secrets, channel, fake_slack,
                                                         django_capture_on_commit_callbacks):
    payload = event_callback(helpdesk_message(), event_id="EvRetry")
    with django_capture_on_commit_callbacks() as callbacks:
        first = post_event(client, payload)
        second = post_event(client, payload, retry_num=1)
        third = post_event(client, payload, retry_num=2)
    assert [r.json()["duplicate"] for r in (first, second, third)] == [False, True, True]
    assert SlackInbound.objects.count() == 1
    assert len(callbacks) == 1
    inbound = SlackInbound.objects.get()
    slack_inbound_process(inbound.pk)
    slack_inbound_process(inbound.pk)  # a duplicated Celery message
    assert Ticket.objects.count() == 1
    assert Escalation.objects.count() == 3


def test_a_retry_whose_first_delivery_failed_before_storing_is_not_lost(
    client, slack_secrets, channel, fake_slack, monkeypatch
):
    import slackbot.views

    real_store = slackbot.views.slack_inbound_store
    calls = {"n": 0}

    def flaky_store(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return real_store(**kwargs)

    monkeypatch.setattr(slackbot.views, "slack_inbound_store", flaky_store)
    payload = event_callback(helpdesk_message(), event_id="EvLost")
    with pytest.raises(RuntimeError):
        post_event(client, payload)
    assert SlackInbound.objects.count() == 0
    response = post_event(client, payload, retry_num=1)
    assert response.status_code == 200 and response.json()["duplicate"] is False
    inbound = SlackInbound.objects.get()
    assert inbound.retry_num == 1
    slack_inbound_process(inbound.pk)
    assert Ticket.objects.count() == 1


def test_a_stale_pending_duplicate_is_queued_again(client, slack_secrets, django_capture_on_commit_callbacks):
    payload = event_callback(helpdesk_message(), event_id="EvStuck")
    post_event(client, payload)
    SlackInbound.objects.update(received_at=SlackInbound.objects.get().received_at - timedelta(minutes=5))
    with django_capture_on_commit_callbacks() as callbacks:
        post_event(client, payload, retry_num=1)
    assert len(callbacks) == 1


def test_inbound_sweep_queues_a_drain_for_deliveries_left_waiting(slack_secrets, client, monkeypatch):
    import slackbot.inbound
    import slackbot.tasks

    post_event(client, event_callback(helpdesk_message(), event_id="EvSweep"))
    queued = []
    monkeypatch.setattr(slackbot.inbound, "task_send", lambda name, **kw: queued.append(name) or True)
    assert slackbot.tasks.slack_inbound_sweep() is False  # too fresh: its own drain is on the way
    SlackInbound.objects.update(received_at=SlackInbound.objects.get().received_at - timedelta(minutes=2))
    assert slackbot.tasks.slack_inbound_sweep() is True
    assert queued == ["slackbot.tasks.slack_inbound_drain"]
    # Held by a drain (or waiting for Slack's Retry-After): not yet.
    SlackInbound.objects.update(not_before=timezone.now() + timedelta(seconds=30))
    assert slackbot.tasks.slack_inbound_sweep() is False


# -- intake through events ---------------------------------------------------------------


def test_helpdesk_message_becomes_one_armed_ticket(client, slack_secrets, channel, fake_slack):
    message = helpdesk_message()
    deliver(client, message)
    ticket = Ticket.objects.get()
    assert (ticket.slack_ts, ticket.helpdesk_ticket_id, ticket.priority, ticket.ticket_type) == (
        message["ts"], "4711", "high", "Incident")
    assert ticket.state == TicketState.ARMED
    assert sorted(Escalation.objects.values_list("level", flat=True)) == [1, 2, 3]
    opened = TicketEvent.objects.get(ticket=ticket, kind="opened")
    assert opened.details["source"] == "events"
    assert SlackInbound.objects.get().state == InboundState.DONE
    # The same message again under another event id (Slack can do that): still one ticket.
    deliver(client, message)
    assert Ticket.objects.count() == 1
    assert TicketEvent.objects.filter(kind="opened").count() == 1


def test_unwatched_channel_is_ignored(client, slack_secrets, channel, fake_slack):
    deliver(client, helpdesk_message(channel="COTHER"))
    assert Ticket.objects.count() == 0
    assert SlackInbound.objects.get().last_error == "unwatched channel"


def test_inactive_channel_is_ignored(client, slack_secrets, channel, fake_slack):
    channel.active = False
    channel.save()
    deliver(client, helpdesk_message())
    assert Ticket.objects.count() == 0


IGNORED_EVENTS = {
    "message_changed": lambda: {
        "type": "message", "subtype": "message_changed", "hidden": True, "channel": "CSUPPORT1",
        "ts": now_ts(), "message": helpdesk_message(), "previous_message": helpdesk_message()},
    "message_deleted": lambda: {"type": "message", "subtype": "message_deleted", "hidden": True,
                                "channel": "CSUPPORT1", "ts": now_ts(), "deleted_ts": now_ts(1),
                                "previous_message": helpdesk_message()},
    "channel_join": lambda: {"type": "message", "subtype": "channel_join", "channel": "CSUPPORT1",
                             "user": "U2", "ts": now_ts(), "text": "<@U2> has joined the channel"},
    "channel_leave": lambda: {"type": "message", "subtype": "channel_leave", "channel": "CSUPPORT1",
                              "user": "U2", "ts": now_ts(), "text": "<@U2> has left the channel"},
    "channel_topic": lambda: {"type": "message", "subtype": "channel_topic", "channel": "CSUPPORT1",
                              "user": "U2", "ts": now_ts(), "text": "set the topic: *Ticket ID*: 1"},
    "channel_purpose": lambda: {"type": "message", "subtype": "channel_purpose", "channel": "CSUPPORT1",
                                "user": "U2", "ts": now_ts(), "text": "set the purpose: *Ticket ID*: 1"},
    "thread_broadcast": lambda: {**helpdesk_message(), "subtype": "thread_broadcast", "user": "U2",
                                 "thread_ts": now_ts(3)},
    "thread_reply": lambda: {**helpdesk_message(), "thread_ts": now_ts(3)},
    "own_message": lambda: {**helpdesk_message(), "subtype": None, "user": BOT_USER_ID},
    "older_than_look_back": lambda: helpdesk_message(ts=now_ts(121)),
}


@pytest.mark.parametrize("name", sorted(IGNORED_EVENTS))
def test_ignored_messages_never_become_tickets(client, slack_secrets, channel, fake_slack, name):
    deliver(client, IGNORED_EVENTS[name]())
    assert Ticket.objects.count() == 0
    assert OutboxMessage.objects.count() == 0
    assert fake_slack.posts() == []


# -- mentions ----------------------------------------------------------------------------


@pytest.fixture
def ticket(client, slack_secrets, channel, fake_slack):
    EngineerFactory(slack_user_id="UENGINEER1")
    message = fake_slack.add_message("CSUPPORT1", helpdesk_message()["text"], ts=now_ts(),
                                     subtype="bot_message", bot_id="BZENDESK")
    deliver(client, {**helpdesk_message(ts=message["ts"])})
    return Ticket.objects.get(slack_ts=message["ts"])


def mention(ticket, text="please hold", user="UENGINEER1", ts=None, event_type="app_mention"):
    return {"type": event_type, "channel": ticket.channel.slack_channel_id, "user": user,
            "text": f"<@{BOT_USER_ID}> {text}", "ts": ts or now_ts(), "thread_ts": ticket.slack_ts}


def due_times(ticket):
    return dict(Escalation.objects.filter(ticket=ticket).values_list("level", "due_at"))


def test_mention_in_ticket_thread_snoozes_once_and_replies_once(client, ticket, fake_slack):
    before = due_times(ticket)
    event = mention(ticket)
    deliver(client, event, event_id="EvMention1")
    deliver(client, event, event_id="EvMention1", retry_num=1)  # Slack retry
    deliver(client, {**event, "type": "message"})  # the same message as a message.channels event
    after = due_times(ticket)
    assert {level: after[level] - before[level] for level in before} == {
        1: timedelta(minutes=30), 2: timedelta(minutes=30), 3: timedelta(minutes=30)}
    replies = fake_slack.posts(channel="CSUPPORT1", thread_ts=ticket.slack_ts)
    assert len(replies) == 1
    assert "Snoozed for 30 minutes by <@UENGINEER1>" in replies[0]["text"]
    assert "Level 1: <!date^" in replies[0]["text"]
    assert TicketEvent.objects.filter(ticket=ticket, kind="snoozed").count() == 1
    ticket.refresh_from_db()
    assert ticket.state == TicketState.ARMED  # a mention never disarms


def test_two_different_mentions_snooze_twice(client, ticket, fake_slack):
    before = due_times(ticket)
    deliver(client, mention(ticket))
    deliver(client, mention(ticket))
    assert due_times(ticket)[1] - before[1] == timedelta(minutes=60)
    assert len(fake_slack.posts(thread_ts=ticket.slack_ts)) == 2


def test_help_replies_with_the_guide_and_does_not_snooze(client, ticket, fake_slack):
    before = due_times(ticket)
    deliver(client, mention(ticket, text="help"))
    assert due_times(ticket) == before
    [reply] = fake_slack.posts(thread_ts=ticket.slack_ts)
    assert "snooze" in reply["text"].lower() and "SLA Buddy" in reply["text"]


def test_mention_outside_a_ticket_thread_explains_usage(client, slack_secrets, channel, fake_slack):
    top = {"type": "app_mention", "channel": "CSUPPORT1", "user": "U5",
           "text": f"<@{BOT_USER_ID}> what do you do?", "ts": now_ts()}
    deliver(client, top)
    deliver(client, {**top, "type": "message"})
    [reply] = fake_slack.posts(channel="CSUPPORT1")
    assert reply["thread_ts"] == top["ts"] and "ticket's thread" in reply["text"]
    assert Ticket.objects.count() == 0


def test_mention_on_a_responded_ticket_says_so(client, ticket, fake_slack):
    from escalation.disarming import ticket_mark_responded

    ticket_mark_responded(ticket=ticket, path="admin", actor="t", at=ticket.opened_at + timedelta(minutes=1))
    deliver(client, mention(ticket))
    [reply] = fake_slack.posts(thread_ts=ticket.slack_ts)
    assert "already been answered" in reply["text"]


def test_rate_limited_reply_is_retried_later_and_posted_once(client, ticket, fake_slack):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)
    event = mention(ticket)
    response = post_event(client, event_callback(event, event_id="EvLimited"))
    assert response.status_code == 200
    inbound = SlackInbound.objects.get(key="EvLimited")
    with pytest.raises(SlackRetryLater) as caught:
        process(inbound_id=inbound.pk)
    assert caught.value.retry_after == 7
    inbound.refresh_from_db()
    assert inbound.state == InboundState.PENDING
    assert process(inbound_id=inbound.pk) == "snooze not applied"  # snoozed the first time
    replies = fake_slack.posts(thread_ts=ticket.slack_ts)
    # The retry's reply reads like the first delivery's would have.
    assert len(replies) == 1 and "Snoozed for 30 minutes" in replies[0]["text"]
    assert TicketEvent.objects.filter(ticket=ticket, kind="snoozed").count() == 1


def test_a_reply_that_may_have_reached_slack_is_looked_up_before_it_is_posted_again(
    client, ticket, fake_slack, settings
):
    fake_slack.fail_next("chat.postMessage", status=500)
    post_event(client, event_callback(mention(ticket), event_id="EvAmbiguous"))
    inbound = SlackInbound.objects.get(key="EvAmbiguous")
    with pytest.raises(SlackRetryLater) as caught:
        process(inbound_id=inbound.pk)
    # The 500 may still turn into a post: the retry comes after SLACK_AMBIGUOUS_WAIT_SECONDS.
    assert caught.value.retry_after >= settings.SLACK_AMBIGUOUS_WAIT_SECONDS
    with time_machine.travel(timezone.now() + timedelta(seconds=caught.value.retry_after), tick=False):
        assert process(inbound_id=inbound.pk) == "snooze not applied"
    assert len(fake_slack.calls("conversations.replies")) == 1
    assert len(fake_slack.posts(thread_ts=ticket.slack_ts)) == 1


def test_a_reply_left_unsent_by_a_dead_worker_is_posted_when_the_mention_is_processed_again(
    client, ticket, fake_slack
):
    event = mention(ticket, text="help")
    key = f"mention:{ticket.channel.slack_channel_id}:{event['ts']}"
    # A worker recorded the reply, started posting, and died before Slack answered.
    OutboxMessage.objects.create(key=key, purpose="reply", channel=ticket.channel.slack_channel_id,
                                 thread_ts=ticket.slack_ts, text="guide", status="sending", attempts=1,
                                 lease_until=timezone.now() - timedelta(seconds=1))
    deliver(client, event, event_id="EvRedelivered")
    [posted] = fake_slack.posts(thread_ts=ticket.slack_ts)
    assert posted["text"] == "guide"
    assert OutboxMessage.objects.get(key=key).status == "sent"


def test_mention_by_a_bot_is_ignored(client, ticket, fake_slack):
    deliver(client, {**mention(ticket), "bot_id": "BOTHER"})
    assert fake_slack.posts() == []


# -- Slack-thread responses ------------------------------------------------------------------


def reply(ticket, user, text="Looking into it now", ts=None):
    return {"type": "message", "channel": ticket.channel.slack_channel_id, "user": user, "text": text,
            "ts": ts or now_ts(), "thread_ts": ticket.slack_ts, "parent_user_id": "UCUSTOMER"}


def test_roster_engineer_reply_in_thread_disarms(client, ticket):
    EngineerFactory(slack_user_id="UENG42")
    deliver(client, reply(ticket, "UENG42"))
    ticket.refresh_from_db()
    assert ticket.state == TicketState.RESPONDED
    assert (ticket.response_path, ticket.responded_by) == ("slack_thread", "UENG42")
    assert set(Escalation.objects.filter(ticket=ticket).values_list("state", flat=True)) == {
        EscalationState.CANCELLED}


@pytest.mark.parametrize("case", ["customer", "inactive_engineer", "bot", "mention", "helpdesk_channel"])
def test_replies_that_are_not_a_response(client, ticket, case):
    EngineerFactory(slack_user_id="UENG42")
    EngineerFactory(slack_user_id="UOLD", active=False)
    event = {
        "customer": lambda: reply(ticket, "UCUSTOMER"),
        "inactive_engineer": lambda: reply(ticket, "UOLD"),
        "bot": lambda: {**reply(ticket, "UENG42"), "bot_id": "B1", "subtype": "bot_message"},
        "mention": lambda: reply(ticket, "UENG42", text=f"<@{BOT_USER_ID}> snooze please"),
        "helpdesk_channel": lambda: reply(ticket, "UENG42"),
    }[case]()
    if case == "helpdesk_channel":
        ticket.channel.response_mode = ResponseMode.ZENDESK
        ticket.channel.save()
    deliver(client, event)
    ticket.refresh_from_db()
    assert ticket.state == TicketState.ARMED


def test_engineer_reply_broadcast_to_channel_also_disarms(client, ticket):
    EngineerFactory(slack_user_id="UENG42")
    deliver(client, {**reply(ticket, "UENG42"), "subtype": "thread_broadcast"})
    ticket.refresh_from_db()
    assert ticket.state == TicketState.RESPONDED


def test_mention_by_someone_off_the_roster_does_not_snooze(client, ticket, fake_slack):
    before = due_times(ticket)
    deliver(client, mention(ticket, user="UCUSTOMER"))
    assert due_times(ticket) == before
    [reply] = fake_slack.posts(thread_ts=ticket.slack_ts)
    assert "roster" in reply["text"]
