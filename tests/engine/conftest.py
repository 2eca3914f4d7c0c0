from datetime import timedelta

import pytest

from base.pages import PageProvider
from calendars.factories import EngineerFactory
from calendars.models import Role
from calendars.targets import TargetKind
from escalation.factories import EscalationStepFactory, NextResponseStepFactory, SlaPolicyFactory
from tests.support.times import T0
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory


@pytest.fixture
def ladder(db):
    """A tier with a 4-level default policy (10/20/35/50 min) and an urgent one (5/10 min)."""
    tier = TierFactory(name="Enterprise test")
    default = SlaPolicyFactory(tier=tier, priority="")
    kinds = [TargetKind.ON_SHIFT_NOT_EMBEDDED, TargetKind.ON_SHIFT, TargetKind.USER_GROUP,
             TargetKind.HEAD_OF_SUCCESS]
    for level, (minutes, kind) in enumerate(zip((10, 20, 35, 50), kinds, strict=True), start=1):
        EscalationStepFactory(policy=default, level=level, delay=timedelta(minutes=minutes),
                              target_kind=kind, target_ref="SSUPPORT1" if level == 3 else "")
    urgent = SlaPolicyFactory(tier=tier, priority="urgent", snooze_minutes=15)
    for level, minutes in ((1, 5), (2, 10)):
        EscalationStepFactory(policy=urgent, level=level, delay=timedelta(minutes=minutes),
                              target_kind=TargetKind.ON_SHIFT)
    return tier


@pytest.fixture
def engineers(db):
    return [EngineerFactory(name="Alice", slack_user_id="UALICE"),
            EngineerFactory(name="Bob", slack_user_id="UBOB")]


@pytest.fixture
def make_ticket(ladder):
    def make(**fields):
        channel = fields.pop("channel", None) or WatchedChannelFactory(
            slack_channel_id="CSUPPORT1", tier=ladder
        )
        fields.setdefault("opened_at", T0)
        fields.setdefault("priority", "normal")
        return TicketFactory(channel=channel, **fields)

    return make


@pytest.fixture
def thread_in(fake_slack):
    """Put the ticket's own message in the fake Slack channel, so its thread exists."""

    def add(ticket):
        fake_slack.add_message(ticket.channel.slack_channel_id, ticket.text, ts=ticket.slack_ts,
                               user="UCUSTOMER")
        return ticket

    return add


@pytest.fixture
def paging_ladder(db):
    """An Enterprise-like tier whose level 3 pages PagerDuty for high and urgent tickets only,
    with a support engineer and a head of success on the roster."""
    tier = TierFactory(name="Enterprise paging")
    policy = SlaPolicyFactory(tier=tier, priority="")
    EscalationStepFactory(policy=policy, level=1, delay=timedelta(minutes=10),
                          target_kind=TargetKind.ON_SHIFT_NOT_EMBEDDED)
    EscalationStepFactory(policy=policy, level=2, delay=timedelta(minutes=20),
                          target_kind=TargetKind.ON_SHIFT)
    EscalationStepFactory(policy=policy, level=3, delay=timedelta(minutes=35), target_kind=TargetKind.PAGE,
                          page_provider=PageProvider.PAGERDUTY, page_priorities=["high", "urgent"])
    EscalationStepFactory(policy=policy, level=4, delay=timedelta(minutes=50),
                          target_kind=TargetKind.HEAD_OF_SUCCESS)
    EngineerFactory(name="Alice", slack_user_id="UALICE")
    EngineerFactory(name="Hana Head", slack_user_id="UHEAD", role=Role.HEAD_OF_SUCCESS)
    return tier


@pytest.fixture
def paging_ticket(paging_ladder, thread_in):
    """Make a ticket of a priority in a channel of the paging tier, with its thread in Slack."""

    def make(priority="urgent", **fields):
        channel = WatchedChannelFactory(slack_channel_id="CPAGING01", name="support-big", tier=paging_ladder)
        fields.setdefault("opened_at", T0)
        ticket = TicketFactory(channel=channel, priority=priority, helpdesk_ticket_id="4711", **fields)
        return thread_in(ticket)

    return make


@pytest.fixture
def teams_business(db):
    """The issue's Teams tier: Mon-Fri 09:00-18:00 Europe/Berlin, business clock, 1h/3h/6h/12h."""
    tier = TierFactory(name="Teams business", time_zone="Europe/Berlin",
                       business_hours={"mon-fri": ["09:00-18:00"]})
    policy = SlaPolicyFactory(tier=tier, priority="", clock="business", snooze_minutes=30)
    kinds = [TargetKind.ON_SHIFT_NOT_EMBEDDED, TargetKind.ON_SHIFT, TargetKind.USER_GROUP,
             TargetKind.HEAD_OF_SUCCESS]
    for level, (hours, kind) in enumerate(zip((1, 3, 6, 12), kinds, strict=True), start=1):
        EscalationStepFactory(policy=policy, level=level, delay=timedelta(hours=hours), target_kind=kind,
                              target_ref="SSUPPORT1" if level == 3 else "")
    return policy


@pytest.fixture
def next_response(ladder):
    """The ladder's default policy also answers customers who write again: next-response
    level 1 after 15 min (on shift), level 2 after 30 min (head of success), target 20 min."""
    policy = ladder.policies.get(priority="")
    policy.next_response_target = timedelta(minutes=20)
    policy.save()
    NextResponseStepFactory(policy=policy, level=1, delay=timedelta(minutes=15),
                            target_kind=TargetKind.ON_SHIFT)
    NextResponseStepFactory(policy=policy, level=2, delay=timedelta(minutes=30),
                            target_kind=TargetKind.HEAD_OF_SUCCESS)
    return policy
