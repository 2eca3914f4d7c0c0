"""The admin ticket page and /metrics for the lifecycle: cycles and pauses shown, closes counted
apart from responses, and "breached" with the clock paused or the ticket closed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from escalation.arming import ticket_arm
from escalation.closing import ticket_close
from escalation.cycles import ticket_next_response_start
from escalation.disarming import ticket_mark_responded
from escalation.factories import EscalationStepFactory, NextResponseStepFactory, SlaPolicyFactory
from escalation.pausing import ticket_pause, ticket_resume
from ops.console import ticket_is_breached, ticket_next_level, ticket_timeline
from ops.metrics import render_metrics
from tests.support.times import T0
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory
from tickets.models import TicketVia

pytestmark = pytest.mark.django_db


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def make_ticket(db):
    """Tickets of a tier whose policy escalates at 10 and 20 min (target 10 min) and answers
    customers who write again with one next-response level after 15 min."""
    tier = TierFactory(name="Enterprise test")
    policy = SlaPolicyFactory(tier=tier, priority="")
    for level, minutes in ((1, 10), (2, 20)):
        EscalationStepFactory(policy=policy, level=level, delay=timedelta(minutes=minutes))
    NextResponseStepFactory(policy=policy, level=1, delay=timedelta(minutes=15))
    channel = WatchedChannelFactory(slack_channel_id="CSUPPORT1", tier=tier)

    def make(**fields):
        return TicketFactory(channel=channel, opened_at=T0, **fields)

    return make


@pytest.fixture
def lived(make_ticket):
    """Opened at T0; waiting 5-15; answered at 18; the customer wrote at 30; closed at 40."""
    ticket = make_ticket(helpdesk_ticket_id="5150")
    ticket_arm(ticket=ticket, now=T0)
    ticket_pause(ticket=ticket, via=TicketVia.BUTTON, actor="UBOB", at=at(5))
    ticket_resume(ticket=ticket, via=TicketVia.CUSTOMER, actor="UCUSTOMER", at=at(15))
    ticket_mark_responded(ticket=ticket, path="slack_thread", actor="UALICE", at=at(18))
    ticket_next_response_start(ticket=ticket, request_key="m:1", message_ts="1772445000.000100",
                               actor="UCUSTOMER", at=at(30), now=at(30))
    ticket_close(ticket=ticket, via=TicketVia.REACTION, actor="UBOB", at=at(40), now=at(40))
    return ticket


def test_the_ticket_page_shows_cycles_pauses_and_the_story(staff_client, lived):
    page = staff_client.get(reverse("admin:tickets_ticket_change", args=[lived.pk])).content.decode()
    assert "Response cycles" in page and "Waiting on customer (pauses)" in page
    assert "Closed (first answered after 18 min) with a reaction after 40 min, 2 response cycles" in page
    texts = [row["text"] for row in ticket_timeline(lived)]
    assert any(t.startswith("Waiting on customer, marked by UBOB (a button on an escalation message): "
                            "level 1 had 5 min 00 s left") for t in texts)
    assert any(t.startswith("Resumed by UCUSTOMER (the customer wrote in the thread) after 10 min waiting")
               for t in texts)
    assert any(t.startswith("Next-response cycle 2: the customer wrote again: level 1 due") for t in texts)
    assert "Closed by UBOB (a reaction on the ticket) without a reply; cancelled levels 1" in texts
    assert ticket_next_level(lived) == "none: closed"


def test_closes_and_waits_are_counted_apart_from_responses(lived, make_ticket):
    text = render_metrics(now=at(60))[0].decode()
    assert 'slabuddy_closed_without_reply_total{kind="next",tier="Enterprise test"} 1.0' in text
    assert 'slabuddy_next_response_cycles_total{tier="Enterprise test"} 1.0' in text
    assert 'slabuddy_waits_on_customer_total{tier="Enterprise test"} 1.0' in text
    assert 'slabuddy_time_to_first_response_seconds_count{tier="Enterprise test"} 1.0' in text


def test_a_ticket_is_not_breached_while_the_clock_stands_still(make_ticket):
    ticket = make_ticket()
    ticket_arm(ticket=ticket, now=T0)  # target: 10 min
    ticket_pause(ticket=ticket, via=TicketVia.BUTTON, actor="UBOB", at=at(4))
    ticket.refresh_from_db()
    assert not ticket_is_breached(ticket, now=at(60))  # waiting since 4 min, 6 min were left
    ticket_resume(ticket=ticket, via=TicketVia.CUSTOMER, actor="UCUSTOMER", at=at(60))
    assert not ticket_is_breached(ticket, now=at(65)) and ticket_is_breached(ticket, now=at(67))


def test_a_close_without_reply_is_breached_only_if_the_target_passed_first(make_ticket):
    early, late = make_ticket(slack_ts="1.1"), make_ticket(slack_ts="2.2")
    for ticket, minutes in ((early, 8), (late, 12)):
        ticket_arm(ticket=ticket, now=T0)
        ticket_close(ticket=ticket, via=TicketVia.BUTTON, actor="UBOB", at=at(minutes))
    assert not ticket_is_breached(early, now=at(90))
    assert ticket_is_breached(late, now=at(90))
