"""Unique constraints and the seeded default ladder."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from calendars.factories import EngineerFactory
from calendars.targets import TargetKind
from escalation.factories import EscalationStepFactory, SlaPolicyFactory
from escalation.models import Escalation, EscalationStep, SlaPolicy
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory

pytestmark = pytest.mark.django_db


def test_seeded_ladders_match_the_spec():
    expected = {
        "Enterprise": [10, 20, 35, 50],
        "Teams": [60, 180, 360, 720],
    }
    kinds = [
        TargetKind.ON_SHIFT_NOT_EMBEDDED,
        TargetKind.ON_SHIFT,
        TargetKind.USER_GROUP,
        TargetKind.HEAD_OF_SUCCESS,
    ]
    for tier, minutes in expected.items():
        policy = SlaPolicy.objects.get(tier__name=tier, priority="")
        assert policy.snooze_minutes == 30
        steps = list(policy.steps.order_by("level"))
        assert [s.level for s in steps] == [1, 2, 3, 4]
        assert [s.delay for s in steps] == [timedelta(minutes=m) for m in minutes]
        assert [s.target_kind for s in steps] == kinds


def test_one_ticket_per_channel_and_message():
    ticket = TicketFactory()
    TicketFactory(channel=ticket.channel, slack_ts="999.000001")  # other message: fine
    TicketFactory(channel=WatchedChannelFactory(), slack_ts=ticket.slack_ts)  # other channel: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        TicketFactory(channel=ticket.channel, slack_ts=ticket.slack_ts)


def test_one_escalation_row_per_ticket_and_level():
    ticket = TicketFactory()
    now = ticket.opened_at
    Escalation.objects.create(ticket=ticket, level=1, target_kind=TargetKind.ON_SHIFT, due_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Escalation.objects.create(ticket=ticket, level=1, target_kind=TargetKind.ON_SHIFT, due_at=now)


def test_one_policy_per_tier_and_priority():
    tier = TierFactory(name="Startup")
    SlaPolicyFactory(tier=tier, priority="")
    SlaPolicyFactory(tier=tier, priority="urgent")
    with pytest.raises(IntegrityError), transaction.atomic():
        SlaPolicyFactory(tier=tier, priority="urgent")


def test_one_step_per_policy_and_level():
    step = EscalationStepFactory(level=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        EscalationStep.objects.create(
            policy=step.policy, level=1, delay=timedelta(minutes=5), target_kind=TargetKind.ON_SHIFT
        )


def test_negative_delay_is_refused():
    with pytest.raises(IntegrityError), transaction.atomic():
        EscalationStepFactory(delay=timedelta(minutes=-1))


def test_engineer_slack_id_and_email_unique_but_optional():
    EngineerFactory(slack_user_id="", email="")
    EngineerFactory(slack_user_id="", email="")  # blanks are stored as NULL: no clash
    EngineerFactory(slack_user_id="UDUP", email="a@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        EngineerFactory(slack_user_id="UDUP")
    with pytest.raises(IntegrityError), transaction.atomic():
        EngineerFactory(email="a@example.com")
