"""A worker that lost its broker connection lost the delayed tasks it held: on (re)connect every
pending level within the horizon gets a fresh task, queued or not; the rest wait as before."""

from datetime import timedelta

import pytest
from django.db import connection

from escalation.arming import ticket_arm
from escalation.queueing import escalations_enqueue_horizon, escalations_requeue_horizon
from tests.support.engine import rows
from tests.support.times import T0

pytestmark = pytest.mark.django_db


def test_levels_within_the_horizon_are_queued_again_even_if_they_were(
    make_ticket, settings, django_capture_on_commit_callbacks
):
    settings.ESCALATION_HORIZON_SECONDS = 5 * 60
    ticket = make_ticket()
    ticket_arm(ticket=ticket, now=T0)  # nothing within the horizon yet: no task
    settings.ESCALATION_HORIZON_SECONDS = 12 * 60
    later = T0 + timedelta(minutes=9)  # levels 1 and 2 (10, 20 min) are within the horizon, not due yet
    assert escalations_enqueue_horizon(now=later) == 2
    before = [r.celery_task_id for r in rows(ticket)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert escalations_enqueue_horizon(now=later) == 0  # the beat job sees them queued
        assert escalations_requeue_horizon(now=later) == 2  # a reconnected worker does not trust that
    after = [r.celery_task_id for r in rows(ticket)]
    assert len(callbacks) == 2
    assert after[0] != before[0] and after[1] != before[1] and all(after[:2])
    assert after[2:] == before[2:] == ["", ""]  # beyond the horizon: left to the horizon job


def test_a_level_long_overdue_is_left_to_the_sweeps_on_postgresql(
    make_ticket, settings, django_capture_on_commit_callbacks
):
    """The catch-up queues sweeps with this pass (slabuddy/celery.py); on PostgreSQL they fire
    the overdue levels in batches, so a task for each would only be one more message to drop."""
    settings.ESCALATION_HORIZON_SECONDS = 5 * 60
    ticket = make_ticket()
    ticket_arm(ticket=ticket, now=T0)
    later = T0 + timedelta(minutes=16)  # level 1 (10 min) overdue, level 2 (20 min) within the horizon
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        queued = escalations_requeue_horizon(now=later)
    level1, level2 = rows(ticket)[:2]
    assert level2.celery_task_id
    if connection.vendor == "postgresql":
        assert (queued, len(callbacks), level1.celery_task_id) == (1, 1, "")
    else:  # one level at a time there: its own task fires it
        assert (queued, len(callbacks)) == (2, 2) and level1.celery_task_id
