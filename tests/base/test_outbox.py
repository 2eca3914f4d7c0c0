"""The outbox: every bot post is recorded before it is sent, posted at most once per key,
looked up in the thread before any re-post, and classified one way (rate limited,
ambiguous, permanent). Slack is a real HTTP stand-in."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from base.fake_slack import BOT_USER_ID
from base.models import OutboxMessage, OutboxPurpose, OutboxStatus
from base.outbox import (
    METADATA_EVENT_TYPE,
    DeliveryStatus,
    DuplicateCheckStatus,
    outbox_duplicates_check,
    outbox_post,
    outbox_record,
    outbox_send,
)
from ops.testing.worker import wait_for

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
    # Once the first request can no longer land (SLACK_AMBIGUOUS_WAIT_SECONDS), it looks, then posts.
    with time_machine.travel(row.not_before + timedelta(seconds=1), tick=False):
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


def test_a_copy_read_before_new_content_was_recorded_posts_the_new_content(slack):
    older = record(text="first rendering")
    with time_machine.travel(older.updated_at, tick=False):  # also within one clock tick
        record(text="second rendering")
    assert outbox_send(older).status == DeliveryStatus.SENT
    assert [m["text"] for m in slack.posts()] == ["second rendering"]
    assert OutboxMessage.objects.get().text == "second rendering"


def test_content_that_may_have_reached_slack_is_kept(slack):
    slack.fail_next("chat.postMessage", status=500)
    post(text="first rendering")
    with time_machine.travel(OutboxMessage.objects.get().not_before, tick=False):  # after the wait
        post(text="second rendering")
    assert [m["text"] for m in slack.posts()] == ["first rendering"]


@pytest.mark.parametrize("fault", [{"status": 503}, {"drop": True}], ids=["held-then-503", "dropped"])
def test_a_reply_that_lands_after_the_client_gave_up_is_not_posted_again(slack, settings, fault):
    settings.SLACK_TIMEOUT_SECONDS, settings.SLACK_AMBIGUOUS_WAIT_SECONDS = 1, 20
    slack.land_late("chat.postMessage", hold=1.5 if fault.get("status") else 0.7, **fault)
    first = post()
    assert first.status == DeliveryStatus.AMBIGUOUS
    assert first.not_before is not None and first.retry_after > 15
    calls = len(slack.calls())
    again = post()  # at once (a task retried early, a sweeper): it neither looks nor posts
    assert (again.status, again.not_before) == (DeliveryStatus.AMBIGUOUS, first.not_before)
    assert len(slack.calls()) == calls
    wait_for(lambda: slack.posts(thread_ts=THREAD), timeout=10, message="the first request to land")
    with time_machine.travel(first.not_before, tick=False):
        found = post()
    assert (found.status, found.recovered) == (DeliveryStatus.SENT, True)
    assert len(slack.posts(thread_ts=THREAD)) == 1
    row = OutboxMessage.objects.get()
    assert row.verify_at == first.not_before + timedelta(seconds=settings.SLACK_DUPLICATE_CHECK_SECONDS)


class Died(BaseException):
    """The sender's process dies during its HTTP call."""


def test_a_sender_that_died_mid_post_is_not_taken_over_before_its_request_could_land(
    slack, settings, monkeypatch
):
    settings.SLACK_TIMEOUT_SECONDS, settings.SLACK_AMBIGUOUS_WAIT_SECONDS = 10, 20
    row = record()
    started = timezone.now()

    def dies(method, **kwargs):
        raise Died

    with time_machine.travel(started, tick=False), monkeypatch.context() as patched:
        patched.setattr("base.outbox.slack_call", dies)
        with pytest.raises(Died):
            outbox_send(row)
    row.refresh_from_db()
    # Marked before the call: its request could land until the timeout plus the wait.
    assert (row.status, row.attempts) == (OutboxStatus.SENDING, 1)
    assert row.not_before == started + timedelta(seconds=10 + 20)
    OutboxMessage.objects.filter(pk=row.pk).update(lease_until=started)  # the lease ran out
    with time_machine.travel(started + timedelta(seconds=29), tick=False):
        assert outbox_send(OutboxMessage.objects.get(pk=row.pk), held=True).status == DeliveryStatus.AMBIGUOUS
    assert slack.calls() == []
    with time_machine.travel(started + timedelta(seconds=30), tick=False):
        assert outbox_send(OutboxMessage.objects.get(pk=row.pk), held=True).status == DeliveryStatus.SENT
    assert [c.method for c in slack.calls()] == ["conversations.replies", "chat.postMessage"]


def test_a_rate_limit_leaves_nothing_to_wait_for(slack, settings):
    slack.fail_next("chat.postMessage", status=429, retry_after=3)
    assert post().status == DeliveryStatus.RATE_LIMITED
    assert OutboxMessage.objects.get().not_before is None  # refused: nothing can land
    assert post().status == DeliveryStatus.SENT


def test_a_top_level_message_that_lands_late_is_found_in_the_channel_not_posted_again(slack, settings):
    # A digest is a top-level message: there is no thread to look in, so the channel's history is read.
    settings.SLACK_TIMEOUT_SECONDS, settings.SLACK_AMBIGUOUS_WAIT_SECONDS = 1, 20
    slack.land_late("chat.postMessage", hold=1.5, status=503)
    first = outbox_post(key="digest:1", purpose=OutboxPurpose.REPLY, channel=CHANNEL, thread_ts="",
                        text="Last week")
    assert first.status == DeliveryStatus.AMBIGUOUS
    wait_for(lambda: [m for m in slack.posts(channel=CHANNEL) if m["text"] == "Last week"], timeout=10,
             message="the first request to land")
    with time_machine.travel(first.not_before, tick=False):
        found = outbox_send(OutboxMessage.objects.get(key="digest:1"))
    assert (found.status, found.recovered) == (DeliveryStatus.SENT, True)
    assert [c.method for c in slack.calls()][-1] == "conversations.history"
    assert [m["text"] for m in slack.posts(channel=CHANNEL)] == ["Last week"]
    assert OutboxMessage.objects.get(key="digest:1").verify_at is not None  # and looked at again later


def test_a_later_top_level_duplicate_is_deleted_and_the_first_kept(slack, settings):
    row = outbox_record(key="digest:2", purpose=OutboxPurpose.REPLY, channel=CHANNEL, thread_ts="",
                        text="Last week")
    first = outbox_send(row)
    metadata = {"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": "digest:2"}}
    later = slack.add_message(CHANNEL, "Last week", user=BOT_USER_ID, metadata=metadata)["ts"]
    OutboxMessage.objects.filter(pk=row.pk).update(verify_at=timezone.now())
    check = outbox_duplicates_check(OutboxMessage.objects.get(pk=row.pk))
    assert check.status == DuplicateCheckStatus.DELETED
    assert "conversations.history" in [c.method for c in slack.calls()]  # a top-level message has no thread
    assert (check.kept_ts, check.deleted) == (first.slack_ts, (later,))
    assert [m["ts"] for m in slack.deleted()] == [later]
    assert [m["ts"] for m in slack.posts(channel=CHANNEL)] == [first.slack_ts]
