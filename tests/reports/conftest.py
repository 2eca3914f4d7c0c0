"""A small history lived through the real engine, for replays to reproduce."""

from datetime import timedelta

import pytest
import time_machine

from calendars.models import Engineer, OverrideKind, RosterOverride
from escalation.arming import ticket_arm
from escalation.closing import ticket_close
from escalation.cycles import ticket_next_response_start
from escalation.disarming import ticket_mark_responded
from escalation.models import Escalation
from escalation.outcomes import FireOutcome
from escalation.pausing import ticket_pause, ticket_resume
from escalation.snooze import ticket_snooze
from escalation.transitions import EscalationState
from tests.engine.conftest import (  # noqa: F401
    engineers,
    ladder,
    make_ticket,
    next_response,
    paging_ladder,
    paging_ticket,
    teams_business,
    thread_in,
)
from tests.support.engine import fire
from tests.support.times import T0
from tickets.models import TicketVia

END = T0 + timedelta(hours=4)


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


def _answer(ticket, when):
    ticket_mark_responded(ticket=ticket, path="slack_thread", actor="UALICE", at=when)


def _snooze(ticket, when):
    ticket_snooze(ticket=ticket, request_key=f"snooze:{ticket.pk}:{when.timestamp()}", actor="UBOB", now=when)


def _pause(ticket, when):
    ticket_pause(ticket=ticket, via=TicketVia.BUTTON, actor="UBOB", at=when, now=when)


def _resume(ticket, when):
    ticket_resume(ticket=ticket, via=TicketVia.CUSTOMER, actor="UCUSTOMER", at=when, now=when)


def _close(ticket, when):
    ticket_close(ticket=ticket, via=TicketVia.REACTION, actor="UBOB", at=when, now=when)


def _customer(ticket, when):
    ticket_next_response_start(ticket=ticket, request_key=f"message:{ticket.pk}:{when.timestamp()}",
                               message_ts=f"{when.timestamp():.6f}", actor="UCUSTOMER", at=when, now=when)


@pytest.fixture
def history(make_ticket, engineers, next_response, thread_in, fake_slack):  # noqa: F811
    """Seven tickets lived through the engine, minute by minute, with Bob off shift from 00:40:
    each level fired by its task when due, snoozes, waits, answers, closes and customer messages
    through the engine's services."""
    bob = Engineer.objects.get(slack_user_id="UBOB")
    RosterOverride.objects.create(engineer=bob, kind=OverrideKind.OFF_SHIFT, starts_at=at(40))
    plans = {
        "answered late": (0, "normal", [(25, _answer)]),
        "snoozed": (1, "normal", [(5, _snooze), (46, _answer)]),
        "waited on the customer": (2, "normal", [(8, _pause), (30, _resume), (58, _answer)]),
        "closed without a reply": (3, "normal", [(15, _close)]),
        "answered, then the customer wrote again": (4, "normal", [(3, _answer), (60, _customer),
                                                                  (99, _answer)]),
        "closed, then reopened": (5, "normal", [(12, _answer), (20, _close), (70, _customer)]),
        "urgent, never answered": (6, "urgent", []),
    }
    tickets, actions = {}, []
    for name, (offset, priority, steps) in plans.items():
        ticket = thread_in(make_ticket(opened_at=at(offset), priority=priority, text=name,
                                       slack_ts=f"1700000{offset}.0001"))
        with time_machine.travel(at(offset), tick=False):
            ticket_arm(ticket=ticket, now=at(offset))
        tickets[name] = ticket
        actions += [(offset + minute, ticket, act) for minute, act in steps]
    for minute in range(int((END - T0).total_seconds() // 60)):
        due = Escalation.objects.filter(state=EscalationState.PENDING, due_at__lte=at(minute))
        for row in due.order_by("due_at"):  # each level's delayed task runs when it is due
            assert fire(row, at=at(minute)) == FireOutcome.FIRED
        with time_machine.travel(at(minute), tick=False):
            for when, ticket, act in actions:
                if when == minute:
                    ticket.refresh_from_db()
                    act(ticket, at(minute))
    return tickets


