"""The weekly digest: posted on Monday from 09:00 in the digest's time zone, once per channel and week
through the outbox, also when beat runs twice or Slack refuses the first attempt."""

from __future__ import annotations

import pytest

from reports.digest import digest_due_week, digests_send_due
from reports.models import DigestChannel, DigestSent
from reports.schedules import schedules
from tests.support.report_month import month_build, z
from tickets.models import Tier

pytestmark = pytest.mark.django_db

# Monday 2026-10-26 09:00 in Berlin (the day after it left summer time: UTC+1)
MONDAY_NINE = z("2026-10-26 08:00")


@pytest.fixture
def gold_digest(db):
    month_build()
    digest = DigestChannel.objects.create(slack_channel_id="CLEADS", name="support-leads")
    digest.tiers.set([Tier.objects.get(name="Gold")])
    return digest


def test_due_from_monday_nine_in_the_tiers_time_zone(gold_digest):
    assert digest_due_week(gold_digest, now=z("2026-10-26 07:59")) is None
    assert str(digest_due_week(gold_digest, now=MONDAY_NINE)) == "2026-10-19"
    assert str(digest_due_week(gold_digest, now=z("2026-11-01 22:59"))) == "2026-10-19"  # Sunday 23:59
    assert str(digest_due_week(gold_digest, now=z("2026-11-02 08:00"))) == "2026-10-26"


def test_sent_once_per_week_per_channel_with_two_beats(gold_digest, fake_slack):
    assert digests_send_due(now=z("2026-10-26 07:59")).recorded == 0
    first = digests_send_due(now=MONDAY_NINE)
    second = digests_send_due(now=MONDAY_NINE)  # the second beat
    later = digests_send_due(now=z("2026-10-27 12:00"))
    assert (first.recorded, first.sent) == (1, 1)
    assert (second.recorded, second.sent, later.recorded, later.sent) == (0, 0, 0, 0)
    [post] = fake_slack.posts("CLEADS")
    text = post["text"]
    assert "week of Mon 19 Oct 2026" in text
    # the week of 2026-10-19 holds G5 only: answered after its breach time, paged Bob on Friday evening
    assert "Gold: 0% in time (0 of 1 answered), 1 opened" in text
    assert "archives/CGOLD/p" in text and "Gold #G5>: 2 d" in text and "late (answered)" in text
    assert "Bob: 1 (1 outside business hours)" in text
    assert "Silver" not in text

    next_week = digests_send_due(now=z("2026-11-02 08:00"))
    assert next_week.recorded == 1
    assert len(fake_slack.posts("CLEADS")) == 2
    assert list(DigestSent.objects.values_list("week_start", flat=True).order_by("week_start")) == [
        z("2026-10-19 00:00").date(),
        z("2026-10-26 00:00").date(),
    ]


def test_a_refused_send_is_retried_by_the_next_beat_and_posts_once(gold_digest, fake_slack):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    first = digests_send_due(now=MONDAY_NINE)
    assert (first.recorded, first.sent) == (1, 0)
    assert fake_slack.posts("CLEADS") == []
    again = digests_send_due(now=z("2026-10-26 08:05"))
    assert (again.recorded, again.sent) == (0, 1)
    assert len(fake_slack.posts("CLEADS")) == 1
    assert digests_send_due(now=z("2026-10-26 08:10")).sent == 0


def test_channels_are_independent_and_disabled_ones_get_nothing(gold_digest, fake_slack, settings):
    settings.TIME_ZONE = "UTC"
    every_tier = DigestChannel.objects.create(slack_channel_id="CALL", name="all-tiers")
    DigestChannel.objects.create(slack_channel_id="COFF", name="off", enabled=False)
    run = digests_send_due(now=z("2026-11-02 09:00"))  # the week of 2026-10-26 has tickets in both tiers
    assert run.recorded == 2
    assert len(fake_slack.posts("CLEADS")) == 1 and len(fake_slack.posts("COFF")) == 0
    [post] = fake_slack.posts("CALL")
    assert "Gold:" in post["text"] and "Silver:" in post["text"]
    assert DigestSent.objects.filter(digest=every_tier).count() == 1


def test_registered_as_a_periodic_job():
    [job] = schedules()
    assert job.task == "reports.tasks.digests_send_due" and job.every_seconds <= 900


def test_a_beat_that_loses_the_race_for_the_week_posts_nothing(gold_digest, fake_slack, monkeypatch):
    """Two beats at once: both see no digest for the week; the one whose row is second writes nothing."""
    from reports import digest as digest_module

    real_text = digest_module.digest_text

    def other_beat_records_first(digest, **kwargs):
        text = real_text(digest, **kwargs)
        DigestSent.objects.create(
            digest=digest, week_start=kwargs["week_start"], outbox_key="digest:other-beat"
        )
        return text

    monkeypatch.setattr(digest_module, "digest_text", other_beat_records_first)
    run = digests_send_due(now=MONDAY_NINE)
    assert run.recorded == 0
    assert fake_slack.posts("CLEADS") == []
    assert DigestSent.objects.filter(digest=gold_digest).count() == 1
