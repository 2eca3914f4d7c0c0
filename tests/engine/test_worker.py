"""The engine against a real Celery worker subprocess and the real broker.

The embedded filesystem broker in the default run; Redis when
CELERY_BROKER_URL is redis://. Levels are due a few seconds after arming.
Nothing here time-travels (the worker's timer runs on its own clock) and no
assertion is about how long anything took.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from base.fake_slack import FakeSlack
from base.models import OutboxStatus
from calendars.factories import EngineerFactory
from calendars.targets import TargetKind
from escalation.arming import ticket_arm
from escalation.disarming import ticket_mark_responded
from escalation.factories import EscalationStepFactory
from escalation.firing import idempotency_key
from escalation.models import Escalation, FiredVia, SlaPolicy
from escalation.snooze import ticket_snooze
from escalation.tasks import escalation_fire, escalations_sweep
from escalation.transitions import EscalationState
from ops.testing.worker import purge_broker, wait_for
from tests.support.outbox import outbox_of
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory

pytestmark = [pytest.mark.worker, pytest.mark.slow]

# Short limits so that a killed worker's claim expires within the test.
WORKER_ENV = {
    # The engine's own rules, one level at a time: channel turns (on with a Redis broker) have
    # their own worker tests (test_worker_slow_slack.py).
    "SLACK_CHANNEL_PACING": "false",
    "ESCALATION_HORIZON_SECONDS": "30",
    "CELERY_TASK_TIME_LIMIT": "6",
    "CELERY_TASK_SOFT_TIME_LIMIT": "5",
    "ESCALATION_CLAIM_LEASE_SECONDS": "10",  # > the timeout + 5: a batch of overdue levels posts
    # After a 5xx or a timeout the retry waits this long for the first request to land (30 s by
    # default); a post whose sender died is taken over only after its timeout plus this wait,
    # which stays shorter than the claim's lease here, as it does with the defaults (10 + 30 < 130).
    "SLACK_AMBIGUOUS_WAIT_SECONDS": "3",
    "SLACK_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def setup_ladder(transactional_db):
    """A policy whose levels fall due seconds after a ticket opens."""
    EngineerFactory(name="Alice", slack_user_id="UALICE")

    def make(*delays: float) -> SlaPolicy:
        """(Re)define the ladder for tickets armed from now on."""
        policy, _ = SlaPolicy.objects.get_or_create(tier=TierFactory(name="Worker test"), priority="")
        policy.snooze_minutes = 1  # the smallest snooze; still inside the test's horizon
        policy.save()
        policy.steps.all().delete()
        for level, seconds in enumerate(delays, start=1):
            EscalationStepFactory(policy=policy, level=level, delay=timedelta(seconds=seconds),
                                  target_kind=TargetKind.ON_SHIFT)
        return policy

    return make


def open_ticket(fake: FakeSlack, *, channel: str = "CWORKER1", arm: bool = True):
    tier = TierFactory(name="Worker test")
    ticket = TicketFactory(channel=WatchedChannelFactory(slack_channel_id=channel, tier=tier),
                           opened_at=timezone.now())
    fake.add_message(channel, ticket.text, ts=ticket.slack_ts, user="UCUSTOMER")
    if arm:
        ticket_arm(ticket=ticket)
    return ticket


def levels(ticket) -> list[Escalation]:
    return list(Escalation.objects.filter(ticket=ticket).order_by("level"))


def settled(ticket, state=EscalationState.FIRED) -> bool:
    return all(row.state == state for row in levels(ticket))


def posts_for(fake: FakeSlack, ticket) -> list[dict]:
    return fake.posts(thread_ts=ticket.slack_ts)


def keys_posted(fake: FakeSlack) -> list[str]:
    """The idempotency key of every successful post."""
    return [p["metadata"]["event_payload"]["key"] for p in fake.posts()]


def outcomes(worker, outcome: str) -> int:
    """How many tasks the worker logged as finished with ``outcome``."""
    return worker.log().count(f": '{outcome}'")


def test_levels_fire_at_their_due_time(fake_slack, celery_worker_factory, setup_ladder):
    setup_ladder(2, 4)
    worker = celery_worker_factory(**WORKER_ENV)
    ticket = open_ticket(fake_slack)
    wait_for(lambda: settled(ticket), timeout=30, message="both levels fired")
    first, second = levels(ticket)
    for row in (first, second):
        assert row.state == EscalationState.FIRED and row.fired_via == FiredVia.TASK
        assert row.fired_at >= row.due_at  # never early
    assert [p["metadata"]["event_payload"]["level"] for p in posts_for(fake_slack, ticket)] == [1, 2]
    assert "<@UALICE>" in posts_for(fake_slack, ticket)[0]["text"]
    wait_for(lambda: outcomes(worker, "fired") == 2, timeout=10, message="two tasks logged 'fired'")


def test_a_cancelled_level_never_posts_and_a_snoozed_one_moves(fake_slack, celery_worker_factory,
                                                               setup_ladder):
    setup_ladder(2)
    worker = celery_worker_factory(**WORKER_ENV)
    answered = open_ticket(fake_slack, channel="CANSWERED")
    snoozed = open_ticket(fake_slack, channel="CSNOOZED")
    old_task = levels(snoozed)[0].celery_task_id
    assert ticket_mark_responded(ticket=answered, path="slack_thread", actor="UALICE", at=timezone.now())
    result = ticket_snooze(ticket=snoozed, request_key="CSNOOZED:1.1", actor="UALICE")
    assert result.applied
    # A control ticket due after the other two: once it posted, their old tasks have run.
    setup_ladder(4)
    control = open_ticket(fake_slack, channel="CCONTROL")
    wait_for(lambda: settled(control), timeout=30, message="the control ticket's level")
    assert posts_for(fake_slack, answered) == [] and posts_for(fake_slack, snoozed) == []
    assert levels(answered)[0].state == EscalationState.CANCELLED
    moved = levels(snoozed)[0]
    assert moved.state == EscalationState.PENDING and moved.due_at == result.due_times[1]
    assert moved.celery_task_id != old_task and moved.enqueued_for == moved.due_at  # queued anew
    # The revoked/stale tasks were discarded or ran as no-ops, never posted.
    assert "stale" in worker.log() or "revoked" in worker.log().lower()


def test_a_duplicated_task_posts_once(fake_slack, celery_worker_factory, setup_ladder):
    setup_ladder(2)
    worker = celery_worker_factory(**WORKER_ENV)
    ticket = open_ticket(fake_slack)
    row = levels(ticket)[0]
    for _ in range(2):  # two more deliveries of the same level and version
        escalation_fire.apply_async(args=(row.pk, row.version), eta=row.due_at)
    wait_for(lambda: outcomes(worker, "fired") + outcomes(worker, "stale") == 3, timeout=30,
             message="three deliveries handled")
    assert (outcomes(worker, "fired"), outcomes(worker, "stale")) == (1, 2)
    assert len(posts_for(fake_slack, ticket)) == 1


def test_after_a_broker_flush_the_sweeper_fires_each_overdue_level_once(
    fake_slack, celery_worker_factory, setup_ladder
):
    setup_ladder(1, 2)
    tickets = [open_ticket(fake_slack, channel=f"CFLUSH{i}") for i in range(3)]
    purge_broker()  # every delayed task is gone
    last_due = max(row.due_at for t in tickets for row in levels(t))
    wait_for(lambda: timezone.now() > last_due + timedelta(seconds=1.5), timeout=30,
             message="all levels overdue")
    assert fake_slack.posts() == []  # nothing left to fire them but the sweeper
    # A worker sweeps as it connects (slabuddy/celery.py), as beat asks every ESCALATION_SWEEP_SECONDS.
    worker = celery_worker_factory(**WORKER_ENV)
    wait_for(lambda: all(settled(t) for t in tickets), timeout=30, message="six levels fired")
    escalations_sweep.delay()
    wait_for(lambda: worker.log().count("escalations_sweep[") >= 4, timeout=30,
             message="second sweep done")  # 2 lines per task: received, succeeded
    expected = sorted(idempotency_key(ticket_id=t.pk, level=n) for t in tickets for n in (1, 2))
    assert sorted(keys_posted(fake_slack)) == expected
    fired = Escalation.objects.filter(state=EscalationState.FIRED)
    assert fired.count() == 6
    assert set(fired.values_list("fired_via", flat=True)) == {FiredVia.SWEEPER}


class BlockingSlack(FakeSlack):
    """Holds the first chat.postMessage until released, then accepts it."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self._blocked_once = False

    def handle(self, method, args, token):
        if method == "chat.postMessage" and not self._blocked_once:
            self._blocked_once = True
            self.entered.set()
            self.release.wait(30)
        return super().handle(method, args, token)


def test_a_worker_killed_mid_post_loses_nothing_and_duplicates_nothing(
    settings, celery_worker_factory, setup_ladder
):
    with BlockingSlack() as fake:
        settings.SLACK_API_BASE_URL = fake.base_url
        setup_ladder(1, 3)
        worker = celery_worker_factory(**WORKER_ENV)
        ticket = open_ticket(fake)
        assert fake.entered.wait(30), "level 1 never reached Slack"
        level1 = levels(ticket)[0]
        assert level1.state == EscalationState.FIRING
        assert outbox_of(level1).status == OutboxStatus.SENDING
        worker.kill()  # SIGKILL, worker and pool, while Slack is processing the post
        fake.release.set()  # ...which Slack then accepts: the worker never learnt its ts
        wait_for(lambda: len(fake.posts()) == 1, timeout=10, message="the accepted post")

        replacement = celery_worker_factory(**WORKER_ENV)

        def swept_all() -> bool:
            if settled(ticket):
                return True
            escalations_sweep.delay()  # beat's job, every second here
            time.sleep(1)
            return False

        wait_for(swept_all, timeout=60, interval=0, message="both levels fired")
    keys = keys_posted(fake)
    assert sorted(keys) == [idempotency_key(ticket_id=ticket.pk, level=n) for n in (1, 2)]
    # Level 1 was found in the thread, not posted again.
    levels_posted = [c.args["metadata"]["event_payload"]["level"] for c in fake.calls("chat.postMessage")]
    assert levels_posted.count(1) == 1
    first, second = levels(ticket)
    assert first.slack_message_ts == fake.posts()[0]["ts"] and first.fired_via == FiredVia.SWEEPER
    assert second.state == EscalationState.FIRED
    assert "Traceback" not in replacement.log()


def test_slack_errors_rate_limit_server_error_and_permanent(fake_slack, celery_worker_factory, setup_ladder):
    setup_ladder(2)
    worker = celery_worker_factory(**WORKER_ENV)
    # 429 with Retry-After, then success: one post.
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    limited = open_ticket(fake_slack, channel="CLIMITED")
    wait_for(lambda: settled(limited), timeout=30, message="fired after the rate limit")
    row = levels(limited)[0]
    assert row.state == EscalationState.FIRED and row.attempts == 2
    assert len(fake_slack.calls("chat.postMessage")) == 2

    # 500: retried with backoff, looked up first, posted once.
    fake_slack.fail_next("chat.postMessage", status=500)
    failing = open_ticket(fake_slack, channel="CFIVEHUNDRED")
    wait_for(lambda: settled(failing), timeout=30, message="fired after the 500")
    assert levels(failing)[0].attempts == 2 and len(posts_for(fake_slack, failing)) == 1
    assert fake_slack.calls("conversations.replies")

    # channel_not_found: recorded on the row, never retried.
    fake_slack.fail_next("chat.postMessage", error="channel_not_found")
    gone = open_ticket(fake_slack, channel="CGONE")
    wait_for(lambda: settled(gone, EscalationState.FAILED), timeout=30, message="failed level")
    calls_before = len(fake_slack.calls("chat.postMessage"))
    escalations_sweep.delay()
    wait_for(lambda: worker.log().count("escalations_sweep[") >= 2, timeout=30, message="a sweep")
    assert len(fake_slack.calls("chat.postMessage")) == calls_before
    assert levels(gone)[0].last_error == "channel_not_found"
    assert posts_for(fake_slack, gone) == []
