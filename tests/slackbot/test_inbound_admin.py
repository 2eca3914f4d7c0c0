"""The admin shows stored Slack deliveries without the secrets they carry: Slack's legacy
verification `token` and an interaction's `response_url` (which can post into the channel)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from slackbot.factories import SlackInboundFactory

pytestmark = pytest.mark.django_db

TOKEN = "legacyVerificationToken42"
RESPONSE_URL = "https://hooks.slack.com/actions/T1/123/SecretHookPath99"


@pytest.fixture
def stored():
    event = SlackInboundFactory(payload={
        "token": TOKEN, "type": "event_callback", "event_id": "EvAdmin1",
        "event": {"type": "message", "text": "*Ticket ID*: 4711", "channel": "CSUPPORT1"},
    })
    button = SlackInboundFactory(key="action:1", kind="interaction", payload={
        "type": "block_actions", "token": TOKEN, "response_url": RESPONSE_URL,
        "actions": [{"action_id": "snooze", "value": "1"}],
        "view": {"response_urls": [{"response_url": RESPONSE_URL}]},
    })
    return event, button


def test_the_change_page_hides_token_and_response_url(staff_client, stored):
    for inbound in stored:
        page = staff_client.get(reverse("admin:slackbot_slackinbound_change", args=[inbound.pk]))
        assert page.status_code == 200
        text = page.content.decode()
        assert TOKEN not in text and "SecretHookPath99" not in text
        assert "hidden" in text
    event_page = staff_client.get(reverse("admin:slackbot_slackinbound_change", args=[stored[0].pk]))
    assert "Ticket ID" in event_page.content.decode()  # the rest of the payload is still shown


def test_the_list_hides_them_too_and_the_rows_keep_them(staff_client, stored):
    page = staff_client.get(reverse("admin:slackbot_slackinbound_changelist")).content.decode()
    assert TOKEN not in page and "SecretHookPath99" not in page
    stored[1].refresh_from_db()
    assert stored[1].payload["response_url"] == RESPONSE_URL  # stored as received, only not shown
