"""Posts take turns per channel: the decision (pure), and the same decision in Redis, shared by workers."""

import uuid

import pytest
import redis

from base.channel_pacing import (
    ABANDONED_SECONDS,
    BEHIND_SECONDS,
    BURST_SPACING_SECONDS,
    EARLY_SECONDS,
    ChannelState,
    PaceRule,
    channel_turn,
    channel_turn_done,
    channel_turns,
    turn_decide,
    turn_done,
)

RULE = PaceRule(interval=1.0, burst=2)


def ask(state, keys, *, now, rule=RULE, post=True):
    """Ask for turns; with ``post``, the ones told to go are sent at once (``turn_done``)."""
    waits = {}
    for key in keys:
        turn = turn_decide(state, key=key, now=now, rule=rule)
        waits[key], state = turn.wait, turn.state
        if post and turn.wait == 0:
            state = turn_done(state, key=key)
    return waits, state


def test_a_burst_goes_at_once_and_the_rest_one_interval_apart():
    waits, state = ask(ChannelState(), [f"k{i}" for i in range(6)], now=100.0)
    assert waits == {"k0": 0.0, "k1": 0.0, "k2": 1.0, "k3": 2.0, "k4": 3.0, "k5": 4.0}
    assert state.held == {"k2": 101.0, "k3": 102.0, "k4": 103.0, "k5": 104.0}


def test_a_post_that_goes_holds_its_turn_until_it_has_gone():
    """A worker slow to send a post whose turn came does not let the next turn overtake it."""
    rule = PaceRule(interval=1.2, burst=3, spacing=0.5)
    first = turn_decide(ChannelState(), key="a", now=0.0, rule=rule)
    assert first.wait == 0.0 and first.state.held == {"a": 0.0}  # going, not gone yet
    second = turn_decide(first.state, key="b", now=0.0, rule=rule)
    assert second.wait == pytest.approx(0.5)
    # b comes back at its slot while a is still being sent: b waits for it.
    behind = turn_decide(second.state, key="b", now=0.6, rule=rule)
    assert behind.wait == BEHIND_SECONDS
    # A new post whose slot is now waits as well, keeping its slot.
    third = turn_decide(second.state, key="c", now=1.1, rule=rule)
    assert third.wait == BEHIND_SECONDS and third.state.held["c"] == pytest.approx(1.1)
    sent = turn_done(third.state, key="a")
    assert turn_decide(sent, key="b", now=1.2, rule=rule).wait == 0.0
    # A post never reported gone is given up for lost after a while.
    assert turn_decide(third.state, key="b", now=ABANDONED_SECONDS + 0.1, rule=rule).wait == 0.0


def test_turns_are_given_in_the_order_asked():
    keys = [f"level{i}" for i in range(10)]
    waits, _ = ask(ChannelState(), keys, now=0.0)
    assert sorted(keys, key=lambda k: waits[k]) == keys
    later = list(waits.values())[RULE.burst - 1:]
    assert len(set(later)) == len(later)  # past the burst, no two share a slot


def test_a_waiting_post_keeps_its_slot_and_goes_at_it():
    _, state = ask(ChannelState(), ["a", "b", "c"], now=0.0)
    # Others ask meanwhile; c comes back at its slot (1.0) and goes, ahead of them.
    _, state = ask(state, ["d", "e"], now=0.5)
    early = turn_decide(state, key="c", now=0.5, rule=RULE)
    assert early.wait == pytest.approx(0.5)  # too early: still waits, for the same slot
    back = turn_decide(early.state, key="c", now=1.0 - EARLY_SECONDS / 2, rule=RULE)
    assert back.wait == 0.0
    assert turn_done(back.state, key="c").held == {"d": 2.0, "e": 3.0}


ONE_A_SECOND = PaceRule(interval=1.0, burst=1)


def test_a_turn_that_has_come_lets_an_earlier_slot_go_first():
    _, state = ask(ChannelState(), ["a", "b", "c", "d"], now=0.0, rule=ONE_A_SECOND)  # b 1, c 2, d 3
    # b's task is late; c comes back at its own turn first: it waits for b.
    behind = turn_decide(state, key="c", now=2.0, rule=ONE_A_SECOND)
    assert behind.wait == BEHIND_SECONDS and behind.state == state
    b = turn_decide(state, key="b", now=2.1, rule=ONE_A_SECOND)
    assert b.wait == 0.0
    assert turn_decide(b.state, key="c", now=2.2, rule=ONE_A_SECOND).wait == BEHIND_SECONDS  # b on its way
    assert turn_decide(turn_done(b.state, key="b"), key="c", now=2.2, rule=ONE_A_SECOND).wait == 0.0


def test_a_slot_long_past_is_given_up_for_lost():
    _, state = ask(ChannelState(), ["a", "b", "c"], now=0.0, rule=ONE_A_SECOND)  # b never comes back
    assert turn_decide(state, key="c", now=2.0 + ABANDONED_SECONDS, rule=ONE_A_SECOND).wait == 0.0


def test_a_quiet_channel_refills_its_burst():
    _, state = ask(ChannelState(), ["a", "b", "c"], now=0.0)
    waits, _ = ask(state, ["x", "y"], now=60.0)
    assert waits == {"x": 0.0, "y": 0.0}


SPACED = PaceRule(interval=1.2, burst=3, spacing=0.5)


def test_posts_of_a_burst_go_spacing_apart_then_one_interval_apart():
    waits, state = ask(ChannelState(), [f"k{i}" for i in range(6)], now=0.0, rule=SPACED)
    # 0, 0.5, 1.0 within the burst; k3 would be due at 1.2 by the bucket but keeps the spacing.
    assert waits == pytest.approx({"k0": 0.0, "k1": 0.5, "k2": 1.0, "k3": 1.5, "k4": 2.4, "k5": 3.6})
    assert sorted(waits, key=waits.get) == [f"k{i}" for i in range(6)]


def test_two_levels_due_together_both_go_within_the_spacing():
    waits, _ = ask(ChannelState(), ["a", "b"], now=50.0, rule=SPACED)
    assert waits == {"a": 0.0, "b": 0.5}
    # The bucket refills meanwhile: a pair a few seconds later does the same (b having come back
    # at its turn and gone).
    _, state = ask(ChannelState(), ["a", "b"], now=50.0, rule=SPACED)
    _, state = ask(state, ["b"], now=50.5, rule=SPACED)
    later, _ = ask(state, ["c", "d"], now=55.0, rule=SPACED)
    assert later == {"c": 0.0, "d": 0.5}


def test_spacing_never_lets_posts_closer_than_the_bucket():
    for burst in (1, 2, 3, 5):
        rule = PaceRule(interval=1.2, burst=burst, spacing=0.5)
        waits, _ = ask(ChannelState(), [f"k{i}" for i in range(20)], now=0.0, rule=rule)
        slots = sorted(waits.values())
        assert all(b - a >= 0.5 - 1e-9 for a, b in zip(slots, slots[1:], strict=False))
        # Over any window, no more than the bucket allows: burst + window / interval.
        assert slots[-1] >= (20 - burst) * 1.2 - 1e-9


def test_channels_do_not_share_turns():
    first, _ = ask(ChannelState(), ["a", "b", "c"], now=0.0)
    other, _ = ask(ChannelState(), ["a", "b", "c"], now=0.0)
    assert first == other == {"a": 0.0, "b": 0.0, "c": 1.0}


@pytest.fixture
def redis_pacing(settings):
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("the shared pacing state lives in the Redis broker (PostgreSQL + Redis run)")
    settings.SLACK_CHANNEL_PACING = True
    settings.SLACK_CHANNEL_POSTS_PER_MINUTE = 60
    settings.SLACK_CHANNEL_POST_BURST = 2
    channel = f"CPACE{uuid.uuid4().hex[:8]}"
    yield channel
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*(f"slabuddy:pace:{channel}:{part}" for part in ("free_at", "held", "last")))


def test_redis_gives_the_same_turns_as_the_decision(redis_pacing):
    rule = PaceRule(interval=1.0, burst=2, spacing=BURST_SPACING_SECONDS)
    now = 1_800_000_000.0
    # (key, when it asks) or (key, None): its post has gone.
    sequence = [("a", now), ("b", now), ("c", now), ("d", now + 0.3), ("c", now + 0.5), ("d", now + 2.0),
                ("b", now + 0.55), ("a", None), ("b", now + 0.6), ("c", now + 1.0), ("b", None),
                ("c", now + 1.05), ("c", None), ("e", now + 1.2), ("d", now + 2.0), ("d", None),
                ("f", now + 9.0), ("f", None), ("g", now + 9.0), ("e", now + 30.0), ("h", now + 30.0)]
    state = ChannelState()
    for key, at in sequence:
        if at is None:
            state = turn_done(state, key=key)
            channel_turn_done(channel=redis_pacing, key=key)
            continue
        expected = turn_decide(state, key=key, now=at, rule=rule)
        state = expected.state
        wait = channel_turn(channel=redis_pacing, key=key, now=at)
        assert wait == pytest.approx(expected.wait, abs=1e-5), (key, at - now)


def test_turns_asked_together_in_redis_are_the_decisions_in_the_order_given(redis_pacing, settings):
    """A batch of levels asks in one round trip (a pipeline): the same turns as one by one."""
    rule = PaceRule(interval=1.0, burst=2, spacing=BURST_SPACING_SECONDS)
    now = 1_800_000_000.0
    other = redis_pacing + "x"
    posts = [(redis_pacing, "a"), (other, "a"), (redis_pacing, "b"), (redis_pacing, "c"), (other, "b"),
             (redis_pacing, "d")]
    states: dict[str, ChannelState] = {}
    expected = []
    for channel, key in posts:
        turn = turn_decide(states.get(channel, ChannelState()), key=key, now=now, rule=rule)
        states[channel] = turn.state
        expected.append(turn.wait)
    try:
        assert channel_turns(posts, now=now) == pytest.approx(expected, abs=1e-5)
        assert 0 < expected[2] < expected[3] < expected[5]  # the channel's later posts wait, in order
        # Coming back at their slots once the first has gone, each goes at the slot it was given.
        channel_turn_done(channel=redis_pacing, key="a")
        assert channel_turns([(redis_pacing, "b")], now=now + expected[2]) == [0.0]
        channel_turn_done(channel=redis_pacing, key="b")
        assert channel_turns([(redis_pacing, "c")], now=now + expected[3]) == [0.0]
    finally:
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(
            *(f"slabuddy:pace:{other}:{part}" for part in ("free_at", "held", "last")))


def test_one_post_asks_its_turn_in_one_round_trip(redis_pacing, monkeypatch):
    """A level on time asks right before its post: one EVALSHA, not a pipeline's SCRIPT EXISTS first."""
    channel_turn(channel=redis_pacing, key="warm")  # the script is loaded once per Redis server
    sent = []
    send = redis.connection.AbstractConnection.send_packed_command
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command",
                        lambda self, command, *a, **k: sent.append(command) or send(self, command, *a, **k))
    assert channel_turn(channel=redis_pacing, key="a") > 0  # "warm" has the channel's first slot
    assert len(sent) == 1
    sent.clear()
    assert len(channel_turns([(redis_pacing, "b"), (redis_pacing, "c")])) == 2
    assert len(sent) == 2  # a batch: SCRIPT EXISTS, then the pipeline at once


def test_without_a_redis_broker_pacing_is_off(settings):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.SLACK_CHANNEL_PACING = True
    assert [channel_turn(channel="C1", key=f"k{i}") for i in range(5)] == [0.0] * 5
    assert channel_turns([("C1", f"k{i}") for i in range(5)]) == [0.0] * 5


def test_turns_fail_open_when_redis_cannot_be_reached(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.SLACK_CHANNEL_PACING = True
    assert channel_turns([("C1", "k1"), ("C1", "k2")]) == [0.0, 0.0]
