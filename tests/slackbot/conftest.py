"""Fixtures for the tickets app: a live fake Slack, a signing secret, a watched channel with a ladder."""

from __future__ import annotations

from datetime import timedelta

import pytest

from base.fake_slack import BOT_USER_ID, FakeSlack
from escalation.factories import EscalationStepFactory, SlaPolicyFactory
from tests.support.helpdesk_server import Helpdesk
from tests.support.slack_requests import SIGNING_SECRET, WEBHOOK_SECRET
from tickets.factories import TierFactory, WatchedChannelFactory


@pytest.fixture
def fake_slack(settings):
    with FakeSlack() as fake:
        settings.SLACK_API_BASE_URL = fake.base_url
        settings.SLACK_BOT_TOKEN = "xoxb-test"
        settings.SLACK_BOT_USER_ID = BOT_USER_ID
        yield fake


@pytest.fixture
def slack_secrets(settings):
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.HELPDESK_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.SLACK_BOT_USER_ID = BOT_USER_ID
    return settings


@pytest.fixture
def tier(db):
    tier = TierFactory(name="Enterprise test")
    policy = SlaPolicyFactory(tier=tier, priority="", snooze_minutes=30)
    for level, minutes in ((1, 10), (2, 20), (3, 35)):
        EscalationStepFactory(policy=policy, level=level, delay=timedelta(minutes=minutes))
    return tier


@pytest.fixture
def channel(tier):
    return WatchedChannelFactory(slack_channel_id="CSUPPORT1", name="support-acme", tier=tier,
                                 lookback_minutes=120)


@pytest.fixture
def helpdesk(settings):
    server = Helpdesk()
    settings.ZENDESK_BASE_URL = server.base_url
    settings.ZENDESK_EMAIL = "bot@acme.example"
    settings.ZENDESK_API_TOKEN = "zd-token"
    settings.FRESHDESK_BASE_URL = server.base_url + "/"
    settings.FRESHDESK_API_KEY = "fd-key"
    settings.HELPDESK_TIMEOUT_SECONDS = 0.5
    yield server
    server.stop()
