"""A real Celery worker fires a business-clock level at the time the clock computed.

The tier is open for one hour starting at the current minute; the ticket opened two
hours earlier, while it was closed. On a calendar clock its first level would be long
overdue; on the business clock it falls due a few seconds from now. Nothing here
time-travels, and no assertion is about how long anything took.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from calendars.factories import EngineerFactory
from calendars.targets import TargetKind
from escalation.arming import ticket_arm
from escalation.factories import EscalationStepFactory, SlaPolicyFactory
from escalation.models import Escalation, TicketSla
from escalation.transitions import EscalationState
from ops.testing.worker import wait_for
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory
from tickets.hours import interval_text

pytestmark = [pytest.mark.worker, pytest.mark.slow]

WORKER_ENV = {"ESCALATION_HORIZON_SECONDS": "30"}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_a_worker_fires_a_business_clock_level_at_its_computed_time(fake_slack, celery_worker_factory):
    EngineerFactory(name="Alice", slack_user_id="UALICE")
    celery_worker_factory(**WORKER_ENV)  # first: its start-up must not eat into the few seconds below
    now = timezone.now()
    opening = now.replace(second=0, microsecond=0)
    minute = opening.hour * 60 + opening.minute
    tier = TierFactory(name="Open for an hour", time_zone="UTC",
                       business_hours={DAYS[opening.weekday()]: [interval_text((minute, minute + 60))]})
    policy = SlaPolicyFactory(tier=tier, priority="", clock="business")
    # Due a few seconds from now: the open time already passed since the opening, plus 4 s.
    first_delay = timedelta(seconds=math.ceil((now - opening).total_seconds()) + 4)
    EscalationStepFactory(policy=policy, level=1, delay=first_delay, target_kind=TargetKind.ON_SHIFT)
    EscalationStepFactory(policy=policy, level=2, delay=timedelta(minutes=1), target_kind=TargetKind.ON_SHIFT,
                          outside_hours=True)  # calendar time from the opening: overdue at once
    EscalationStepFactory(policy=policy, level=3, delay=timedelta(hours=2), target_kind=TargetKind.ON_SHIFT)
    ticket = TicketFactory(channel=WatchedChannelFactory(slack_channel_id="CBUSINESS", tier=tier),
                           opened_at=opening - timedelta(hours=2))
    fake_slack.add_message("CBUSINESS", ticket.text, ts=ticket.slack_ts, user="UCUSTOMER")

    ticket_arm(ticket=ticket)
    first, second, third = Escalation.objects.filter(ticket=ticket).order_by("level")
    assert first.due_at == opening + first_delay  # counted from the opening, not from opened_at
    assert second.due_at == ticket.opened_at + timedelta(minutes=1)
    assert third.due_at == opening + timedelta(days=7, hours=1)  # one hour left over: next week's opening
    assert TicketSla.objects.get(ticket=ticket).breach_at == first.due_at

    wait_for(lambda: Escalation.objects.filter(ticket=ticket, state=EscalationState.FIRED).count() == 2,
             timeout=40, message="levels 1 and 2 fired")
    first.refresh_from_db()
    assert first.fired_at >= first.due_at  # never early
    posts = {c.args["metadata"]["event_payload"]["level"]: c for c in fake_slack.calls("chat.postMessage")
             if c.status == 200}
    assert set(posts) == {1, 2}
    assert posts[1].at >= first.due_at.timestamp()  # Slack received it only once it was due
    assert posts[2].at < posts[1].at  # the outside-hours level was overdue and went first
    assert "breached" in posts[1].args["text"]
    third.refresh_from_db()
    assert third.state == EscalationState.PENDING
