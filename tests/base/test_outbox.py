"""The outbox: every bot post is recorded before it is sent, posted at most once per key,
looked up in the thread before any re-post, and classified one way (rate limited,
ambiguous, permanent). Slack is a real HTTP stand-in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from base.fake_slack import BOT_USER_ID
from base.models import OutboxMessage, OutboxPurpose, OutboxStatus
from base.outbox import METADATA_EVENT_TYPE, DeliveryStatus, outbox_post, outbox_record, outbox_send

pytestmark = pytest.mark.django_db

CHANNEL, THREAD = "CSUPPORT1", "1790000000.000100"


@pytest.fixture
def slack(fake_slack):
    fake_slack.add_message(CHANNEL, "the customer's ticket", ts=THREAD, user="UCUSTOMER")
    return fake_slack


def post(key="reply:1", text="Snoozed for 30 minutes."):
    return outbox_post(key=key, purpose=OutboxPurpose.REPLY, channel=CHANNEL, thread_ts=THREAD, text=text)


def record(key="reply:1", text="hello"):
    return outbox_record(key=key, purpose=OutboxPurpose.REPLY, channel=CHANNEL, thread_ts=THREAD, text=text)


def test_a_message_is_recorded_then_posted_with_its_key(slack):
    delivery = post()
    assert delivery.status == DeliveryStatus.SENT and not delivery.recovered
    [posted] = slack.posts(thread_ts=THREAD)
    assert posted["metadata"] == {"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": "reply:1"}}
    row = OutboxMessage.objects.get(key="reply:1")
    assert (row.status, row.slack_ts, row.attempts) == (OutboxStatus.SENT, posted["ts"], 1)
    assert row.lease_until is None


def test_the_same_key_is_never_posted_twice(slack):
    post()
    again = post(text="a different rendering")
    assert again.status == DeliveryStatus.SENT and again.recovered
    assert len(slack.posts()) == 1
    assert OutboxMessage.objects.get().text == "Snoozed for 30 minutes."


def test_a_rate_limit_posts_nothing_and_the_next_attempt_posts_without_looking(slack):
    slack.fail_next("chat.postMessage", status=429, retry_after=7)
    limited = post()
    assert (limited.status, limited.retry_after) == (DeliveryStatus.RATE_LIMITED, 7)
    assert OutboxMessage.objects.get().status == OutboxStatus.RETRY
    assert post().status == DeliveryStatus.SENT
    assert len(slack.posts()) == 1
    assert slack.calls("conversations.replies") == []


@pytest.mark.parametrize("failure", [{"status": 500}, {"status": 503}, {"error": "internal_error"}])
def test_after_an_ambiguous_failure_the_next_attempt_looks_in_the_thread_first(slack, failure):
    slack.fail_next("chat.postMessage", **failure)
    first = post()
    assert first.status == DeliveryStatus.AMBIGUOUS
    row = OutboxMessage.objects.get()
    assert (row.status, row.attempts) == (OutboxStatus.SENDING, 1)
    assert post().status == DeliveryStatus.SENT
    assert len(slack.calls("conversations.replies")) == 1
    assert len(slack.posts()) == 1


def test_a_post_that_landed_before_the_sender_died_is_found_not_repeated(slack):
    row = record()
    # A sender took it, Slack accepted the post, and the sender died before writing that down.
    OutboxMessage.objects.filter(pk=row.pk).update(status=OutboxStatus.SENDING, attempts=1,
                                                   lease_until=timezone.now() - timedelta(seconds=1))
    metadata = {"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": "reply:1"}}
    landed = slack.add_message(CHANNEL, "hello", thread_ts=THREAD, user=BOT_USER_ID, metadata=metadata)
    delivery = outbox_send(OutboxMessage.objects.get(pk=row.pk))
    assert (delivery.status, delivery.recovered) == (DeliveryStatus.SENT, True)
    assert delivery.slack_ts == landed["ts"]
    assert slack.calls("chat.postMessage") == []


def test_a_post_of_the_previous_layout_is_recognised_too(slack):
    row = record(key="ticket:9:level:1")
    OutboxMessage.objects.filter(pk=row.pk).update(status=OutboxStatus.SENDING, attempts=1)
    slack.add_message(CHANNEL, "Level 1", thread_ts=THREAD, user=BOT_USER_ID,
                      metadata={"event_type": "slabuddy_escalation",
                                "event_payload": {"key": "ticket:9:level:1"}})
    assert outbox_send(OutboxMessage.objects.get(pk=row.pk)).recovered
    assert slack.calls("chat.postMessage") == []


def test_a_message_held_by_a_live_sender_is_left_alone(slack):
    row = record()
    OutboxMessage.objects.filter(pk=row.pk).update(status=OutboxStatus.SENDING, attempts=1,
                                                   lease_until=timezone.now() + timedelta(seconds=30))
    assert outbox_send(OutboxMessage.objects.get(pk=row.pk)).status == DeliveryStatus.IN_FLIGHT
    assert slack.calls() == []


def test_a_stuck_message_whose_sender_died_is_sent_by_the_next_attempt(slack):
    row = record()
    OutboxMessage.objects.filter(pk=row.pk).update(status=OutboxStatus.SENDING, attempts=1,
                                                   lease_until=timezone.now() - timedelta(seconds=1))
    delivery = outbox_send(OutboxMessage.objects.get(pk=row.pk))
    assert delivery.status == DeliveryStatus.SENT and not delivery.recovered
    assert len(slack.calls("conversations.replies")) == 1  # looked first: it had not landed
    assert len(slack.posts()) == 1


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "invalid_blocks",
                                   "an_error_slack_adds_tomorrow"])
def test_a_permanent_error_fails_the_message_for_good(slack, error):
    slack.fail_next("chat.postMessage", error=error)
    failed = post()
    assert (failed.status, failed.error) == (DeliveryStatus.PERMANENT, error)
    assert OutboxMessage.objects.get().status == OutboxStatus.FAILED
    assert post().status == DeliveryStatus.PERMANENT
    assert len(slack.calls("chat.postMessage")) == 1


def test_new_content_replaces_a_message_that_certainly_never_reached_slack(slack):
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    post(text="first rendering")
    post(text="second rendering")
    assert [m["text"] for m in slack.posts()] == ["second rendering"]


def test_content_that_may_have_reached_slack_is_kept(slack):
    slack.fail_next("chat.postMessage", status=500)
    post(text="first rendering")
    post(text="second rendering")
    assert [m["text"] for m in slack.posts()] == ["first rendering"]
