"""The helpdesk webhook cannot be replayed: its signature covers a timestamp that must be within
5 minutes (SLA Buddy's own form and Zendesk's), the old body-only form is off unless a setting
allows it, and a reported reply time must lie between the ticket's opening and now."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from escalation.arming import ticket_arm
from tests.support.slack_requests import hook_headers, legacy_hook_headers, post_hook, zendesk_hook_headers
from tickets.factories import TicketFactory, WatchedChannelFactory
from tickets.models import ResponseMode, TicketState

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(tier):
    channel = WatchedChannelFactory(tier=tier, response_mode=ResponseMode.ZENDESK)
    ticket = TicketFactory(channel=channel, helpdesk_ticket_id="4711",
                           opened_at=datetime.now(UTC) - timedelta(minutes=30))
    ticket_arm(ticket=ticket, now=ticket.opened_at)  # armed on time: every level pending
    return ticket


def body_of(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def state_of(ticket) -> str:
    ticket.refresh_from_db()
    return ticket.state


def test_a_fresh_timestamped_signature_is_accepted(client, slack_secrets, ticket):
    body = body_of({"ticket_id": "4711"})
    response = post_hook(client, "zendesk", body, headers=hook_headers(body))
    assert response.status_code == 200 and response.json()["responded"] == 1
    assert state_of(ticket) == TicketState.RESPONDED


@pytest.mark.parametrize("age_seconds", [301, 3600, -301])
def test_a_signature_outside_five_minutes_is_refused(client, slack_secrets, ticket, age_seconds):
    body = body_of({"ticket_id": "4711"})
    headers = hook_headers(body, timestamp=int(time.time()) - age_seconds)
    assert post_hook(client, "zendesk", body, headers=headers).status_code == 403
    assert state_of(ticket) == TicketState.ARMED


def test_the_timestamp_is_part_of_the_signature(client, slack_secrets, ticket):
    """A captured request cannot be refreshed by changing its timestamp header."""
    body = body_of({"ticket_id": "4711"})
    old = hook_headers(body, timestamp=int(time.time()) - 3600)
    replayed = {**old, "HTTP_X_SLABUDDY_TIMESTAMP": str(int(time.time()))}
    assert post_hook(client, "zendesk", body, headers=replayed).status_code == 403
    assert state_of(ticket) == TicketState.ARMED


@pytest.mark.parametrize("stamp", ["soon", "", "1e9", "99999999999999999999"])
def test_a_timestamp_that_is_not_one_is_refused(client, slack_secrets, ticket, stamp):
    body = body_of({"ticket_id": "4711"})
    headers = {**hook_headers(body), "HTTP_X_SLABUDDY_TIMESTAMP": stamp}
    assert post_hook(client, "zendesk", body, headers=headers).status_code in (401, 403)
    assert state_of(ticket) == TicketState.ARMED


def test_the_body_only_signature_is_refused_by_default(client, slack_secrets, ticket):
    body = body_of({"ticket_id": "4711"})
    response = post_hook(client, "zendesk", body, headers=legacy_hook_headers(body))
    assert response.status_code == 401
    assert state_of(ticket) == TicketState.ARMED


def test_the_body_only_signature_works_behind_its_setting(client, slack_secrets, ticket, settings):
    settings.HELPDESK_WEBHOOK_ALLOW_LEGACY_SIGNATURE = True
    body = body_of({"ticket_id": "4711"})
    assert post_hook(client, "zendesk", body, headers=legacy_hook_headers(body)).status_code == 200
    assert state_of(ticket) == TicketState.RESPONDED


def test_the_setting_is_off_unless_turned_on():
    from django.conf import settings

    assert settings.HELPDESK_WEBHOOK_ALLOW_LEGACY_SIGNATURE is False


def test_a_fresh_zendesk_signature_is_accepted(client, slack_secrets, ticket):
    body = body_of({"ticket_id": "4711"})
    assert post_hook(client, "zendesk", body, headers=zendesk_hook_headers(body)).status_code == 200
    assert state_of(ticket) == TicketState.RESPONDED


@pytest.mark.parametrize("age", [timedelta(minutes=6), timedelta(days=400), -timedelta(minutes=6)])
def test_a_stale_zendesk_signature_is_refused(client, slack_secrets, ticket, age):
    body = body_of({"ticket_id": "4711"})
    headers = zendesk_hook_headers(body, at=datetime.now(UTC) - age)
    assert post_hook(client, "zendesk", body, headers=headers).status_code == 403
    assert state_of(ticket) == TicketState.ARMED


def test_a_zendesk_timestamp_that_is_not_a_time_is_refused(client, slack_secrets, ticket):
    body = body_of({"ticket_id": "4711"})
    headers = {**zendesk_hook_headers(body), "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE_TIMESTAMP": "yesterday"}
    assert post_hook(client, "zendesk", body, headers=headers).status_code in (401, 403)
    assert state_of(ticket) == TicketState.ARMED


# -- responded_at ----------------------------------------------------------------------------


def test_a_reply_time_between_opening_and_now_is_kept(client, slack_secrets, ticket):
    at = ticket.opened_at + timedelta(minutes=12)
    response = post_hook(client, "zendesk", {"ticket_id": "4711", "responded_at": at.isoformat()})
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.state == TicketState.RESPONDED and ticket.responded_at == at


@pytest.mark.parametrize("when", ["1970-01-01T00:00:00Z", "before opening", "in an hour", "year 9999"])
def test_a_reply_time_outside_opening_and_now_is_400_and_changes_nothing(client, slack_secrets, ticket, when):
    at = {
        "1970-01-01T00:00:00Z": "1970-01-01T00:00:00+00:00",
        "before opening": (ticket.opened_at - timedelta(seconds=1)).isoformat(),
        "in an hour": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "year 9999": "9999-12-31T23:59:59+00:00",
    }[when]
    response = post_hook(client, "zendesk", {"ticket_id": "4711", "responded_at": at})
    assert response.status_code == 400
    assert "responded_at" in response.json()["error"]
    ticket.refresh_from_db()
    assert ticket.state == TicketState.ARMED and ticket.responded_at is None
    assert ticket.escalations.filter(state="pending").count() == 3


def test_metrics_never_see_a_negative_time_to_first_response(client, slack_secrets, ticket):
    post_hook(client, "zendesk", {"ticket_id": "4711", "responded_at": "1970-01-01T00:00:00Z"})
    text = client.get("/metrics").content.decode()
    negative = [line for line in text.splitlines()
                if line.startswith("slabuddy_time_to_first_response_seconds_sum") and " -" in line]
    assert negative == []
