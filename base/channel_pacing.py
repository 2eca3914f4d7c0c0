"""Pacing posts per Slack channel: take turns instead of hammering into 429s.

Slack accepts about one message per second per channel, with short bursts, and
answers 429 beyond that. After an outage thousands of levels can fall due at
once, many in the same channel. Rather than post them all and collect 429s
(each a wasted call and a retry), every post asks for its channel's turn
first: ``channel_turn`` answers "go" or "wait this long". A caller told to
wait does not sleep: it re-queues its work with that countdown and comes back
at its turn, holding no worker process or thread meanwhile.

The arithmetic is GCRA (a token bucket kept as one time per channel, "the
channel is free again at"), in the pure function ``turn_decide``. Posts of a
burst are still ``spacing`` apart (half a second by default): two levels of a
channel due at the same moment both go within a second instead of one waiting
a whole interval, and the first has a head start that keeps them in order. A post told
to wait keeps the slot it was given (``held``, by its key), so when it comes
back it goes at once rather than queueing behind posts that asked later, and
not before the earlier-slotted posts of its channel (a task may come back
late). A post that goes holds its slot too, until it has been sent
(``channel_turn_done``): a worker slow to send it does not let a later turn
overtake it. So the order of posts is the order of asking, which is due order
when levels are fired in due order (the horizon job, the reconnect re-queue and
the sweeper's batches, claimed one after another, take them in due order).

The state is shared by every worker: on Redis (the broker's database, one Lua
script per decision, atomic), so several workers on several hosts agree. With
the embedded filesystem broker (one machine, ``make run``) there is no shared
store and pacing is off: Slack's 429 with Retry-After is still honoured by
rescheduling.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field, replace

import redis
from django.conf import settings

logger = logging.getLogger("slabuddy.pacing")

# A turn that is this close counts as now: a re-queued task comes back a few ms after its slot.
EARLY_SECONDS = 0.05
# A post whose turn has come still lets an earlier-slotted one of its channel go first (a task can
# come back late on a busy worker): it looks again this much later. A held slot this far past is
# given up for lost (its level was answered, or its task lost: the sweeper asks anew).
BEHIND_SECONDS = 0.2
ABANDONED_SECONDS = 10.0
# Even inside a burst, turns are this far apart: the earlier post is on its way before the next goes.
BURST_SPACING_SECONDS = 0.5
KEY_PREFIX = "slabuddy:pace:"


@dataclass(frozen=True)
class PaceRule:
    """``interval`` seconds between posts to one channel on average, ``burst`` of them close
    together, but never closer than ``spacing``."""

    interval: float
    burst: int
    spacing: float = 0.0

    @property
    def tolerance(self) -> float:
        return max(self.burst - 1, 0) * self.interval


@dataclass(frozen=True)
class ChannelState:
    free_at: float | None = None  # GCRA's theoretical arrival time: the channel is free again then
    held: dict[str, float] = field(default_factory=dict)  # key: the slot of a post not yet gone
    last_slot: float | None = None  # the latest slot handed out: the next is ``spacing`` after it


@dataclass(frozen=True)
class Turn:
    wait: float  # 0: post now; else come back after this many seconds
    state: ChannelState


def turn_decide(state: ChannelState, *, key: str, now: float, rule: PaceRule) -> Turn:
    """Whether the post ``key`` may go to the channel now, and the channel's state after.

    A key that was given a slot before keeps it; a new key gets the next free slot, which is
    now while the burst allows it. Either way the slot stays held while the post is on its
    way, until ``turn_done``: a later-slotted post of the channel whose turn has come waits
    for it (``BEHIND_SECONDS`` at a time), so posts leave in the order of their turns even
    when the earlier one's worker is slow to send it."""
    if key in state.held:
        return Turn(_wait_for_slot(state, key=key, slot=state.held[key], now=now), state)
    free_at = max(state.free_at if state.free_at is not None else now, now)
    slot = max(now, free_at - rule.tolerance)
    if state.last_slot is not None:
        slot = max(slot, state.last_slot + rule.spacing)
    after = replace(state, free_at=free_at + rule.interval, last_slot=slot, held={**state.held, key: slot})
    return Turn(_wait_for_slot(after, key=key, slot=slot, now=now), after)


def _wait_for_slot(state: ChannelState, *, key: str, slot: float, now: float) -> float:
    """How long the post ``key``, holding ``slot``, waits: until its slot, then while an earlier
    turn of this channel has not gone yet (``BEHIND_SECONDS`` at a time), else not at all."""
    if slot > now + EARLY_SECONDS:
        return slot - now
    if _earlier_held(state, key=key, slot=slot, now=now):
        return BEHIND_SECONDS
    return 0.0


def turn_done(state: ChannelState, *, key: str) -> ChannelState:
    """The post ``key`` has gone (or will not go): its slot no longer holds the channel's later turns."""
    return replace(state, held={k: v for k, v in state.held.items() if k != key})


def _earlier_held(state: ChannelState, *, key: str, slot: float, now: float) -> bool:
    """Another post of the channel holds an earlier slot, neither gone nor given up for lost."""
    return any(now - ABANDONED_SECONDS < other < slot for k, other in state.held.items() if k != key)


# The same decision, atomically in Redis: KEYS[1] the channel's free-at time, KEYS[2] the hash of
# held slots, KEYS[3] the latest slot given; ARGV key, now, interval, tolerance, early, behind,
# abandoned, spacing. Numbers go back as strings (Redis would truncate a Lua number to an integer).
_TURN_SCRIPT = """
local key, now = ARGV[1], tonumber(ARGV[2])
local interval, tolerance, early = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local behind, abandoned, spacing = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local function earlier_held(slot)
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local other = tonumber(all[i + 1])
    if all[i] ~= key and other < slot and other > now - abandoned then
      return true
    end
  end
  return false
end
local function wait_for_slot(slot)
  if slot > now + early then
    return string.format('%.6f', slot - now)
  end
  if earlier_held(slot) then
    return string.format('%.6f', behind)
  end
  return '0'
end
local held = redis.call('HGET', KEYS[2], key)
if held then
  return wait_for_slot(tonumber(held))
end
local free_at = tonumber(redis.call('GET', KEYS[1]) or now)
if free_at < now then free_at = now end
local slot = free_at - tolerance
if slot < now then slot = now end
local last = tonumber(redis.call('GET', KEYS[3]) or '')
if last and slot < last + spacing then slot = last + spacing end
local ttl = math.ceil(math.max(free_at + interval, slot) - now) + 120
redis.call('SET', KEYS[1], string.format('%.6f', free_at + interval), 'EX', ttl)
redis.call('SET', KEYS[3], string.format('%.6f', slot), 'EX', ttl)
redis.call('HSET', KEYS[2], key, string.format('%.6f', slot))
redis.call('EXPIRE', KEYS[2], ttl)
return wait_for_slot(slot)
"""


def pace_rule() -> PaceRule:
    interval = 60.0 / settings.SLACK_CHANNEL_POSTS_PER_MINUTE
    return PaceRule(interval=interval, burst=settings.SLACK_CHANNEL_POST_BURST,
                    spacing=min(BURST_SPACING_SECONDS, interval))


def pacing_enabled() -> bool:
    return settings.SLACK_CHANNEL_PACING and settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


@functools.cache
def _redis(url: str):
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client, client.register_script(_TURN_SCRIPT)


def channel_turn(*, channel: str, key: str, now: float | None = None) -> float:
    """Seconds the post ``key`` must wait for its turn in ``channel`` (0: post now).

    Fails open: if the shared store cannot be reached the post goes (Slack's own limit, a
    429 with Retry-After, still applies and is honoured)."""
    return channel_turns([(channel, key)], now=now)[0]


def channel_turns(posts: list[tuple[str, str]], *, now: float | None = None) -> list[float]:
    """``channel_turn`` for several posts (channel, key) in one Redis round trip, asked in the
    order given (so a channel's turns follow that order), each decision atomic as one alone.
    Fails open like ``channel_turn``: every post may go."""
    if not posts or not pacing_enabled():
        return [0.0] * len(posts)
    rule = pace_rule()
    client, script = _redis(settings.CELERY_BROKER_URL)
    args = [f"{time.time() if now is None else now:.6f}", rule.interval, rule.tolerance, EARLY_SECONDS,
            BEHIND_SECONDS, ABANDONED_SECONDS, rule.spacing]
    try:
        if len(posts) == 1:  # EVALSHA alone: a pipeline asks SCRIPT EXISTS first, a round trip more
            (channel, key), = posts
            answers = [script(keys=_turn_keys(channel), args=[key, *args])]
        else:
            pipe = client.pipeline(transaction=False)
            for channel, key in posts:
                script(keys=_turn_keys(channel), args=[key, *args], client=pipe)
            answers = pipe.execute()
    except Exception:  # redis.RedisError, or a connection refused: fail open
        logger.warning("channel pacing unavailable; posting without it", exc_info=True)
        return [0.0] * len(posts)
    return [max(float(answer), 0.0) for answer in answers]


def _turn_keys(channel: str) -> list[str]:
    return [f"{KEY_PREFIX}{channel}:{part}" for part in ("free_at", "held", "last")]


def channel_turn_done(*, channel: str, key: str) -> None:
    """The post ``key`` has gone, or will not go (``turn_done``); never raises."""
    if not pacing_enabled():
        return
    client, _ = _redis(settings.CELERY_BROKER_URL)
    try:
        client.hdel(f"{KEY_PREFIX}{channel}:held", key)
    except Exception:  # its slot is given up for lost after ABANDONED_SECONDS anyway
        logger.warning("channel pacing unavailable; a finished turn is left to expire", exc_info=True)
