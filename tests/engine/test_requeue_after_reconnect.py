"""A worker that lost its broker connection lost the delayed tasks it held: on (re)connect every
pending level within the horizon gets a fresh task, queued or not; the rest wait as before."""

from datetime import timedelta

import pytest

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
    ticket_arm(ticket=ticket, now=T0)
    later = T0 + timedelta(minutes=16)  # levels 1 and 2 (10, 20 min) are within the horizon
    assert escalations_enqueue_horizon(now=later) == 2
    before = [r.celery_task_id for r in rows(ticket)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert escalations_enqueue_horizon(now=later) == 0  # the beat job sees them queued
        assert escalations_requeue_horizon(now=later) == 2  # a reconnected worker does not trust that
    after = [r.celery_task_id for r in rows(ticket)]
    assert len(callbacks) == 2
    assert after[0] != before[0] and after[1] != before[1] and all(after[:2])
    assert after[2:] == before[2:] == ["", ""]  # beyond the horizon: left to the horizon job
