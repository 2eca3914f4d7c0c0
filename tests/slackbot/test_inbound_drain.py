"""Stored first, processed later: the drain turns stored deliveries into tickets in batches,
answers mentions after its batch commits, and one bad delivery never holds the others back."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

import slackbot.drain
import slackbot.inbound
import slackbot.intake
from base.fake_slack import BOT_ID, BOT_USER_ID
from escalation.models import Escalation, TicketSla
from slackbot.dispatch import inbound_is_intake
from slackbot.drain import slack_inbound_drain
from slackbot.inbound import DRAIN_QUEUED_KEY, DRAIN_TASK, slack_inbound_nudge_clear, slack_inbound_store
from slackbot.intake import ticket_intake_message
from slackbot.models import InboundState, SlackInbound
from tests.support.slack_requests import event_callback, helpdesk_message, now_ts, post_event
from tickets.models import Ticket, TicketEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_ids_configured(settings):
    """The bot's own user and bot ids are configured, so judging a bot's message needs no Slack."""
    settings.SLACK_BOT_ID = BOT_ID


def store(event: dict, key: str | None = None) -> SlackInbound:
    key = key or f"Ev{time.time_ns()}"
    return slack_inbound_store(key=key, kind="event", payload=event_callback(event, event_id=key))[0]


def outcome(inbound: SlackInbound) -> tuple[str, str]:
    inbound.refresh_from_db()
    return inbound.state, inbound.last_error


def test_a_flood_of_new_tickets_is_armed_in_a_few_queries(channel, slack_secrets,
                                                          django_assert_max_num_queries):
    stored = [store(helpdesk_message(ticket_id=str(n))) for n in range(30)]
    # One at a time this takes about twenty queries a ticket; a batch takes a handful for all.
    with django_assert_max_num_queries(30):
        result = slack_inbound_drain(batch_size=50)
    assert (result.processed, result.failed, result.batches) == (30, 0, 1)
    assert Ticket.objects.count() == 30 and TicketSla.objects.count() == 30
    assert Escalation.objects.filter(state="pending").count() == 90  # three levels each
    assert TicketEvent.objects.filter(kind="opened").count() == 30
    assert TicketEvent.objects.filter(kind="armed").count() == 30
    assert {outcome(inbound) for inbound in stored} == {(InboundState.DONE, "intake: helpdesk fields")}
    ticket = Ticket.objects.get(helpdesk_ticket_id="7")
    assert ticket.priority == "high" and ticket.sla.policy_name
    assert sorted(ticket.escalations.values_list("level", flat=True)) == [1, 2, 3]


def test_each_delivery_gets_the_outcome_it_would_get_alone(channel, slack_secrets):
    message = helpdesk_message()
    seen_before = helpdesk_message(ticket_id="100")
    ticket_intake_message(channel=channel, message=seen_before, source="scan", now=timezone.now(),
                          bot_user_id=BOT_USER_ID)
    join = {"type": "message", "subtype": "channel_join", "channel": "CSUPPORT1", "user": "U2",
            "ts": now_ts(), "text": "<@U2> has joined the channel"}
    stored = {
        "new": store(message),
        "same message, other event id": store(message),
        "seen by the scan": store(seen_before),
        "unwatched": store(helpdesk_message(channel="COTHER")),
        "join": store(join),
    }
    assert slack_inbound_drain().processed == 5
    assert {name: outcome(inbound)[1] for name, inbound in stored.items()} == {
        "new": "intake: helpdesk fields",
        "same message, other event id": "intake: already a ticket",
        "seen by the scan": "intake: already a ticket",
        "unwatched": "unwatched channel",
        "join": "intake: subtype channel_join",
    }
    assert Ticket.objects.count() == 2
    assert TicketEvent.objects.filter(kind="opened").count() == 2


def test_a_ticket_created_meanwhile_elsewhere_sends_the_batch_one_at_a_time(channel, slack_secrets,
                                                                            monkeypatch):
    messages = [helpdesk_message(ticket_id=str(n)) for n in range(3)]
    stored = [store(message) for message in messages]
    real = slackbot.intake.timeline_record_many

    def scan_got_there_first(events):
        # The channel scan commits the first message's ticket between our read and our insert.
        monkeypatch.setattr(slackbot.intake, "timeline_record_many", real)
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(slackbot.intake, "timeline_record_many", scan_got_there_first)
    assert slack_inbound_drain().processed == 3
    assert Ticket.objects.count() == 3 and Escalation.objects.count() == 9
    assert TicketEvent.objects.filter(kind="opened").count() == 3
    assert {outcome(inbound)[0] for inbound in stored} == {InboundState.DONE}


def test_a_mention_is_answered_after_the_batch_commits(channel, slack_secrets, fake_slack, django_user_model):
    ticket_message = helpdesk_message()
    fake_slack.add_message("CSUPPORT1", "ticket", ts=ticket_message["ts"], user="UCUSTOMER")
    store(ticket_message)
    mention = {"type": "app_mention", "channel": "CSUPPORT1", "user": "UCUSTOMER",
               "text": f"<@{BOT_USER_ID}> help", "ts": now_ts(), "thread_ts": ticket_message["ts"]}
    asked = store(mention)
    result = slack_inbound_drain()
    assert result.processed == 2 and result.failed == 0
    assert outcome(asked)[0] == InboundState.DONE
    [reply] = fake_slack.posts(thread_ts=ticket_message["ts"])
    assert reply["text"]


def test_a_bad_delivery_is_retried_later_and_never_holds_the_others_back(channel, slack_secrets, monkeypatch):
    good = [store(helpdesk_message(ticket_id=str(n))) for n in range(3)]
    bad = store(helpdesk_message(ticket_id="bad"), key="EvBad")
    real_handle = slackbot.drain.slack_event_handle

    def batch_breaks(**kwargs):
        raise RuntimeError("the batch failed")

    def one_breaks(*, payload, now, **kwargs):
        if payload["event_id"] == "EvBad":
            raise ValueError("cannot handle this one")
        return real_handle(payload=payload, now=now, **kwargs)

    monkeypatch.setattr(slackbot.drain, "slack_events_intake", batch_breaks)
    monkeypatch.setattr(slackbot.drain, "slack_event_handle", one_breaks)
    result = slack_inbound_drain()
    assert (result.processed, result.failed) == (3, 1)
    assert {outcome(inbound)[0] for inbound in good} == {InboundState.DONE}
    bad.refresh_from_db()
    assert bad.state == InboundState.PENDING and bad.attempts == 1 and "cannot handle" in bad.last_error
    assert bad.not_before > timezone.now()
    assert slack_inbound_drain().processed == 0  # not before its backoff
    SlackInbound.objects.filter(pk=bad.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    monkeypatch.undo()
    assert slack_inbound_drain().processed == 1
    assert Ticket.objects.filter(helpdesk_ticket_id="bad").count() == 1


def test_a_rate_limited_reply_waits_for_slack(channel, slack_secrets, fake_slack, monkeypatch):
    mention = {"type": "app_mention", "channel": "CSUPPORT1", "user": "UCUSTOMER",
               "text": f"<@{BOT_USER_ID}> help", "ts": now_ts(), "thread_ts": now_ts(1)}
    asked = store(mention)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)
    queued = []
    monkeypatch.setattr(slackbot.drain, "slack_inbound_drain_queue", lambda **kw: queued.append(kw))
    assert slack_inbound_drain().failed == 1
    asked.refresh_from_db()
    assert asked.state == InboundState.PENDING
    assert timedelta(seconds=5) < asked.not_before - timezone.now() <= timedelta(seconds=7)
    assert queued == [{"countdown": 7}]  # a drain comes back when Slack said


def test_the_sweep_prunes_old_deliveries_and_keeps_pending_ones(channel):
    old = timezone.now() - timedelta(days=15)
    done = SlackInbound.objects.create(key="EvOld", kind="event", payload={}, received_at=old, state="done")
    waiting = SlackInbound.objects.create(key="EvWaiting", kind="event", payload={}, received_at=old)
    slackbot.drain.slack_inbound_sweep()
    assert not SlackInbound.objects.filter(pk=done.pk).exists()
    assert SlackInbound.objects.filter(pk=waiting.pk).exists()


def test_with_redis_unreachable_a_delivery_is_still_stored_and_acknowledged(client, slack_secrets, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    slackbot.inbound._redis.cache_clear()
    try:
        response = post_event(client, event_callback(helpdesk_message(), event_id="EvNoRedis"))
    finally:
        slackbot.inbound._redis.cache_clear()
    assert response.status_code == 200 and response.json() == {"ok": True, "duplicate": False}
    assert SlackInbound.objects.get().key == "EvNoRedis"


def test_on_redis_one_drain_is_queued_until_it_starts(settings, monkeypatch,
                                                      django_capture_on_commit_callbacks):
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("the drain-queued flag lives in Redis; the embedded broker queues one per delivery")
    slackbot.inbound._redis().delete(DRAIN_QUEUED_KEY)
    queued = []
    monkeypatch.setattr(slackbot.inbound, "task_send", lambda name, **kw: queued.append(name) or True)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(5):
                store(helpdesk_message())
        assert queued == [DRAIN_TASK]
        slack_inbound_nudge_clear()  # the drain started: what arrives now needs another
        with django_capture_on_commit_callbacks(execute=True):
            store(helpdesk_message())
        assert queued == [DRAIN_TASK, DRAIN_TASK]
    finally:
        slackbot.inbound._redis().delete(DRAIN_QUEUED_KEY)


def test_on_the_embedded_broker_every_delivery_queues_a_drain(settings, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    if settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("on Redis one drain is queued until it starts (the test above)")
    queued = []
    monkeypatch.setattr(slackbot.inbound, "task_send", lambda name, **kw: queued.append(name) or True)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            store(helpdesk_message())
    assert queued == [DRAIN_TASK] * 3


def test_until_the_bots_own_id_is_known_a_bots_message_is_judged_outside_the_batch(
    channel, slack_secrets, fake_slack, settings
):
    settings.SLACK_BOT_ID = ""
    # A Slack address this process never asked, so its answer is not cached yet.
    settings.SLACK_API_BASE_URL = fake_slack.base_url + "own-id-unknown/"
    helpdesk = store(helpdesk_message(ticket_id="501"))
    own = store({**helpdesk_message(ticket_id="502"), "bot_id": BOT_ID})
    result = slack_inbound_drain(batch_size=50)
    assert result.processed == 2
    assert len(fake_slack.calls("auth.test")) == 1  # asked once, outside the batch's transaction
    assert outcome(helpdesk) == (InboundState.DONE, "intake: helpdesk fields")
    assert outcome(own)[0] == InboundState.DONE
    assert list(Ticket.objects.values_list("helpdesk_ticket_id", flat=True)) == ["501"]
    later = store(helpdesk_message(ticket_id="503"))
    assert inbound_is_intake(later, bot=BOT_USER_ID)  # known now: a bot's message joins the batch again
    assert slack_inbound_drain(batch_size=50).processed == 1
    assert outcome(later) == (InboundState.DONE, "intake: helpdesk fields")
    assert len(fake_slack.calls("auth.test")) == 1
