"""Snooze limits: a policy's maximum total snooze per ticket, and a double click counted once."""

from datetime import timedelta

import pytest

from escalation.arming import ticket_arm
from escalation.models import SnoozeRequest
from escalation.snooze import ticket_snooze
from tests.support.engine import rows
from tests.support.times import T0

pytestmark = pytest.mark.django_db


@pytest.fixture
def armed(make_ticket, ladder):
    ladder.policies.filter(priority="").update(max_total_snooze=timedelta(minutes=45))
    ticket = make_ticket()
    ticket_arm(ticket=ticket, now=T0)
    return ticket


def test_past_the_maximum_total_snooze_nothing_moves_and_the_result_says_why(armed):
    first = ticket_snooze(ticket=armed, request_key="m:1", actor="UALICE", now=T0)
    assert first.applied and not first.refused
    level1 = rows(armed)[0].due_at
    second = ticket_snooze(ticket=armed, request_key="m:2", actor="UBOB", now=T0 + timedelta(minutes=1))
    assert not second.applied
    assert second.refused == ("this ticket has been snoozed for 30 min in total, and its policy allows at "
                              "most 45 min")
    assert rows(armed)[0].due_at == level1
    assert SnoozeRequest.objects.get(request_key="m:2").refused == second.refused


def test_two_presses_by_the_same_person_within_seconds_snooze_once(armed):
    assert ticket_snooze(ticket=armed, request_key="b:1", actor="UALICE", now=T0, debounce=True).applied
    again = ticket_snooze(ticket=armed, request_key="b:2", actor="UALICE", now=T0 + timedelta(seconds=4),
                          debounce=True)
    assert (again.applied, again.debounced) == (False, True)
    assert rows(armed)[0].due_at == T0 + timedelta(minutes=40)
    other = ticket_snooze(ticket=armed, request_key="b:3", actor="UBOB", now=T0 + timedelta(seconds=5),
                          debounce=True)
    assert other.refused  # someone else: a real second snooze, which the 45 min limit then refuses


def test_presses_further_apart_both_count(make_ticket):
    ticket = make_ticket()
    ticket_arm(ticket=ticket, now=T0)
    ticket_snooze(ticket=ticket, request_key="b:1", actor="UALICE", now=T0, debounce=True)
    later = ticket_snooze(ticket=ticket, request_key="b:2", actor="UALICE", now=T0 + timedelta(seconds=11),
                          debounce=True)
    assert later.applied
    assert rows(ticket)[0].due_at == T0 + timedelta(minutes=70)
