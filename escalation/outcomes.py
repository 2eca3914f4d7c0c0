"""What one attempt to fire a level did (returned by the engine, counted by the sweeper)."""

from __future__ import annotations

import enum


class FireOutcome(enum.StrEnum):
    FIRED = "fired"  # posted in the thread (or found there, posted by an earlier attempt)
    STALE = "stale"  # the task's version is old, or the ticket is no longer armed
    EARLY = "early"  # not due yet: queued again for the right time
    LOST = "lost"  # another task or sweeper claimed it first
    RESPONDED = "responded"  # the helpdesk reported a first reply just before firing
    CANCELLED = "cancelled"  # claimed, then found the ticket answered
    RATE_LIMITED = "rate_limited"  # Slack said 429: pending again after Retry-After
    PACED = "paced"  # its channel's turn is later (base/channel_pacing.py): queued for then
    RETRY = "retry"  # Slack failed ambiguously: pending again after a backoff
    FAILED = "failed"  # permanent Slack error: recorded, not retried
    MISSING = "missing"  # no such level
    OVERDUE = "overdue"  # long past due: left to the sweeper's batches with the other overdue levels
