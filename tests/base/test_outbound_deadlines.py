"""Every outbound call has a total deadline, not only a per-read timeout: against a server that
drips its answer one byte a second, the helpdesk check gives up at its deadline and says so."""

from __future__ import annotations

import pytest

from base.helpdesk import helpdesk_first_reply
from tests.support.drip_server import DripServer

REPLIED = b'{"ticket_metric":{"replies":1}}'
DEADLINE = 2  # seconds; the server sends a byte every second, so no single read ever times out


@pytest.fixture
def dripping_zendesk(settings):
    with DripServer(REPLIED) as server:
        settings.ZENDESK_BASE_URL = server.base_url
        settings.ZENDESK_EMAIL, settings.ZENDESK_API_TOKEN = "bot@acme.example", "zd-token"
        settings.HELPDESK_TIMEOUT_SECONDS = DEADLINE
        yield server


def test_a_dripping_helpdesk_is_given_up_at_the_deadline(dripping_zendesk):
    answer = helpdesk_first_reply(provider="zendesk", ticket_id="4711")
    assert answer.replied is None  # cannot tell: the level fires rather than wait
    assert "deadline" in answer.reason
    assert dripping_zendesk.requests == ["/api/v2/tickets/4711/metrics.json"]
    assert dripping_zendesk.bytes_sent < len(REPLIED)  # it left long before the answer was complete


def test_dripped_headers_are_given_up_too(settings):
    with DripServer(REPLIED, drip_headers=True) as server:
        settings.ZENDESK_BASE_URL = server.base_url
        settings.ZENDESK_EMAIL, settings.ZENDESK_API_TOKEN = "bot@acme.example", "zd-token"
        settings.HELPDESK_TIMEOUT_SECONDS = DEADLINE
        answer = helpdesk_first_reply(provider="zendesk", ticket_id="4711")
        assert answer.replied is None and "deadline" in answer.reason
        assert server.bytes_sent < 40  # not even through the status line and the headers
