"""The channel scan against the fake Slack Web API: every page, resume after a rate limit, no duplicates."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from base.fake_slack import BOT_USER_ID, FakeSlack
from escalation.models import Escalation
from slackbot.intake import ticket_intake_message
from slackbot.scan import channel_scan
from tickets.models import Ticket, TicketEvent, WatchedChannel

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_pages(settings):
    with FakeSlack(page_limit_cap=50) as fake:
        settings.SLACK_API_BASE_URL = fake.base_url
        settings.SLACK_BOT_TOKEN = "xoxb-test"
        settings.SLACK_BOT_USER_ID = BOT_USER_ID
        yield fake


def add_tickets(fake, count, *, start_minutes_ago=100, channel="CSUPPORT1"):
    """``count`` helpdesk messages spread over the last ``start_minutes_ago`` minutes, plus noise."""
    base = time.time() - start_minutes_ago * 60
    added = []
    for i in range(count):
        ts = f"{base + i * (start_minutes_ago * 60 - 5) / max(count, 1):.6f}"
        added.append(fake.add_message(channel, f"*Ticket ID*: {1000 + i}\n*Ticket priority*: Normal",
                                      ts=ts, subtype="bot_message", bot_id="BZENDESK"))
        if i % 10 == 0:  # noise that must never become a ticket
            fake.add_message(channel, "has joined", ts=f"{float(ts) + 0.5:.6f}", subtype="channel_join",
                             user="U2")
            fake.add_message(channel, "a reply", ts=f"{float(ts) + 0.7:.6f}", thread_ts=ts, user="U3")
    return added


def now():
    return datetime.now(UTC)


def test_first_scan_reads_every_page_within_the_look_back(channel, small_pages):
    added = add_tickets(small_pages, 130)
    small_pages.add_message("CSUPPORT1", "*Ticket ID*: 1", ts=f"{time.time() - 3 * 3600:.6f}",
                            subtype="bot_message", bot_id="BZENDESK")  # older than the 120 min window
    result = channel_scan(channel=channel, now=now())
    assert result.done and result.created == 130 and result.pages >= 3
    assert Ticket.objects.count() == 130
    assert Escalation.objects.count() == 130 * 3
    history = small_pages.calls("conversations.history")
    oldest = float(history[0].args["oldest"])
    assert abs(oldest - (time.time() - 120 * 60)) < 60  # first scan: the look-back window only
    channel.refresh_from_db()
    assert channel.last_seen_ts == max((m["ts"] for m in small_pages.state.messages["CSUPPORT1"]
                                        if "thread_ts" not in m), key=float)
    sources = TicketEvent.objects.filter(kind="opened").values_list("details__source", flat=True)
    assert set(sources) == {"scan"}
    assert {t.slack_ts for t in Ticket.objects.all()} == {m["ts"] for m in added}


def test_next_scan_starts_at_the_last_seen_message(channel, small_pages):
    add_tickets(small_pages, 5)
    channel_scan(channel=channel, now=now())
    channel.refresh_from_db()
    seen = channel.last_seen_ts
    new = small_pages.add_message("CSUPPORT1", "*Ticket ID*: 9999", subtype="bot_message", bot_id="BZ",
                                  ts=f"{time.time():.6f}")
    result = channel_scan(channel=channel, now=now())
    assert result.created == 1 and result.messages == 1
    assert small_pages.calls("conversations.history")[-1].args["oldest"] == seen
    channel.refresh_from_db()
    assert channel.last_seen_ts == new["ts"]


def test_rate_limit_mid_scan_resumes_at_the_same_page(channel, small_pages):
    add_tickets(small_pages, 120)
    original = small_pages.handle
    calls = {"n": 0}

    def limit_second_page(method, args, token):
        if method == "conversations.history":
            calls["n"] += 1
            if calls["n"] == 2:
                small_pages.fail_next("conversations.history", status=429, retry_after=3)
        return original(method, args, token)

    small_pages.handle = limit_second_page
    first = channel_scan(channel=channel, now=now())
    assert not first.done and first.retry_after == 3 and first.cursor
    assert 0 < Ticket.objects.count() <= 50  # the newest page only
    channel.refresh_from_db()
    assert channel.last_seen_ts == ""  # not moved until every page is read
    resumed = channel_scan(channel=channel, now=now(), cursor=first.cursor, oldest=first.oldest,
                           newest=first.newest)
    assert resumed.done
    assert Ticket.objects.count() == 120
    assert small_pages.calls("conversations.history")[-1].args["oldest"] == first.oldest
    channel.refresh_from_db()
    assert channel.last_seen_ts == first.newest


def test_scan_after_events_duplicates_nothing(channel, small_pages):
    added = add_tickets(small_pages, 20)
    for message in added[:12]:  # the Events API saw some of them first
        ticket_intake_message(channel=channel, message=message, source="events", now=now(),
                              bot_user_id=BOT_USER_ID)
    result = channel_scan(channel=channel, now=now())
    assert result.created == 8
    assert Ticket.objects.count() == 20
    assert TicketEvent.objects.filter(kind="opened").count() == 20
    assert channel_scan(channel=channel, now=now()).created == 0


def test_catch_up_after_downtime_reads_everything_since_last_seen(channel, small_pages):
    add_tickets(small_pages, 3, start_minutes_ago=110)
    channel_scan(channel=channel, now=now())
    add_tickets(small_pages, 90, start_minutes_ago=60)  # arrived while we were down
    result = channel_scan(channel=channel, now=now())
    assert result.created == 90 and Ticket.objects.count() == 93


def test_permanent_error_ends_the_scan_quietly(channel, small_pages):
    small_pages.fail_next("conversations.history", error="not_in_channel")
    result = channel_scan(channel=channel, now=now())
    assert result.done and "permanent" in result.error
    channel.refresh_from_db()
    assert channel.last_seen_ts == ""


def test_server_error_is_retried_later(channel, small_pages):
    small_pages.fail_next("conversations.history", status=500)
    result = channel_scan(channel=channel, now=now())
    assert not result.done and result.retry_after > 0


def test_scan_task_never_sleeps_on_a_rate_limit(channel, small_pages, monkeypatch):
    from slackbot import tasks
    from slackbot.models import ChannelScanProgress

    add_tickets(small_pages, 3)
    small_pages.fail_next("conversations.history", status=429, retry_after=11)
    queued = []
    monkeypatch.setattr(tasks.channel_scan, "apply_async", lambda *a, **kw: queued.append(kw))
    started = time.monotonic()
    tasks.channel_scan(channel.pk)
    assert time.monotonic() - started < 5
    assert queued == []  # the next periodic run carries on, after Retry-After
    progress = ChannelScanProgress.objects.get(channel=channel)
    earlier = progress.not_before - timedelta(seconds=11)  # as if Retry-After had passed
    ChannelScanProgress.objects.filter(pk=progress.pk).update(not_before=earlier)
    tasks.channel_scan(channel.pk)
    assert Ticket.objects.count() == 3


def test_scan_all_queues_each_active_channel(channel, monkeypatch):
    from slackbot import tasks
    from tickets.factories import WatchedChannelFactory

    WatchedChannelFactory(tier=channel.tier, active=False)
    queued = []
    monkeypatch.setattr(tasks, "task_send", lambda name, *, args, **kw: queued.append((name, args)))
    assert tasks.channel_scan_all() == 1
    assert queued == [("slackbot.tasks.channel_scan", (channel.pk,))]


def test_inactive_channel_is_not_scanned(channel, small_pages):
    WatchedChannel.objects.filter(pk=channel.pk).update(active=False)
    from slackbot import tasks

    assert tasks.channel_scan(channel.pk) == "no such channel"
    assert small_pages.calls() == []
