"""When a ticket's levels fall due and when it breaches: one computation for arming and the preview.

Each level counts its delay from the opening on the policy's clock, except a
step marked ``outside_hours``, which counts calendar time even under a business
clock. The breach time is the first-response target on the policy's clock.
``sla_plan`` is pure; ``tier_sla_plan`` first reads the tier's hours (only
for a business clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from escalation.clock import CALENDAR, Clock, ClockKind, clock_for
from escalation.models import TicketSla
from escalation.policy import Ladder, LevelPlan, PolicySnapshot
from tickets.hours import OpenHours
from tickets.models import Tier
from tickets.tier_hours import tier_open_hours


@dataclass(frozen=True)
class LevelDue:
    plan: LevelPlan
    due_at: datetime


@dataclass(frozen=True)
class SlaPlan:
    clock: Clock
    breach_at: datetime | None
    levels: tuple[LevelDue, ...]


def level_clock(clock: Clock, *, outside_hours: bool) -> Clock:
    """The clock one level counts on."""
    return CALENDAR if outside_hours else clock


def ladder_plan(*, levels: tuple[LevelPlan, ...], target: timedelta | None, clock: Clock,
                start: datetime) -> SlaPlan:
    """Due times and breach time of a ladder whose clock starts at ``start`` (pure)."""
    due = tuple(
        LevelDue(plan, level_clock(clock, outside_hours=plan.outside_hours).add(start, plan.delay))
        for plan in levels
    )
    breach_at = clock.add(start, target) if target is not None else None
    return SlaPlan(clock=clock, breach_at=breach_at, levels=due)


def sla_plan(*, snapshot: PolicySnapshot, opened_at: datetime, hours: OpenHours | None) -> SlaPlan:
    """Due times and breach time for a ticket opened at ``opened_at`` (``hours``: the tier's,
    needed for a business clock only)."""
    clock = clock_for(kind=snapshot.clock, hours=hours)
    return ladder_plan(levels=snapshot.levels, target=snapshot.target, clock=clock, start=opened_at)


def next_response_plan(*, ladder: Ladder, clock: Clock, started_at: datetime) -> SlaPlan:
    """A next-response cycle started by a customer's message at ``started_at``: the same
    arithmetic as the first response, from that message (arming of a cycle and replays)."""
    return ladder_plan(levels=ladder.levels, target=ladder.target, clock=clock, start=started_at)


def pause_remaining(*, clock: Clock, due_at: datetime, paused_at: datetime, outside_hours: bool = False
                    ) -> timedelta:
    """What a level (or a target) due at ``due_at`` still had to wait when the clock stopped at
    ``paused_at``, on its own clock; nothing if it was already due (pure: pauses and replays)."""
    return max(level_clock(clock, outside_hours=outside_hours).between(paused_at, due_at), timedelta(0))


def resume_due(*, clock: Clock, remaining: timedelta, resumed_at: datetime, outside_hours: bool = False
               ) -> datetime:
    """When a paused level (or target) is due again: its remaining time after the resume."""
    return level_clock(clock, outside_hours=outside_hours).add(resumed_at, remaining)


def tier_sla_plan(*, snapshot: PolicySnapshot, tier: Tier, opened_at: datetime) -> SlaPlan:
    """``sla_plan`` with the tier's hours around ``opened_at`` (what arming and the preview use)."""
    hours = tier_open_hours(tier, around=opened_at) if snapshot.clock == ClockKind.BUSINESS else None
    return sla_plan(snapshot=snapshot, opened_at=opened_at, hours=hours)


def ticket_clock(sla: TicketSla | None, *, tier: Tier, now: datetime) -> Clock:
    """A ticket's clock with the tier's hours as they are now: a schedule or holiday edited
    after arming applies to snoozes (and later pauses) from then on."""
    if sla is None or sla.clock != ClockKind.BUSINESS:
        return CALENDAR
    return clock_for(kind=sla.clock, hours=tier_open_hours(tier, around=now))


def ticket_armed_clock(sla: TicketSla) -> Clock:
    """A ticket's clock with the hours it was armed with (``TicketSla.hours``): for measuring
    its open time afterwards (reports, replays) without depending on later edits."""
    hours = OpenHours.from_json(sla.hours) if sla.clock == ClockKind.BUSINESS and sla.hours else None
    return clock_for(kind=sla.clock, hours=hours)
