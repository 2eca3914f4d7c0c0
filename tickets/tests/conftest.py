"""Fixtures for the tickets app: a live fake Slack, a signing secret, a watched channel with a ladder."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest

from escalation.factories import EscalationStepFactory, SlaPolicyFactory, TierFactory
from slabuddy.fake_slack import BOT_USER_ID, FakeSlack
from tickets.factories import WatchedChannelFactory

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example secret
WEBHOOK_SECRET = "helpdesk-webhook-test-secret"


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


def slack_headers(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None,
                  retry_num: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + body
    headers = {
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": stamp,
        "HTTP_X_SLACK_SIGNATURE": "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest(),
    }
    if retry_num is not None:
        headers["HTTP_X_SLACK_RETRY_NUM"] = str(retry_num)
        headers["HTTP_X_SLACK_RETRY_REASON"] = "http_timeout"
    return headers


def post_event(client, payload, **kwargs):
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return client.post("/slack/events", data=body, content_type="application/json",
                       **slack_headers(body, **kwargs))


def event_callback(event: dict, *, event_id: str = "Ev0001") -> dict:
    return {
        "token": "unused", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()), "event": event,
        "authorizations": [{"user_id": BOT_USER_ID, "is_bot": True}],
    }
