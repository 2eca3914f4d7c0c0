"""The bot's own messages are never tickets, recognised by its user id and by its bot id (B…):
a classic `bot_message` from our bot id carrying ticket fields must not open a ticket."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from base.fake_slack import BOT_ID
from slackbot.scan import channel_scan
from tests.support.slack_requests import deliver
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

FIELDS = "*Ticket ID*: 4711\n*Ticket priority*: High\n*Type*: Incident"


def classic_bot_message(bot_id: str, *, minutes_ago: float = 1) -> dict:
    """What Slack sends for a message posted by an app's bot without a bot user (no ``user``)."""
    return {"type": "message", "subtype": "bot_message", "bot_id": bot_id, "username": "SLA Buddy",
            "channel": "CSUPPORT1", "text": FIELDS, "ts": f"{time.time() - minutes_ago * 60:.6f}"}


def test_own_bot_id_from_auth_test_is_not_a_ticket(client, slack_secrets, channel, fake_slack):
    deliver(client, classic_bot_message(BOT_ID))
    assert Ticket.objects.count() == 0
    deliver(client, classic_bot_message("BZENDESK"))  # another bot with the same fields still is one
    assert Ticket.objects.count() == 1


def test_auth_test_is_asked_once_per_process(client, slack_secrets, channel, fake_slack):
    for _ in range(3):
        deliver(client, classic_bot_message(BOT_ID))
    deliver(client, classic_bot_message("BZENDESK"))
    assert len(fake_slack.calls("auth.test")) == 1
    assert Ticket.objects.count() == 1


def test_own_bot_id_from_the_setting_needs_no_slack(client, slack_secrets, channel, fake_slack, settings):
    settings.SLACK_BOT_ID = "BOURS0001"
    deliver(client, classic_bot_message("BOURS0001"))
    assert Ticket.objects.count() == 0
    assert fake_slack.calls("auth.test") == []


def test_the_channel_scan_skips_own_bot_messages(channel, fake_slack):
    own = fake_slack.add_message("CSUPPORT1", FIELDS, subtype="bot_message", bot_id=BOT_ID,
                                 ts=f"{time.time() - 60:.6f}")
    other = fake_slack.add_message("CSUPPORT1", FIELDS, subtype="bot_message", bot_id="BZENDESK",
                                   ts=f"{time.time() - 30:.6f}")
    result = channel_scan(channel=channel, now=datetime.now(UTC))
    assert result.created == 1
    assert list(Ticket.objects.values_list("slack_ts", flat=True)) == [other["ts"]]
    assert not Ticket.objects.filter(slack_ts=own["ts"]).exists()


def test_messages_without_a_bot_id_do_not_ask_slack(client, slack_secrets, channel, fake_slack):
    channel.intake_mode = "plain"
    channel.save()
    deliver(client, {"type": "message", "user": "UCUSTOMER", "channel": "CSUPPORT1", "text": "Help!",
                     "ts": f"{time.time() - 60:.6f}"})
    assert Ticket.objects.count() == 1
    assert fake_slack.calls("auth.test") == []
