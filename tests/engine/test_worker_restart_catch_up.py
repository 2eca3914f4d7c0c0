"""A worker killed with its delayed tasks, the broker flushed, a new worker started: the levels
whose tasks were lost post once each, without any periodic sweep (no beat runs here, and the
sweep interval is an hour): the catch-up a worker runs when it is ready (slabuddy/celery.py:
a horizon pass, then a sweep per pool process) is the only thing that can fire them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calendars.factories import EngineerFactory
from calendars.targets import TargetKind
from escalation.arming import ticket_arm
from escalation.factories import EscalationStepFactory
from escalation.firing import idempotency_key
from escalation.models import Escalation, FiredVia, SlaPolicy
from escalation.transitions import EscalationState
from ops.testing.worker import purge_broker, wait_for
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory

pytestmark = [pytest.mark.worker, pytest.mark.slow]

ENV = {"ESCALATION_HORIZON_SECONDS": "60", "ESCALATION_SWEEP_SECONDS": "3600"}


def test_levels_whose_tasks_died_with_the_worker_post_once_when_a_new_worker_is_ready(
    fake_slack, celery_worker_factory, transactional_db
):
    EngineerFactory(name="Alice", slack_user_id="UALICE")
    tier = TierFactory(name="Restart")
    policy = SlaPolicy.objects.create(tier=tier, priority="", name="Restart")
    # Level 1 falls due while no worker runs; level 2 after the new worker is ready.
    for level, seconds in ((1, 4), (2, 20)):
        EscalationStepFactory(policy=policy, level=level, delay=timedelta(seconds=seconds),
                              target_kind=TargetKind.ON_SHIFT)
    first = celery_worker_factory(**ENV)
    tickets = []
    for i in range(3):
        ticket = TicketFactory(channel=WatchedChannelFactory(slack_channel_id=f"CRESTART{i}", tier=tier),
                               opened_at=timezone.now())
        fake_slack.add_message(ticket.channel.slack_channel_id, ticket.text, ts=ticket.slack_ts,
                               user="UCUSTOMER")
        ticket_arm(ticket=ticket)
        tickets.append(ticket)
    levels = Escalation.objects.filter(ticket__in=tickets)
    assert levels.count() == 6 and all(row.celery_task_id for row in levels)
    wait_for(lambda: first.log().count("escalation.tasks.escalation_fire[") >= 6, timeout=30,
             message="the first worker holding every delayed task")
    first.kill()  # SIGKILL: the delayed tasks it held are gone
    purge_broker()  # ...and the broker keeps nothing either
    last_level1 = max(row.due_at for row in levels.filter(level=1))
    wait_for(lambda: timezone.now() > last_level1 + timedelta(seconds=1.5), timeout=30,
             message="every level 1 overdue")
    assert fake_slack.posts() == []

    second = celery_worker_factory(**ENV)
    assert "catch-up queued (worker ready)" in second.log()
    wait_for(lambda: levels.filter(state=EscalationState.FIRED).count() == 6, timeout=60,
             message="all six levels fired")
    keys = sorted(m["metadata"]["event_payload"]["key"] for m in fake_slack.posts())
    assert keys == sorted(idempotency_key(ticket_id=t.pk, level=n) for t in tickets for n in (1, 2))
    # Level 2 had its task back from the horizon pass before it fell due.
    assert set(levels.filter(level=2).values_list("fired_via", flat=True)) == {FiredVia.TASK}
    assert "Traceback" not in second.log()
