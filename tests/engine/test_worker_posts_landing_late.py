"""Slack slower than our client, against a real worker: every level shows exactly once.

The issue's case (a 10.5 s hold, a 10 s timeout) scaled down through settings: the stand-in holds
each post 2.5 s while the client gives up after 1 s, then carries the post out and answers 503.
(The hold outlasts the 2 s first backoff counted from before the call, as 10.5 s did: that is how
the retry used to look before the first post had landed.) The worker retries after
SLACK_AMBIGUOUS_WAIT_SECONDS (3 s) counted from the timeout, and the sweeper runs every second
as beat would. Nothing asserts on timings; only on what Slack ended up with.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from base.models import OutboxMessage
from calendars.factories import EngineerFactory
from calendars.targets import TargetKind
from escalation.arming import ticket_arm
from escalation.factories import EscalationStepFactory
from escalation.firing import idempotency_key
from escalation.models import Escalation, SlaPolicy
from escalation.tasks import escalations_sweep
from escalation.transitions import EscalationState
from ops.testing.worker import wait_for
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory

pytestmark = [pytest.mark.worker, pytest.mark.slow]

POSTS = 20
SLOW_SLACK_ENV = {
    "ESCALATION_HORIZON_SECONDS": "30",
    "SLACK_TIMEOUT_SECONDS": "1",
    "SLACK_AMBIGUOUS_WAIT_SECONDS": "3",
    "SLACK_DUPLICATE_CHECK_SECONDS": "2",
}


def _key_of(call) -> str:
    metadata = call.args.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return (metadata or {}).get("event_payload", {}).get("key", "")


def test_posts_slack_completes_after_the_client_timed_out_show_once(
    fake_slack, celery_worker_factory, transactional_db
):
    EngineerFactory(name="Alice", slack_user_id="UALICE")
    tier = TierFactory(name="Slow Slack")
    policy = SlaPolicy.objects.create(tier=tier, priority="", name="Slow Slack")
    EscalationStepFactory(policy=policy, level=1, delay=timedelta(seconds=3), target_kind=TargetKind.ON_SHIFT)
    fake_slack.land_late("chat.postMessage", hold=2.5, status=503, times=POSTS)
    celery_worker_factory(concurrency=2, **SLOW_SLACK_ENV)
    tickets = []
    for i in range(POSTS):
        ticket = TicketFactory(channel=WatchedChannelFactory(slack_channel_id=f"CSLOW{i:02d}", tier=tier),
                               opened_at=timezone.now())
        fake_slack.add_message(ticket.channel.slack_channel_id, ticket.text, ts=ticket.slack_ts,
                               user="UCUSTOMER")
        ticket_arm(ticket=ticket)
        tickets.append(ticket)
    levels = Escalation.objects.filter(ticket__in=tickets)

    def fired_with_the_sweeper_running() -> bool:
        if levels.filter(state=EscalationState.FIRED).count() == POSTS:
            return True
        escalations_sweep.delay()  # beat's sweeper, every second here
        time.sleep(1)
        return False

    wait_for(fired_with_the_sweeper_running, timeout=180, interval=0, message="every level fired")
    # The second looks (2 s after each post that followed a timeout) have run.
    wait_for(lambda: not OutboxMessage.objects.filter(verify_at__isnull=False).exists(), timeout=60,
             message="every duplicate check done")
    expected = {idempotency_key(ticket_id=t.pk, level=1) for t in tickets}
    landed = Counter(_key_of(c) for c in fake_slack.calls("chat.postMessage") if c.status == 200)
    visible = Counter(m["metadata"]["event_payload"]["key"] for m in fake_slack.posts())
    assert set(visible) == expected
    assert all(count == 1 for count in visible.values()), visible
    # Not one duplicate was ever posted (so none had to be deleted).
    assert landed == visible and fake_slack.deleted() == []
    assert {row.slack_message_ts for row in levels} == {m["ts"] for m in fake_slack.posts()}
