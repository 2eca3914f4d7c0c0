"""A ticket keeps the policy it was armed with: later edits apply to new tickets only.

For each thing a level uses when it fires (its delay, target kind and
reference, engineer, message template, and the ticket's snooze minutes),
editing, deactivating or deleting the policy or the step after arming
changes nothing for the armed ticket, and a ticket armed afterwards gets the
new value.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from calendars.factories import EngineerFactory
from calendars.targets import TargetKind
from escalation.arming import ticket_arm
from escalation.models import Escalation, EscalationStep, SlaPolicy, TicketSla
from escalation.policy import policy_snapshot
from escalation.snooze import ticket_snooze
from tests.support.engine import fire, rows
from tests.support.times import T0

pytestmark = pytest.mark.django_db


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def default_policy(ticket) -> SlaPolicy:
    return SlaPolicy.objects.get(tier=ticket.channel.tier, priority="")


def first_step(ticket) -> EscalationStep:
    return default_policy(ticket).steps.get(level=1)


@pytest.fixture
def armed(make_ticket, engineers, thread_in):
    """A ticket armed with the default ladder, its thread in the fake Slack."""
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    return ticket


@pytest.fixture
def later_ticket(make_ticket, thread_in):
    """Arms another ticket of the same tier, ten minutes later."""

    def arm():
        ticket = thread_in(make_ticket(slack_ts="1790009999.000100", opened_at=T0 + minutes(10)))
        ticket_arm(ticket=ticket, now=T0 + minutes(10))
        return ticket

    return arm


def test_a_new_delay_moves_only_new_tickets(armed, later_ticket):
    EscalationStep.objects.filter(pk=first_step(armed).pk).update(delay=minutes(90))
    assert rows(armed)[0].due_at == T0 + minutes(10)
    assert rows(later_ticket())[0].due_at == T0 + minutes(10) + minutes(90)


def test_a_new_target_kind_and_reference_apply_to_new_tickets_only(armed, later_ticket, fake_slack):
    EscalationStep.objects.filter(pk=first_step(armed).pk).update(
        target_kind=TargetKind.USER_GROUP, target_ref="SNEWGROUP"
    )
    assert fire(rows(armed)[0], at=T0 + minutes(10)) == "fired"
    [post] = fake_slack.posts()
    assert "<@UALICE> <@UBOB>" in post["text"] and "SNEWGROUP" not in post["text"]
    newer = rows(later_ticket())[0]
    assert (newer.target_kind, newer.target_ref) == (TargetKind.USER_GROUP, "SNEWGROUP")


def test_a_new_engineer_applies_to_new_tickets_only(make_ticket, engineers, thread_in, fake_slack,
                                                   later_ticket):
    carol = EngineerFactory(name="Carol", slack_user_id="UCAROL")
    dave = EngineerFactory(name="Dave", slack_user_id="UDAVE")
    ticket = thread_in(make_ticket())
    step = first_step(ticket)
    step.target_kind, step.engineer = TargetKind.ENGINEER, carol
    step.save()
    ticket_arm(ticket=ticket, now=T0)
    step.engineer = dave
    step.save()
    assert fire(rows(ticket)[0], at=T0 + minutes(10)) == "fired"
    assert "<@UCAROL>" in fake_slack.posts()[0]["text"]
    assert "<@UDAVE>" not in fake_slack.posts()[0]["text"]
    assert rows(later_ticket())[0].engineer_id == dave.pk


def test_a_new_message_template_applies_to_new_tickets_only(armed, later_ticket, fake_slack):
    EscalationStep.objects.filter(pk=first_step(armed).pk).update(message_template="NEW {mentions}")
    assert fire(rows(armed)[0], at=T0 + minutes(10)) == "fired"
    assert not fake_slack.posts()[0]["text"].startswith("NEW")
    newer = later_ticket()
    assert fire(rows(newer)[0], at=T0 + minutes(20)) == "fired"
    assert fake_slack.posts()[1]["text"] == "NEW <@UALICE> <@UBOB>"


def test_new_snooze_minutes_apply_to_new_tickets_only(armed, later_ticket):
    SlaPolicy.objects.filter(pk=default_policy(armed).pk).update(snooze_minutes=90)
    before = rows(armed)[0].due_at
    result = ticket_snooze(ticket=armed, request_key="mention-1", actor="UALICE", now=T0 + minutes(1))
    assert result.snooze_minutes == 30
    assert rows(armed)[0].due_at - before == minutes(30)
    newer = later_ticket()
    assert TicketSla.objects.get(ticket=newer).snooze_minutes == 90


def test_deactivating_the_policy_leaves_an_armed_ticket_escalating(armed, fake_slack):
    SlaPolicy.objects.filter(pk=default_policy(armed).pk).update(active=False)
    assert fire(rows(armed)[0], at=T0 + minutes(10)) == "fired"
    assert len(fake_slack.posts()) == 1


def test_deleting_a_step_leaves_its_level_on_armed_tickets(armed, fake_slack):
    first_step(armed).delete()
    level1 = rows(armed)[0]
    assert level1.step_id is None and level1.target_kind == TargetKind.ON_SHIFT_NOT_EMBEDDED
    assert fire(level1, at=T0 + minutes(10)) == "fired"
    assert "<@UALICE> <@UBOB>" in fake_slack.posts()[0]["text"]


def test_deleting_the_policy_leaves_armed_tickets_as_they_were(armed, fake_slack):
    policy = default_policy(armed)
    name = str(policy)
    policy.delete()
    sla = TicketSla.objects.get(ticket=armed)
    assert sla.policy_id is None and sla.policy_name == name and sla.snooze_minutes == 30
    assert Escalation.objects.filter(ticket=armed).count() == 4
    assert fire(rows(armed)[0], at=T0 + minutes(10)) == "fired"
    result = ticket_snooze(ticket=armed, request_key="mention-2", actor="UALICE", now=T0 + minutes(11))
    assert result.applied and result.snooze_minutes == 30


def test_a_snapshot_refers_only_to_first_response_steps(next_response):
    # Escalation.step refers to first-response steps; the id of a next-response step is not one.
    snapshot = policy_snapshot(next_response, priority="")
    assert [plan.step_id for plan in snapshot.levels] == list(
        next_response.steps.order_by("level").values_list("pk", flat=True))
    assert [plan.step_id for plan in snapshot.next_response.levels] == [None, None]
