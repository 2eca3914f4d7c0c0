"""Levels of one channel take turns (escalation/pacing.py): a level whose channel is busy asks just
before its post, is released and holds no worker; it is pending until its turn, with a task for
then, and posts at it in the order it asked. The sweeper's levels do the same."""

import time
from datetime import timedelta

import pytest
import time_machine

from base.channel_pacing import ChannelState, PaceRule, turn_decide, turn_done
from escalation import pacing
from escalation.arming import ticket_arm
from escalation.outcomes import FireOutcome
from escalation.sweeping import escalations_sweep
from escalation.transitions import EscalationState
from tests.support.engine import fire, rows
from tests.support.times import T0

DUE = T0 + timedelta(minutes=10)  # level 1 of the ladder
ONE_A_SECOND = PaceRule(interval=1.0, burst=1)


@pytest.fixture
def turns(monkeypatch):
    """The shared store of turns, in memory: the same decision (turn_decide) Redis makes."""
    channels: dict[str, ChannelState] = {}
    asked: list[str] = []

    def channel_turn(*, channel, key, now=None):
        turn = turn_decide(channels.get(channel, ChannelState()), key=key,
                           now=time.time() if now is None else now, rule=ONE_A_SECOND)
        channels[channel] = turn.state
        asked.append(key)
        return turn.wait

    monkeypatch.setattr(pacing, "channel_turn", channel_turn)
    monkeypatch.setattr(pacing, "channel_turns", lambda posts, now=None: [
        channel_turn(channel=channel, key=key, now=now) for channel, key in posts])

    def channel_turn_done(*, channel, key):
        channels[channel] = turn_done(channels.get(channel, ChannelState()), key=key)

    monkeypatch.setattr(pacing, "channel_turn_done", channel_turn_done)
    return asked


def _level1s(tickets):
    return [rows(ticket)[0] for ticket in tickets]


def test_a_busy_channel_makes_a_level_wait_for_its_turn_then_it_posts(
    make_ticket, engineers, thread_in, fake_slack, turns, django_capture_on_commit_callbacks
):
    tickets = [thread_in(make_ticket(slack_ts=f"1700000000.00000{i}")) for i in range(3)]
    for ticket in tickets:
        ticket_arm(ticket=ticket, now=T0)
    first, second, third = _level1s(tickets)
    assert fire(first, at=DUE) == FireOutcome.FIRED
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert fire(second, at=DUE) == FireOutcome.PACED
        assert fire(third, at=DUE) == FireOutcome.PACED
    assert len(queued) == 2  # a task for each turn
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.state == third.state == EscalationState.PENDING  # released: nothing held
    assert (second.not_before, third.not_before) == (DUE + timedelta(seconds=1), DUE + timedelta(seconds=2))
    assert second.last_error == pacing.WAIT_ERROR and second.celery_task_id
    assert second.attempts == third.attempts == 0  # a wait for the turn is not a failed attempt
    assert len(fake_slack.calls("chat.postMessage")) == 1  # nothing sent for them yet
    assert fire(second, at=DUE + timedelta(seconds=0.5)) == FireOutcome.EARLY  # before its turn
    assert fire(third, at=DUE + timedelta(seconds=1)) == FireOutcome.EARLY  # the second's turn, not its own
    assert fire(second, at=DUE + timedelta(seconds=1)) == FireOutcome.FIRED
    assert fire(third, at=DUE + timedelta(seconds=2)) == FireOutcome.FIRED
    posted = [c.args["thread_ts"] for c in fake_slack.calls("chat.postMessage") if c.status == 200]
    assert posted == [t.slack_ts for t in tickets]  # each level once, in the order they fell due


def test_the_sweeper_leaves_a_level_waiting_for_its_turn_and_posts_it_then(
    make_ticket, engineers, thread_in, fake_slack, turns, django_capture_on_commit_callbacks
):
    tickets = [thread_in(make_ticket(slack_ts=f"1700000000.00010{i}")) for i in range(2)]
    for ticket in tickets:
        ticket_arm(ticket=ticket, now=T0)
    late = DUE + timedelta(minutes=1)
    with time_machine.travel(late, tick=False), django_capture_on_commit_callbacks(execute=True):
        result = escalations_sweep(now=late, limit=10)
    assert result.outcomes == {FireOutcome.FIRED: 1, FireOutcome.PACED: 1}
    fired, waiting = sorted(_level1s(tickets), key=lambda r: r.state != EscalationState.FIRED)
    assert (fired.state, waiting.state) == (EscalationState.FIRED, EscalationState.PENDING)
    assert waiting.not_before == late + timedelta(seconds=1)
    # The next sweep before its turn leaves it alone; at its turn it posts.
    with time_machine.travel(late + timedelta(seconds=0.5), tick=False):
        assert escalations_sweep(now=late + timedelta(seconds=0.5)).handled == 0
    turn = late + timedelta(seconds=1)
    with time_machine.travel(turn, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert escalations_sweep(now=turn).outcomes == {FireOutcome.FIRED: 1}
    assert len(fake_slack.posts(channel="CSUPPORT1")) == 2
    assert turns.count(f"ticket:{waiting.ticket_id}:level:1") == 2  # asked, then took its held turn


def test_a_post_refused_with_a_429_keeps_its_turn_and_is_not_overtaken(
    make_ticket, engineers, thread_in, fake_slack, turns
):
    tickets = [thread_in(make_ticket(slack_ts=f"1700000000.00030{i}")) for i in range(2)]
    for ticket in tickets:
        ticket_arm(ticket=ticket, now=T0)
    first, second = _level1s(tickets)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=2)
    assert fire(first, at=DUE) == FireOutcome.RATE_LIMITED
    assert fire(second, at=DUE) == FireOutcome.PACED  # its turn is a second later
    # At its turn the refused first has not gone yet: the second waits for it.
    assert fire(second, at=DUE + timedelta(seconds=1)) == FireOutcome.PACED
    first.refresh_from_db()
    assert first.not_before == DUE + timedelta(seconds=2)  # Slack's Retry-After
    assert fire(first, at=first.not_before) == FireOutcome.FIRED
    assert fire(second, at=first.not_before + timedelta(seconds=0.3)) == FireOutcome.FIRED
    posted = [c.args["thread_ts"] for c in fake_slack.calls("chat.postMessage") if c.status == 200]
    assert posted == [t.slack_ts for t in tickets]
