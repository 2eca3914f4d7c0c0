"""Overdue levels fire in batches (escalation/firing_batch.py): after an outage the sweeper, and a
level's task that finds its level long overdue, claim them a batch at a time in due order and fire
each exactly once, by the same rules as one level alone, in a few statements for the whole batch.
PostgreSQL only: the batches claim with SKIP LOCKED; SQLite sweeps one level at a time."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from base.channel_pacing import ChannelState, PaceRule, turn_decide, turn_done
from base.models import OutboxMessage, OutboxStatus
from escalation import firing, firing_batch, pacing
from escalation.arming import ticket_arm
from escalation.closing import ticket_close
from escalation.models import Escalation, FiredVia
from escalation.outcomes import FireOutcome
from escalation.sweeping import escalation_fire_or_sweep, escalations_sweep
from escalation.transitions import EscalationState
from tests.support.engine import rows
from tests.support.times import T0
from tickets.factories import WatchedChannelFactory
from tickets.models import TicketEvent, TicketEventKind, TicketVia

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="batches claim with SKIP LOCKED")

DUE = T0 + timedelta(minutes=10)  # level 1 of the ladder
LATE = DUE + timedelta(minutes=5)  # level 1 of every ticket long overdue, level 2 (20 min) not due


@pytest.fixture
def overdue(ladder, make_ticket, engineers, thread_in):
    """Twelve tickets in three channels, opened at T0 a second apart: their level 1 is overdue."""
    channels = [WatchedChannelFactory(slack_channel_id=f"CSUPPORT{n}", tier=ladder) for n in (1, 2, 3)]
    tickets = []
    for i in range(12):
        ticket = thread_in(make_ticket(channel=channels[i % 3], slack_ts=f"1700000000.{i:06d}",
                                       opened_at=T0 + timedelta(seconds=i)))
        ticket_arm(ticket=ticket, now=T0)
        tickets.append(ticket)
    return tickets


def _level1(ticket) -> Escalation:
    return rows(ticket)[0]


def _sweep(at, **kwargs):
    with time_machine.travel(at, tick=False):
        return escalations_sweep(now=at, **kwargs)


def test_a_sweep_fires_every_overdue_level_once_in_due_order_in_few_statements(overdue, fake_slack):
    pending = Escalation.objects.filter(state=EscalationState.PENDING, due_at__lte=LATE).count()
    with CaptureQueriesContext(connection) as captured:
        result = _sweep(LATE)
    assert result.outcomes == {FireOutcome.FIRED: pending}
    levels = [_level1(t) for t in overdue]
    assert all(r.state == EscalationState.FIRED and r.fired_via == FiredVia.SWEEPER for r in levels)
    posted = [c.args["thread_ts"] for c in fake_slack.calls("chat.postMessage") if c.status == 200]
    assert sorted(posted) == posted == sorted(t.slack_ts for t in overdue)  # once each, in due order
    assert TicketEvent.objects.filter(kind=TicketEventKind.LEVEL_FIRED).count() == pending
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.SENT}
    # One level alone takes 13; the batch's 12 share one take (the takers' lock, the rows, the
    # claim, the next steps, the roster lookup (5), the record, "sending": 11), one settle (4: sent,
    # fired, timeline, the thread's state) and the sweep's last look for more (2): 17, whatever the
    # batch's size.
    statements = [q for q in captured.captured_queries
                  if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))]
    assert len(statements) <= 17, "\n".join(q["sql"][:120] for q in statements)


def test_a_sweep_takes_the_levels_in_batches_and_says_when_more_are_left(overdue, fake_slack, monkeypatch):
    monkeypatch.setattr(firing_batch, "BATCH_SIZE", 5)
    monkeypatch.setattr("escalation.sweeping.BATCH_SIZE", 5)
    first = _sweep(LATE, limit=5)
    assert (first.outcomes, first.more) == ({FireOutcome.FIRED: 5}, True)
    rest = _sweep(LATE)
    assert (rest.outcomes, rest.more) == ({FireOutcome.FIRED: len(overdue) - 5}, False)
    assert sorted(p["thread_ts"] for p in fake_slack.posts()) == [t.slack_ts for t in overdue]


def test_a_task_that_finds_its_level_long_overdue_sweeps_the_overdue_levels(overdue, fake_slack):
    mine = _level1(overdue[5])
    with time_machine.travel(LATE, tick=False):
        outcome, swept = escalation_fire_or_sweep(escalation_id=mine.pk, version=mine.version)
    assert outcome == FireOutcome.OVERDUE
    assert swept.outcomes == {FireOutcome.FIRED: len(overdue)} and not swept.more
    assert _level1(overdue[5]).state == EscalationState.FIRED
    # A level due just now fires alone, by its task, as before; a task that carries its level's due
    # time knows that without a look at the row.
    for ticket, carried in ((overdue[0], None), (overdue[1], "due")):
        level2 = rows(ticket)[1]
        with time_machine.travel(level2.due_at + timedelta(seconds=0.5), tick=False), \
                CaptureQueriesContext(connection) as captured:
            outcome, swept = escalation_fire_or_sweep(escalation_id=level2.pk, version=level2.version,
                                                      due_at=level2.due_at if carried else None)
        assert (outcome, swept) == (FireOutcome.FIRED, None)
        assert rows(ticket)[1].fired_via == FiredVia.TASK
        looked = [q["sql"] for q in captured.captured_queries
                  if q["sql"].startswith('SELECT "escalation_escalation"."state" AS "state"')]
        assert len(looked) == (0 if carried else 1), [q["sql"][:80] for q in captured.captured_queries]


@pytest.fixture
def one_a_second(monkeypatch):
    """The shared store of turns, in memory: the decision Redis makes, one post a second."""
    channels: dict[str, ChannelState] = {}

    def turns(posts, now=None):
        waits = []
        for channel, key in posts:
            turn = turn_decide(channels.get(channel, ChannelState()), key=key,
                               now=time.time() if now is None else now, rule=PaceRule(interval=1.0, burst=1))
            channels[channel] = turn.state
            waits.append(turn.wait)
        return waits

    def done(*, channel, key):
        channels[channel] = turn_done(channels.get(channel, ChannelState()), key=key)

    monkeypatch.setattr(pacing, "channel_turns", turns)
    monkeypatch.setattr(pacing, "channel_turn_done", done)


def test_levels_told_to_wait_for_their_channel_are_released_before_anything_is_drafted(
    overdue, fake_slack, one_a_second, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        result = _sweep(LATE)
    waiting = len(overdue) - 3
    assert result.outcomes == {FireOutcome.FIRED: 3, FireOutcome.PACED: waiting}  # one per channel now
    assert len(queued) == waiting  # a delayed task for each turn
    released = Escalation.objects.filter(state=EscalationState.PENDING, level=1)
    assert released.count() == waiting
    for row in released:
        assert row.celery_task_id and row.enqueued_for == row.due_at and row.attempts == 0
        assert row.last_error == pacing.WAIT_ERROR and row.not_before > LATE
    assert OutboxMessage.objects.count() == 3  # nothing recorded for the levels that wait
    # At their turns they post, in due order per channel.
    for second in range(1, 4):
        _sweep(LATE + timedelta(seconds=second + 0.01))
    assert Escalation.objects.filter(state=EscalationState.FIRED, level=1).count() == len(overdue)
    for channel in ("CSUPPORT1", "CSUPPORT2", "CSUPPORT3"):
        posted = [p["thread_ts"] for p in fake_slack.posts(channel=channel)]
        assert posted == sorted(posted) and len(posted) == 4


def test_a_rate_limited_post_waits_for_retry_after_and_the_rest_of_the_batch_fires(overdue, fake_slack):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)
    result = _sweep(LATE)
    assert result.outcomes == {FireOutcome.FIRED: len(overdue) - 1, FireOutcome.RATE_LIMITED: 1}
    limited = Escalation.objects.get(state=EscalationState.PENDING, level=1)
    assert limited.not_before >= LATE + timedelta(seconds=7)
    assert limited.ticket_id == overdue[0].pk  # the first of the batch met the 429
    assert _sweep(limited.not_before + timedelta(seconds=1)).outcomes == {FireOutcome.FIRED: 1}
    assert len(fake_slack.posts()) == len(overdue)


def test_a_message_an_earlier_attempt_may_have_posted_is_looked_for_first(overdue, fake_slack, settings):
    """A level claimed by a worker that died mid-post: the batch takes it over after the lease and
    finds the post in the thread instead of posting it twice."""
    fake_slack.land_late("chat.postMessage", hold=0.2, drop=True)  # the first post lands after a drop
    first = _level1(overdue[0])
    with time_machine.travel(LATE, tick=False):
        outcome, _ = escalation_fire_or_sweep(escalation_id=first.pk, version=first.version)
    time.sleep(0.5)  # the dropped post lands
    after = LATE + timedelta(seconds=settings.SLACK_AMBIGUOUS_WAIT_SECONDS + 60)
    result = _sweep(after)
    assert result.outcomes.get(FireOutcome.FIRED) == 1
    assert Escalation.objects.filter(state=EscalationState.FIRED, level=1).count() == len(overdue)
    for ticket in overdue:
        assert len(fake_slack.posts(thread_ts=ticket.slack_ts)) == 1  # each once, the dropped one too
    recovered = TicketEvent.objects.get(kind=TicketEventKind.LEVEL_FIRED, ticket=overdue[0])
    assert recovered.details["recovered"] is True


def test_a_worker_dying_after_the_posts_leaves_them_found_not_posted_again(
    overdue, fake_slack, settings, monkeypatch
):
    def die(*args, **kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr(firing_batch, "outbox_sent_record", die)
    with pytest.raises(SystemExit):
        _sweep(LATE)
    monkeypatch.undo()
    assert len(fake_slack.posts()) == len(overdue)  # posted, nothing settled
    assert Escalation.objects.filter(state=EscalationState.FIRING).count() == len(overdue)
    assert _sweep(LATE + timedelta(seconds=5)).handled == 0  # their claims hold
    lease_over = LATE + timedelta(seconds=settings.ESCALATION_CLAIM_LEASE_SECONDS + 1)
    assert _sweep(lease_over).handled == len(overdue)  # taken over, but waiting: they may have landed
    assert Escalation.objects.filter(state=EscalationState.FIRED).count() == 0
    landed = lease_over + timedelta(seconds=settings.SLACK_AMBIGUOUS_WAIT_SECONDS + 60)
    assert _sweep(landed).outcomes == {FireOutcome.FIRED: len(overdue)}
    assert len(fake_slack.posts()) == len(overdue)  # looked for and found, none posted twice


def test_a_claim_lost_during_the_batch_is_settled_alone_and_the_others_fire(overdue, fake_slack, monkeypatch):
    taken = _level1(overdue[3])
    real = firing.outbox_post_marked

    def post_then_lose_one(message):
        delivery = real(message)
        if message.key == f"ticket:{taken.ticket_id}:level:1":  # another sweeper took it over meanwhile
            Escalation.objects.filter(pk=taken.pk).update(version=taken.version + 5)
        return delivery

    monkeypatch.setattr(firing, "outbox_post_marked", post_then_lose_one)
    result = _sweep(LATE)
    assert result.outcomes == {FireOutcome.FIRED: len(overdue) - 1, FireOutcome.LOST: 1}
    assert OutboxMessage.objects.get(key=f"ticket:{taken.ticket_id}:level:1").status == OutboxStatus.SENT
    assert Escalation.objects.filter(state=EscalationState.FIRED).count() == len(overdue) - 1


def test_an_answered_ticket_in_a_batch_is_cancelled_and_the_others_fire(overdue, fake_slack):
    closed = overdue[2]
    level1 = _level1(closed)
    # Closed between the claim and the post: its claimed level is cancelled, not posted.
    Escalation.objects.filter(pk=level1.pk).update(state=EscalationState.FIRING, not_before=LATE)
    ticket_close(ticket=closed, via=TicketVia.BUTTON, actor="UBOB", at=LATE)
    result = _sweep(LATE + timedelta(seconds=1))
    assert result.outcomes == {FireOutcome.FIRED: len(overdue) - 1, FireOutcome.CANCELLED: 1}
    assert not fake_slack.posts(thread_ts=closed.slack_ts)


def test_a_database_failure_while_taking_a_batch_leaves_its_levels_due_as_they_were(
    overdue, fake_slack, monkeypatch
):
    """Claims, waits for turns and records commit together: a failure before the commit (here, while
    recording) claims nothing, so the levels fire at the next sweep, not after a claim's lease."""
    def fail(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(firing_batch, "outbox_record_new", fail)
    with pytest.raises(OperationalError):
        _sweep(LATE)
    monkeypatch.undo()
    states = set(Escalation.objects.filter(level=1).values_list("state", flat=True))
    assert states == {EscalationState.PENDING}
    assert not OutboxMessage.objects.exists() and not fake_slack.posts()
    assert _sweep(LATE + timedelta(seconds=2)).outcomes == {FireOutcome.FIRED: len(overdue)}
