"""The App Home tab: published with views.publish each time the viewer opens it (a signed
app_home_opened event), with the open tickets they were paged on, the roster now, and their
own status."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from calendars.factories import EngineerFactory, RosterOverrideFactory
from calendars.models import OverrideKind
from escalation.disarming import ticket_mark_responded
from escalation.models import Escalation
from tests.support.engine import fire
from tests.support.slack_requests import deliver, helpdesk_message, now_ts
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def open_home(client, user: str, tab: str = "home"):
    deliver(client, {"type": "app_home_opened", "user": user, "channel": "D0HOME001", "tab": tab,
                     "event_ts": now_ts()})


def home_text(fake_slack, user: str) -> str:
    view = fake_slack.home_tab(user)
    assert view is not None and view["type"] == "home"
    return json.dumps(view["blocks"])


@pytest.fixture
def paged_ticket(client, slack_secrets, fake_slack, channel):
    """Alice is on the roster (on shift, embedded with Storage); level 1 of ticket #301 named her."""
    alice = EngineerFactory(name="Alice", slack_user_id="UALICE")
    RosterOverrideFactory(engineer=alice, kind=OverrideKind.EMBEDDED, product="Storage", ends_at=None)
    deliver(client, helpdesk_message(now_ts(minutes_ago=12), ticket_id="301"))
    deliver(client, helpdesk_message(now_ts(minutes_ago=1), ticket_id="302"))  # not fired yet
    ticket = Ticket.objects.get(helpdesk_ticket_id="301")
    fire(Escalation.objects.get(ticket=ticket, level=1), at=datetime.now(UTC))
    return ticket


def test_opening_the_home_tab_publishes_the_viewers_pages_roster_and_status(client, paged_ticket, fake_slack):
    open_home(client, "UALICE")
    [call] = fake_slack.calls("views.publish")
    assert call.args["user_id"] == "UALICE"
    text = home_text(fake_slack, "UALICE")
    assert "#301 (high)" in text and "next level 2" in text
    assert "#302" not in text  # nobody was paged on it yet
    assert "On shift now" in text and "<@UALICE>: no shift calendar" in text
    assert "<@UALICE>: with Storage" in text
    assert "You are *on shift* (no shift calendar), *embedded* with Storage" in text


def test_the_tab_is_refreshed_each_time_it_is_opened(client, paged_ticket, fake_slack):
    open_home(client, "UALICE")
    ticket_mark_responded(ticket=paged_ticket, path="slack_thread", actor="UALICE", at=datetime.now(UTC))
    open_home(client, "UALICE")
    assert len(fake_slack.calls("views.publish")) == 2
    assert "#301" not in home_text(fake_slack, "UALICE")  # answered: no longer open
    assert "None right now" in home_text(fake_slack, "UALICE")


def test_someone_off_the_roster_is_told_so(client, paged_ticket, fake_slack):
    open_home(client, "UVISITOR")
    text = home_text(fake_slack, "UVISITOR")
    assert "You are not on SLA Buddy's roster" in text and "None right now" in text


def test_the_messages_tab_is_left_alone(client, paged_ticket, fake_slack):
    open_home(client, "UALICE", tab="messages")
    assert fake_slack.calls("views.publish") == []
