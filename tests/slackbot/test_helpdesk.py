"""Zendesk and Freshdesk adapters against recorded responses served by a tiny local HTTP server,
the periodic poll, and the signed helpdesk webhook."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from base.helpdesk import FirstReply, helpdesk_first_reply
from slackbot.responses import helpdesk_poll
from slackbot.signing import zendesk_webhook_signature
from tests.support.helpdesk_server import FD, ZD
from tests.support.slack_requests import WEBHOOK_SECRET, post_hook
from tickets.factories import TicketFactory, WatchedChannelFactory
from tickets.models import ResponseMode, Ticket, TicketState

pytestmark = pytest.mark.django_db
def ask(*, ticket) -> FirstReply:
    """The adapter of the ticket's channel, asked about the ticket's helpdesk id."""
    return helpdesk_first_reply(provider=ticket.channel.response_mode, ticket_id=ticket.helpdesk_ticket_id)


def seen(*, ticket) -> bool | None:
    return ask(ticket=ticket).replied


def make_ticket(tier, mode, helpdesk_id="4711", **kwargs):
    channel = WatchedChannelFactory(tier=tier, response_mode=mode)
    return TicketFactory(channel=channel, helpdesk_ticket_id=helpdesk_id, **kwargs)





# -- adapters ---------------------------------------------------------------------------


def test_zendesk_replied(tier, helpdesk):
    helpdesk.route(ZD, "zendesk_metrics_replied.json")
    ticket = make_ticket(tier, ResponseMode.ZENDESK)
    answer = ask(ticket=ticket)
    assert answer.replied is True
    assert answer.at == datetime(2026, 11, 27, 10, 12, tzinfo=UTC)
    assert seen(ticket=ticket) is True
    path, headers = helpdesk.requests[0]
    expected = base64.b64encode(b"bot@acme.example/token:zd-token").decode()
    assert headers["Authorization"] == f"Basic {expected}"


def test_zendesk_waiting(tier, helpdesk):
    helpdesk.route(ZD, "zendesk_metrics_waiting.json")
    assert seen(ticket=make_ticket(tier, ResponseMode.ZENDESK)) is False


def test_freshdesk_replied_and_waiting(tier, helpdesk):
    helpdesk.route(FD, "freshdesk_ticket_replied.json")
    helpdesk.route("/api/v2/tickets/21?include=stats", "freshdesk_ticket_waiting.json")
    replied = ask(ticket=make_ticket(tier, ResponseMode.FRESHDESK))
    assert replied.replied is True and replied.at == datetime(2026, 11, 27, 10, 20, tzinfo=UTC)
    assert seen(ticket=make_ticket(tier, ResponseMode.FRESHDESK, "21")) is False
    _, headers = helpdesk.requests[0]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"fd-key:X").decode()


@pytest.mark.parametrize("mode", [ResponseMode.ZENDESK, ResponseMode.FRESHDESK])
@pytest.mark.parametrize(("status", "body"), [
    (500, b'{"error": "boom"}'), (503, b"Service Unavailable"),
    (401, b'{"error": "Couldn\'t authenticate you"}'),
    (404, b'{"error": "RecordNotFound"}'), (429, b"{}"), (200, b"<html>maintenance</html>"),
    (200, b'{"unexpected": true}'), (200, b"[]"),
])
def test_helpdesk_trouble_means_cannot_tell(tier, helpdesk, mode, status, body, caplog):
    helpdesk.route(ZD if mode == ResponseMode.ZENDESK else FD, status=status, body=body)
    ticket = make_ticket(tier, mode)
    assert seen(ticket=ticket) is None
    assert "helpdesk_unavailable" in caplog.text
    assert "zd-token" not in caplog.text and "fd-key" not in caplog.text


@pytest.mark.parametrize("mode", [ResponseMode.ZENDESK, ResponseMode.FRESHDESK])
def test_slow_helpdesk_times_out_quickly(tier, helpdesk, mode):
    helpdesk.route(ZD if mode == ResponseMode.ZENDESK else FD, "zendesk_metrics_replied.json", delay=2)
    started = time.monotonic()
    assert seen(ticket=make_ticket(tier, mode)) is None
    assert time.monotonic() - started < 1.5


def test_unreachable_helpdesk(tier, settings):
    settings.ZENDESK_BASE_URL = "http://127.0.0.1:9"  # discard port: connection refused
    settings.ZENDESK_EMAIL, settings.ZENDESK_API_TOKEN = "a@b.c", "t"
    assert seen(ticket=make_ticket(tier, ResponseMode.ZENDESK)) is None


@pytest.mark.parametrize("case", ["slack_thread_channel", "no_helpdesk_id", "not_configured"])
def test_cannot_tell_without_asking(tier, helpdesk, settings, case):
    if case == "slack_thread_channel":
        ticket = make_ticket(tier, ResponseMode.SLACK_THREAD)
    elif case == "no_helpdesk_id":
        ticket = make_ticket(tier, ResponseMode.ZENDESK, helpdesk_id="")
    else:
        settings.ZENDESK_API_TOKEN = None
        ticket = make_ticket(tier, ResponseMode.ZENDESK)
    assert seen(ticket=ticket) is None
    assert helpdesk.requests == []


def test_ticket_id_is_quoted_into_the_path(tier, helpdesk):
    make = make_ticket(tier, ResponseMode.ZENDESK, helpdesk_id="../../users/me")
    assert seen(ticket=make) is None
    assert helpdesk.requests[0][0] == "/api/v2/tickets/..%2F..%2Fusers%2Fme/metrics.json"


# -- the poll ---------------------------------------------------------------------------------


def test_poll_marks_replied_tickets_responded(tier, helpdesk):
    from escalation.arming import ticket_arm

    now = datetime.now(UTC)
    replied = make_ticket(tier, ResponseMode.ZENDESK, opened_at=now - timedelta(minutes=5))
    waiting = make_ticket(tier, ResponseMode.ZENDESK, helpdesk_id="4712",
                          opened_at=now - timedelta(minutes=5))
    down = make_ticket(tier, ResponseMode.FRESHDESK, helpdesk_id="999", opened_at=now - timedelta(minutes=5))
    slack = make_ticket(tier, ResponseMode.SLACK_THREAD, opened_at=now - timedelta(minutes=5))
    old = make_ticket(tier, ResponseMode.ZENDESK, helpdesk_id="1", opened_at=now - timedelta(days=8))
    for ticket in (replied, waiting, down, slack, old):
        ticket_arm(ticket=ticket, now=now)
    helpdesk.route(ZD, "zendesk_metrics_replied.json")
    helpdesk.route("/api/v2/tickets/4712/metrics.json", "zendesk_metrics_waiting.json")
    helpdesk.route("/api/v2/tickets/999?include=stats", status=502, body=b"bad gateway")
    result = helpdesk_poll(now=now)
    assert (result.checked, result.responded, result.unknown) == (3, 1, 1)
    replied.refresh_from_db()
    assert replied.state == TicketState.RESPONDED and replied.response_path == "zendesk"
    assert replied.responded_at == min(datetime(2026, 11, 27, 10, 12, tzinfo=UTC), now)
    assert set(Ticket.objects.exclude(pk=replied.pk).values_list("state", flat=True)) == {TicketState.ARMED}
    assert helpdesk_poll(now=now).responded == 0  # nothing changes the second time


# -- the webhook ---------------------------------------------------------------------------------


def test_signed_webhook_marks_the_ticket_responded(client, slack_secrets, tier):
    opened = datetime.now(UTC) - timedelta(hours=1)
    ticket = make_ticket(tier, ResponseMode.ZENDESK, opened_at=opened)
    other_helpdesk = make_ticket(tier, ResponseMode.FRESHDESK)  # same number, other helpdesk
    response = post_hook(client, "zendesk", {"ticket_id": 4711, "agent": "Ana",
                                             "responded_at": (opened + timedelta(minutes=12)).isoformat()})
    assert response.status_code == 200 and response.json() == {"ok": True, "responded": 1, "status": {}}
    ticket.refresh_from_db()
    other_helpdesk.refresh_from_db()
    assert ticket.state == TicketState.RESPONDED and ticket.response_path == "webhook"
    assert ticket.responded_by == "zendesk: Ana"
    assert other_helpdesk.state == TicketState.ARMED
    again = post_hook(client, "zendesk", {"ticket_id": "4711"})
    assert again.status_code == 200 and again.json()["responded"] == 0


def test_webhook_channel_mode_accepts_either_provider(client, slack_secrets, tier):
    ticket = make_ticket(tier, ResponseMode.WEBHOOK, helpdesk_id="55")
    assert post_hook(client, "freshdesk", {"ticket_id": "#55"}).json()["responded"] == 1
    ticket.refresh_from_db()
    assert ticket.state == TicketState.RESPONDED


def test_zendesk_native_signature_is_accepted(client, slack_secrets, tier):
    ticket = make_ticket(tier, ResponseMode.ZENDESK)
    body = json.dumps({"ticket_id": "4711"}).encode()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {"HTTP_X_ZENDESK_WEBHOOK_SIGNATURE": zendesk_webhook_signature(
        secret=WEBHOOK_SECRET, timestamp=stamp, body=body),
        "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE_TIMESTAMP": stamp}
    assert post_hook(client, "zendesk", body, headers=headers).status_code == 200
    ticket.refresh_from_db()
    assert ticket.state == TicketState.RESPONDED


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"HTTP_X_SLABUDDY_SIGNATURE": "sha256=00", "HTTP_X_SLABUDDY_TIMESTAMP": "now"}, 403),
    ({"HTTP_X_ZENDESK_WEBHOOK_SIGNATURE": "AAAA", "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE_TIMESTAMP": "1"}, 403),
])
def test_unsigned_or_forged_webhooks_change_nothing(client, slack_secrets, tier, headers, status):
    headers = {k: str(int(time.time())) if v == "now" else v for k, v in headers.items()}
    ticket = make_ticket(tier, ResponseMode.ZENDESK)
    assert post_hook(client, "zendesk", {"ticket_id": "4711"}, headers=headers).status_code == status
    ticket.refresh_from_db()
    assert ticket.state == TicketState.ARMED


def test_webhook_signed_with_another_secret_is_refused(client, slack_secrets, tier):
    ticket = make_ticket(tier, ResponseMode.ZENDESK)
    assert post_hook(client, "zendesk", {"ticket_id": "4711"}, secret="other").status_code == 403
    ticket.refresh_from_db()
    assert ticket.state == TicketState.ARMED


def test_webhook_without_a_configured_secret_is_refused(client, settings, tier):
    settings.HELPDESK_WEBHOOK_SECRET = None
    make_ticket(tier, ResponseMode.ZENDESK)
    assert post_hook(client, "zendesk", {"ticket_id": "4711"}, secret="x").status_code == 403


@pytest.mark.parametrize("payload", [
    b"nope", b"[]", {"ticket": 1}, {"ticket_id": ""}, {"ticket_id": True}, {"ticket_id": 1.5},
    {"ticket_id": "1", "responded_at": "yesterday"},
    {"ticket_id": "1", "responded_at": "2026-11-27T10:00:00"},
    {"ticket_id": "x" * 65},
])
def test_malformed_webhook_bodies_get_400(client, slack_secrets, tier, payload):
    ticket = make_ticket(tier, ResponseMode.ZENDESK, helpdesk_id="1")
    assert post_hook(client, "zendesk", payload).status_code == 400
    ticket.refresh_from_db()
    assert ticket.state == TicketState.ARMED


def test_unknown_provider_is_404(client, slack_secrets):
    assert post_hook(client, "servicenow", {"ticket_id": "1"}).status_code == 404
