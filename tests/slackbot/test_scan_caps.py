"""The channel scan reads at most a few pages of a channel per run and carries on from where it
stopped on the next run; a scan that Slack keeps answering `has_more` for ends at a cap per channel
instead of re-queuing itself without limit."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from base.fake_slack import BOT_USER_ID, FakeSlack
from slackbot import scan, tasks
from slackbot.models import ChannelScanProgress
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

PER_RUN, PER_SCAN = 3, 7


@pytest.fixture
def caps(monkeypatch):
    monkeypatch.setattr(scan, "MAX_PAGES_PER_RUN", PER_RUN)
    monkeypatch.setattr(scan, "MAX_PAGES_PER_SCAN", PER_SCAN)


@pytest.fixture
def small_pages(settings):
    with FakeSlack(page_limit_cap=10) as fake:
        settings.SLACK_API_BASE_URL = fake.base_url
        settings.SLACK_BOT_TOKEN = "xoxb-test"
        settings.SLACK_BOT_USER_ID = BOT_USER_ID
        yield fake


@pytest.fixture
def no_requeue(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.channel_scan, "apply_async", lambda *a, **kw: queued.append(kw))
    return queued


def add_tickets(fake, count, channel="CSUPPORT1"):
    base = time.time() - 60 * 60
    return [fake.add_message(channel, f"*Ticket ID*: {5000 + i}", ts=f"{base + i * 30:.6f}",
                             subtype="bot_message", bot_id="BZENDESK") for i in range(count)]


def history_cursors(fake):
    return [call.args.get("cursor") for call in fake.calls("conversations.history")]


def test_a_long_backlog_is_read_over_several_runs_from_where_each_stopped(channel, small_pages, caps,
                                                                           no_requeue):
    add_tickets(small_pages, 55)  # six pages of ten
    tasks.channel_scan(channel.pk)
    assert len(small_pages.calls("conversations.history")) == PER_RUN
    progress = ChannelScanProgress.objects.get(channel=channel)
    assert progress.cursor == "30" and progress.pages == PER_RUN
    channel.refresh_from_db()
    assert channel.last_seen_ts == ""  # not moved until every page is read

    tasks.channel_scan(channel.pk)  # the next periodic run
    assert history_cursors(small_pages)[PER_RUN] == "30"  # it carried on, it did not start over
    assert Ticket.objects.count() == 55
    assert not ChannelScanProgress.objects.filter(channel=channel).exists()
    channel.refresh_from_db()
    assert channel.last_seen_ts
    assert no_requeue == []  # never re-queued itself


def test_endless_has_more_stops_at_the_cap_per_channel(channel, small_pages, caps, no_requeue, caplog):
    add_tickets(small_pages, 5)
    original = small_pages.handle

    def always_more(method, args, token):
        status, body, headers = original(method, {**args, "cursor": ""}, token)
        if method == "conversations.history":
            body = {**body, "has_more": True,
                    "response_metadata": {"next_cursor": f"c{len(small_pages.calls(method))}"}}
        return status, body, headers

    small_pages.handle = always_more
    for _ in range(10):  # ten periodic runs
        tasks.channel_scan(channel.pk)
    calls = len(small_pages.calls("conversations.history"))
    assert no_requeue == []
    # Runs 1-3 read 3 + 3 + 1 pages and give up at 7; the 4th starts a new scan from the last
    # message seen, and so on: never more than PER_RUN pages in one run.
    assert calls <= 10 * PER_RUN
    assert "scan_gave_up" in caplog.text and "CSUPPORT1" in caplog.text
    assert Ticket.objects.count() == 5  # what it did read became tickets


def test_a_rate_limited_scan_resumes_on_a_later_run_without_sleeping(channel, small_pages, caps, no_requeue):
    add_tickets(small_pages, 25)
    small_pages.fail_next("conversations.history", status=429, retry_after=90)
    start = datetime.now(UTC)
    first = scan.channel_scan_run(channel=channel, now=start)
    assert not first.done and first.retry_after == 90
    progress = ChannelScanProgress.objects.get(channel=channel)
    assert progress.not_before == start + timedelta(seconds=90)
    early = scan.channel_scan_run(channel=channel, now=start + timedelta(seconds=60))
    assert early.pages == 0 and len(small_pages.calls("conversations.history")) == 1  # not asked again yet
    later = scan.channel_scan_run(channel=channel, now=start + timedelta(seconds=91))
    assert later.done and Ticket.objects.count() == 25
    assert no_requeue == []
