"""The escalation worker as production runs it (ops/workers.py: the escalation queue on a threads
pool) against a Slack that is slow or busy, with a real broker. Outcomes only: what posted, how
often, in which order; never how long it took.

- A post that hangs holds one thread: other levels post while it still hangs.
- Levels of one channel that fall due together take turns (base/channel_pacing.py): each posts
  once, in due order, and Slack's posting limit refuses none of them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from base.fake_slack import ChannelPostLimit, FakeSlack, SlowPosts
from calendars.factories import EngineerFactory
from calendars.targets import TargetKind
from escalation.arming import ticket_arm, tickets_arm_new
from escalation.factories import EscalationStepFactory
from escalation.models import Escalation, SlaPolicy
from escalation.transitions import EscalationState
from ops.testing.worker import wait_for
from ops.workers import ESCALATION_WORKER
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory
from tickets.models import Ticket

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.fixture
def one_level(transactional_db):
    """A policy whose only level falls due ``seconds`` after a ticket opens."""
    EngineerFactory(name="Alice", slack_user_id="UALICE")
    tier = TierFactory(name="Slow Slack test")

    def make(seconds: float):
        policy, _ = SlaPolicy.objects.get_or_create(tier=tier, priority="")
        policy.steps.all().delete()
        EscalationStepFactory(policy=policy, level=1, delay=timedelta(seconds=seconds),
                              target_kind=TargetKind.ON_SHIFT)
        return tier

    return make


def open_ticket(fake: FakeSlack, tier, *, channel: str, opened_at=None, ts: str | None = None) -> Ticket:
    extra = {"slack_ts": ts} if ts else {}
    ticket = TicketFactory(channel=WatchedChannelFactory(slack_channel_id=channel, tier=tier),
                           opened_at=opened_at or timezone.now(), **extra)
    fake.add_message(channel, ticket.text, ts=ticket.slack_ts, user="UCUSTOMER")
    return ticket


def posted_keys(fake: FakeSlack) -> list[str]:
    return [(c.args.get("metadata") or {}).get("event_payload", {}).get("key")
            for c in fake.calls("chat.postMessage") if c.status == 200]


def test_a_hanging_post_holds_one_thread_while_other_levels_post(one_level, celery_worker_factory, settings):
    slow = SlowPosts(share=1.0, seconds=90, channel="CSLOW")
    with FakeSlack(slow_posts=slow) as fake:
        settings.SLACK_API_BASE_URL = fake.base_url
        tier = one_level(1)
        # The hung call ends ambiguously (it may have landed): the retry waits the ambiguous wait
        # first, shortened here from its 30 s default.
        celery_worker_factory(layout=ESCALATION_WORKER, concurrency=2, SLACK_TIMEOUT_SECONDS="60",
                              SLACK_AMBIGUOUS_WAIT_SECONDS="2")
        stuck = open_ticket(fake, tier, channel="CSLOW")
        ticket_arm(ticket=stuck)
        wait_for(lambda: slow.hanging == 1, timeout=30, message="the first post to hang")
        others = [open_ticket(fake, tier, channel=f"CFAST{i}") for i in range(3)]
        for ticket in others:
            ticket_arm(ticket=ticket)
        wait_for(lambda: len(posted_keys(fake)) == 3, timeout=30, message="the other levels' posts")
        assert slow.hanging == 1  # they posted while the first post still hung
        assert Escalation.objects.get(ticket=stuck).state == EscalationState.FIRING
        slow.release()  # Slack recovers: the hung call fails, the level retries and posts
        wait_for(lambda: Escalation.objects.get(ticket=stuck).state == EscalationState.FIRED, timeout=60,
                 message="the stuck level to post after all")
    keys = posted_keys(fake)
    assert sorted(keys) == sorted(f"ticket:{t.pk}:level:1" for t in [stuck, *others])  # each once


def test_levels_due_together_in_one_channel_take_turns(one_level, celery_worker_factory, settings):
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("channel turns are shared through the Redis broker (PostgreSQL + Redis run)")
    with FakeSlack(post_limit=ChannelPostLimit(per_second=1.0, burst=3)) as fake:
        settings.SLACK_API_BASE_URL = fake.base_url
        tier = one_level(60)
        # As after an outage: 3 channels x 5 tickets, every level already due, in ticket order.
        opened = timezone.now() - timedelta(seconds=90)
        tickets = [open_ticket(fake, tier, channel=f"CBUSY{i % 3}", opened_at=opened + timedelta(seconds=i),
                               ts=f"1700000100.{i:06d}") for i in range(15)]
        # Armed as they came in, oldest first: their delayed tasks are queued in due order.
        tickets_arm_new(tickets=list(Ticket.objects.filter(pk__in=[t.pk for t in tickets])
                                     .select_related("channel__tier").order_by("opened_at")), now=opened)
        # One thread: two levels of a channel asking for a turn in the same millisecond on two
        # threads may swap (docs/SCALING.md); here the turns, releases and re-queues alone decide.
        celery_worker_factory(layout=ESCALATION_WORKER, concurrency=1)
        rows = Escalation.objects.filter(ticket__in=tickets)
        wait_for(lambda: not rows.exclude(state=EscalationState.FIRED).exists(), timeout=90,
                 message="every level to post")
    keys = posted_keys(fake)
    assert sorted(keys) == sorted(f"ticket:{t.pk}:level:1" for t in tickets)  # every level once
    for channel in ("CBUSY0", "CBUSY1", "CBUSY2"):
        in_channel = [c.args["thread_ts"] for c in fake.calls("chat.postMessage")
                      if c.status == 200 and c.args["channel"] == channel]
        assert in_channel == sorted(in_channel)  # in due order (ts and due time rise together)
    assert [c for c in fake.calls("chat.postMessage") if c.status == 429] == []  # none hammered
