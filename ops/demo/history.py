"""A realistic past month for demo mode, so the report and replay pages have something to show on a
fresh ``make run``; and the same generator, with other channels and sizes, for bench/replay.py.

Each past ticket gets a plausible life (answered quickly or late, closed without a reply, waiting on
the customer, snoozed, a customer who writes again, a reopening, a few never answered) as moments,
and is then played through the engine's own rules (``reports.replay.simulate.ticket_replay_run``:
the engine's planning, clock, late-pickup folding, snooze, pause and resume arithmetic and target
resolution against the roster as it was) under the policy arming would give it. What that run
would have written (the ticket, its SLA snapshot, cycles, level rows, waits, snoozes and timeline)
is bulk-inserted. So the identical-policy replay of the month equals the history exactly.

Demo data is marked: its channels are ``demo-history-*`` (inactive, so nothing scans them), every
ticket's text starts with ``[demo history]`` and its timeline opens with a note saying so.
``demo_history_seed`` refuses to run outside demo mode.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from calendars.models import Engineer, OverrideKind, Role, RosterOverride
from calendars.resolve import RosterHistory
from calendars.targets import TargetKind
from escalation.clock import BusinessClock, ClockKind
from escalation.models import (
    CycleKind,
    Escalation,
    EscalationStep,
    NextResponseStep,
    SlaPolicy,
    SnoozeRequest,
    TicketCycle,
    TicketPause,
    TicketSla,
)
from escalation.policy import PolicySnapshot, policy_for, policy_snapshot
from escalation.transitions import EscalationState
from ops.demo.setup import ALICE, BOB, CAROL, DemoPerson
from reports.replay.script import Moment, Step, TicketScript
from reports.replay.simulate import ReplayRun, ticket_replay_run
from tickets.models import (
    IntakeMode,
    Priority,
    ResponsePath,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketState,
    TicketVia,
    Tier,
    WatchedChannel,
)
from tickets.tier_hours import tier_open_hours

MARK = "[demo history]"
DEMO_HISTORY_DAYS = 30
DEMO_HISTORY_TICKETS = 360
DAN = DemoPerson("UDEMODAN01", "Dan (demo)", Role.SUPPORT_ENGINEER)
ERIN = DemoPerson("UDEMOERIN1", "Erin (demo)", Role.SUPPORT_ENGINEER)
CUSTOMERS = ("UDEMOCUST1", "UDEMOCUST2", "UDEMOCUST3", "UDEMOCUST4")
RESPONDERS = (ALICE.slack_user_id, DAN.slack_user_id, ERIN.slack_user_id, BOB.slack_user_id)


class DemoOnly(RuntimeError):
    """The demo's past month is never created outside demo mode."""


class DemoHistoryError(RuntimeError):
    pass


# --- the demo's tiers, channels and roster history -------------------------------------------------


def _steps(policy: SlaPolicy, model, ladder) -> None:
    for level, (delay, kind) in enumerate(ladder, start=1):
        model.objects.get_or_create(
            policy=policy,
            level=level,
            defaults={
                "delay": delay,
                "target_kind": kind,
                "target_ref": "SDEMOGROUP" if kind == TargetKind.USER_GROUP else "",
            },
        )


LADDER = (
    TargetKind.ON_SHIFT_NOT_EMBEDDED,
    TargetKind.ON_SHIFT,
    TargetKind.USER_GROUP,
    TargetKind.HEAD_OF_SUCCESS,
)


def demo_history_tiers() -> list[WatchedChannel]:
    """Demo Enterprise (24/7, minutes) and Demo Teams (Berlin business hours, hours), with one
    inactive channel each."""
    minutes, hours = (lambda m: timedelta(minutes=m)), (lambda h: timedelta(hours=h))
    enterprise, _ = Tier.objects.get_or_create(
        name="Demo Enterprise",
        defaults={
            "description": "Demo mode: the seeded past month. Escalates around the clock (calendar clock); "
            "its business hours tell which pages were outside them.",
            "business_hours": {"mon-fri": ["08:00-18:00"]},
        },
    )
    default, _ = SlaPolicy.objects.get_or_create(
        tier=enterprise,
        priority="",
        defaults={"name": "Demo Enterprise default", "next_response_target": minutes(20)},
    )
    _steps(default, EscalationStep, zip(map(minutes, (10, 20, 35, 50)), LADDER, strict=True))
    _steps(
        default,
        NextResponseStep,
        zip(map(minutes, (15, 30)), (TargetKind.ON_SHIFT, TargetKind.HEAD_OF_SUCCESS), strict=True),
    )
    urgent, _ = SlaPolicy.objects.get_or_create(
        tier=enterprise,
        priority=Priority.URGENT,
        defaults={"name": "Demo Enterprise urgent", "snooze_minutes": 15},
    )
    _steps(urgent, EscalationStep, zip(map(minutes, (5, 15, 30)), LADDER[1:], strict=True))
    teams, _ = Tier.objects.get_or_create(
        name="Demo Teams",
        defaults={
            "description": "Demo mode: the seeded past month (business clock).",
            "time_zone": "Europe/Berlin",
            "business_hours": {"mon-fri": ["09:00-18:00"]},
        },
    )
    business, _ = SlaPolicy.objects.get_or_create(
        tier=teams,
        priority="",
        defaults={
            "name": "Demo Teams default",
            "clock": ClockKind.BUSINESS,
            "snooze_minutes": 60,
            "max_total_snooze": hours(2),
        },
    )
    _steps(business, EscalationStep, zip(map(hours, (1, 3, 6, 12)), LADDER, strict=True))
    acme, _ = WatchedChannel.objects.get_or_create(
        slack_channel_id="C0DEMOHIS1",
        defaults={"name": "demo-history-acme", "tier": enterprise, "active": False},
    )
    globex, _ = WatchedChannel.objects.get_or_create(
        slack_channel_id="C0DEMOHIS2",
        defaults={
            "name": "demo-history-globex",
            "tier": teams,
            "intake_mode": IntakeMode.PLAIN,
            "active": False,
        },
    )
    return [acme, globex]


def demo_roster_history(*, start: datetime, now: datetime) -> None:
    """Shifts of the past month as overrides (the demo has no shift calendar): Alice works days,
    Dan nights, Erin weekdays. From now on Dan and Erin are off shift, so the live demo's levels
    still name Alice (Bob is embedded with Storage)."""
    people = {}
    for person in (ALICE, BOB, CAROL, DAN, ERIN):
        people[person], _ = Engineer.objects.get_or_create(
            slack_user_id=person.slack_user_id, defaults={"name": person.name, "role": person.role}
        )
    overrides = []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < now:
        night = (day + timedelta(hours=20), day + timedelta(hours=32))
        overrides.append((ALICE, night))  # Alice is off at night
        overrides.append((DAN, (day + timedelta(hours=8), day + timedelta(hours=20))))  # Dan off by day
        if day.weekday() >= 5:
            overrides.append((ERIN, (day, day + timedelta(days=1))))
        day += timedelta(days=1)
    RosterOverride.objects.bulk_create(
        [
            RosterOverride(
                engineer=people[person],
                kind=OverrideKind.OFF_SHIFT,
                starts_at=begin,
                ends_at=min(end, now),
                note=f"{MARK} shift rota",
            )
            for person, (begin, end) in overrides
            if begin < now
        ]
    )
    for person in (DAN, ERIN):
        RosterOverride.objects.create(
            engineer=people[person],
            kind=OverrideKind.OFF_SHIFT,
            starts_at=now,
            note=f"{MARK} off shift from now on (the live demo names Alice)",
        )


# --- past tickets: moments, played through the engine's rules, written -----------------------------


def _opening(rng: random.Random, *, start: datetime, end: datetime) -> datetime:
    """A moment in [start, end), mostly on weekdays in office hours (UTC)."""
    while True:
        at = start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))
        busy = at.weekday() < 5 and 7 <= at.hour < 19
        if busy or rng.random() < 0.25:
            return at.replace(microsecond=0)


def _wall(snapshot: PolicySnapshot, level: int) -> timedelta:
    """A level's delay in wall time, roughly (business hours stretch it: scenarios only need a scale)."""
    plans = snapshot.levels
    delay = plans[min(level, len(plans)) - 1].delay if plans else timedelta(minutes=10)
    return delay * (2.5 if snapshot.clock == ClockKind.BUSINESS else 1)


def _moments(rng: random.Random, *, opened: datetime, snapshot: PolicySnapshot) -> list[Moment]:
    """A plausible life for a ticket: what people did, and when (the engine decides the rest)."""
    l1, l2, l3 = (_wall(snapshot, n) for n in (1, 2, 3))
    who = rng.choice(RESPONDERS)
    customer = rng.choice(CUSTOMERS)

    def after(base: datetime, low: timedelta, high: timedelta) -> datetime:
        return (base + low + (high - low) * rng.random()).replace(microsecond=0)

    roll = rng.random()
    if roll < 0.40:  # answered before level 1
        return [Moment(after(opened, timedelta(minutes=1), l1 * 0.9), Step.RESPOND, who)]
    if roll < 0.60:  # answered late, after a level or three
        return [Moment(after(opened, l1 * 1.05, l3 * 1.1), Step.RESPOND, who)]
    if roll < 0.68:  # closed without a reply
        return [Moment(after(opened, l1 * 0.5, l2 * 1.5), Step.CLOSE, who, TicketVia.REACTION)]
    if roll < 0.76:  # waiting on the customer, who writes back, then answered
        paused = after(opened, l1 * 0.2, l1 * 0.8)
        resumed = after(paused, timedelta(minutes=20), timedelta(hours=6))
        return [
            Moment(paused, Step.PAUSE, who, TicketVia.BUTTON),
            Moment(resumed, Step.RESUME, customer, TicketVia.CUSTOMER),
            Moment(after(resumed, timedelta(minutes=2), l2), Step.RESPOND, who),
        ]
    if roll < 0.84:  # snoozed by an engineer, answered after
        snoozed = after(opened, l1 * 0.3, l1 * 0.9)
        moments = [Moment(snoozed, Step.SNOOZE, who)]
        if rng.random() < 0.3:
            moments.append(Moment(after(snoozed, timedelta(minutes=5), l1), Step.SNOOZE, who))
        return moments + [Moment(after(opened, l1 * 1.2, l2 * 1.6), Step.RESPOND, who)]
    if roll < 0.93:  # answered, then the customer writes again (a next-response cycle)
        answered = after(opened, timedelta(minutes=2), l1 * 0.9)
        wrote = after(answered, timedelta(minutes=30), timedelta(hours=20))
        moments = [Moment(answered, Step.RESPOND, who), Moment(wrote, Step.CYCLE, customer)]
        if rng.random() < 0.8:
            moments.append(
                Moment(after(wrote, timedelta(minutes=3), timedelta(minutes=45)), Step.RESPOND, who)
            )
        return moments
    if roll < 0.97:  # answered, closed, reopened by the customer, answered again
        answered = after(opened, timedelta(minutes=2), l1 * 0.9)
        closed = after(answered, timedelta(minutes=30), timedelta(hours=3))
        wrote = after(closed, timedelta(hours=2), timedelta(days=2))
        return [
            Moment(answered, Step.RESPOND, who),
            Moment(closed, Step.CLOSE, who, TicketVia.HELPDESK),
            Moment(wrote, Step.CYCLE, customer),
            Moment(after(wrote, timedelta(minutes=5), timedelta(hours=1)), Step.RESPOND, who),
        ]
    return []  # never answered: every level fires


@dataclass
class _Written:
    ticket: Ticket
    snapshot: PolicySnapshot
    policy: SlaPolicy | None
    run: ReplayRun


def past_tickets_seed(
    *,
    channels: list[WatchedChannel],
    start: datetime,
    end: datetime,
    count: int,
    now: datetime,
    seed: int = 7,
    label: str = MARK,
) -> int:
    """Write ``count`` past tickets opened in [start, end) in ``channels``, each as the engine would
    have left it by ``now``. Bulk inserts; returns how many were written."""
    rng = random.Random(seed)
    roster = RosterHistory(since=start, until=now)
    hours = {c.tier_id: tier_open_hours(c.tier, around=start) for c in channels}
    chosen: dict[tuple[int, str], tuple[SlaPolicy | None, PolicySnapshot]] = {}
    written: list[_Written] = []
    used_ts: set[tuple[int, str]] = set()
    priorities = (
        Priority.LOW,
        Priority.NORMAL,
        Priority.NORMAL,
        Priority.NORMAL,
        Priority.HIGH,
        Priority.URGENT,
    )
    for number in range(count):
        channel = rng.choice(channels)
        priority = rng.choice(priorities)
        key = (channel.tier_id, priority)
        if key not in chosen:
            policy = policy_for(tier_id=channel.tier_id, priority=priority)
            chosen[key] = (policy, policy_snapshot(policy, priority=priority))
        policy, snapshot = chosen[key]
        opened = _opening(rng, start=start, end=end)
        ts = f"{opened.timestamp():.6f}"
        while (channel.pk, ts) in used_ts:
            opened += timedelta(seconds=1)
            ts = f"{opened.timestamp():.6f}"
        used_ts.add((channel.pk, ts))
        ticket = Ticket(
            channel=channel,
            slack_ts=ts,
            helpdesk_ticket_id=f"D{10000 + number}",
            priority=priority,
            ticket_type="question",
            text=f"{label} {rng.choice(SUBJECTS)}",
            author_slack_id=rng.choice(CUSTOMERS),
            opened_at=opened,
            state=TicketState.ARMED,
        )
        script = TicketScript(
            ticket=ticket,
            armed_at=opened,
            moments=[m for m in _moments(rng, opened=opened, snapshot=snapshot) if m.at < now],
        )
        tier_hours = hours[channel.tier_id] if snapshot.clock == ClockKind.BUSINESS else None
        run = ticket_replay_run(script=script, snapshot=snapshot, hours=tier_hours, history=roster, now=now)
        written.append(_Written(ticket, snapshot, policy, run))
    _write(written, label=label)
    return len(written)


SUBJECTS = (
    "Login fails with SSO",
    "Storage bucket returns 403",
    "Realtime disconnects every minute",
    "Invoice shows the wrong plan",
    "Edge function cold starts",
    "Dashboard is slow",
    "Backups missing since Tuesday",
    "Rate limited on the auth API",
    "Webhook retries twice",
)


def _ticket_fields(item: _Written) -> None:
    ticket, run = item.ticket, item.run
    ticket.state = run.state
    responses = [m for m in run.applied if m.step == Step.RESPOND]
    if responses:  # the ticket keeps its first response; later cycles keep theirs
        ticket.responded_at, ticket.responded_by = responses[0].at, responses[0].actor
        ticket.response_path = ResponsePath.SLACK_THREAD
    closes = [m for m in run.applied if m.step == Step.CLOSE]
    if run.state == TicketState.CLOSED and closes:
        ticket.closed_at, ticket.closed_via, ticket.closed_by = (
            closes[-1].at,
            closes[-1].via,
            closes[-1].actor,
        )
    if run.state == TicketState.WAITING and run.pause is not None:
        ticket.waiting_since = run.pause.paused_at
    ticket.helpdesk_status = ""


def _events(item: _Written, *, label: str) -> list[TicketEvent]:
    ticket, run = item.ticket, item.run
    events = [
        TicketEvent(
            ticket=ticket, kind=TicketEventKind.OPENED, at=ticket.opened_at, actor=ticket.author_slack_id
        ),
        TicketEvent(
            ticket=ticket,
            kind=TicketEventKind.NOTE,
            at=ticket.opened_at,
            details={"note": f"{label} Demo data: a ticket of the seeded past month.", "demo_history": True},
        ),
    ]
    if run.state in (TicketState.NO_POLICY, TicketState.EXCLUDED):
        return events
    first = run.cycles[0] if run.cycles else None
    events.append(
        TicketEvent(
            ticket=ticket,
            kind=TicketEventKind.ARMED,
            at=ticket.opened_at,
            details={
                "policy": item.snapshot.name,
                "clock": item.snapshot.clock,
                "breach_at": first.breach_at.isoformat() if first and first.breach_at else None,
            },
        )
    )
    for fired in run.fired:
        events.append(
            TicketEvent(
                ticket=ticket,
                kind=TicketEventKind.LEVEL_FIRED,
                at=fired.at,
                level=fired.level,
                details={"notified": list(fired.notified), "via": "task", "cycle": fired.cycle},
            )
        )
    kinds = {
        Step.PAUSE: TicketEventKind.PAUSED,
        Step.RESUME: TicketEventKind.RESUMED,
        Step.RESPOND: TicketEventKind.RESPONDED,
        Step.CLOSE: TicketEventKind.CLOSED,
        Step.CYCLE: TicketEventKind.CYCLE_STARTED,
    }
    for moment in run.applied:
        if moment.step == Step.SNOOZE:
            continue
        details = {"via": moment.via} if moment.via else {}
        if moment.step == Step.RESPOND:
            details = {"path": ResponsePath.SLACK_THREAD}
        events.append(
            TicketEvent(
                ticket=ticket, kind=kinds[moment.step], at=moment.at, actor=moment.actor, details=details
            )
        )
    for snooze in run.snooze_log:
        if snooze.applied:
            events.append(
                TicketEvent(
                    ticket=ticket,
                    kind=TicketEventKind.SNOOZED,
                    at=snooze.moment.at,
                    actor=snooze.moment.actor,
                    details={"minutes": item.snapshot.snooze_minutes, "due_times": snooze.due_times},
                )
            )
    return events


@transaction.atomic
def _write(written: list[_Written], *, label: str) -> None:
    for item in written:
        _ticket_fields(item)
    Ticket.objects.bulk_create([item.ticket for item in written], batch_size=1000)
    slas, cycles, rows, pauses, snoozes, events = [], [], [], [], [], []
    for item in written:
        ticket, run, snapshot = item.ticket, item.run, item.snapshot
        if item.policy is not None:
            first = next((c for c in run.cycles if c.number == 1), None)
            hours = run.hours.as_json() if isinstance(run.clock, BusinessClock) else None
            slas.append(
                TicketSla(
                    ticket=ticket,
                    policy=item.policy,
                    policy_name=snapshot.name,
                    snooze_minutes=snapshot.snooze_minutes,
                    armed_at=ticket.opened_at,
                    clock=run.clock.kind,
                    first_response_target=snapshot.target,
                    breach_at=first.breach_at if first else None,
                    hours=hours,
                    snoozes_extend_target=snapshot.snoozes_extend_target,
                    max_total_snooze=snapshot.max_total_snooze,
                    next_response=snapshot.next_response.as_json() if snapshot.next_response else None,
                )
            )
        responders = {m.at: m for m in run.applied if m.step in (Step.RESPOND, Step.CLOSE, Step.CYCLE)}
        for cycle in run.cycles:
            answered = responders.get(cycle.responded_at) if cycle.responded_at else None
            closed = responders.get(cycle.closed_at) if cycle.closed_at else None
            started = responders.get(cycle.started_at) if cycle.number > 1 else None
            cycles.append(
                TicketCycle(
                    ticket=ticket,
                    number=cycle.number,
                    kind=CycleKind.FIRST if cycle.number == 1 else CycleKind.NEXT,
                    started_at=cycle.started_at,
                    started_by=started.actor if started else ticket.author_slack_id,
                    reopened=cycle.reopened,
                    target=snapshot.target
                    if cycle.number == 1
                    else (snapshot.next_response.target if snapshot.next_response else None),
                    breach_at=cycle.breach_at,
                    responded_at=cycle.responded_at,
                    response_path=ResponsePath.SLACK_THREAD if answered else "",
                    responded_by=answered.actor if answered else "",
                    closed_at=cycle.closed_at,
                    closed_via=closed.via if closed else "",
                    closed_by=closed.actor if closed else "",
                )
            )
        for row in run.rows:
            row.ticket = ticket
            if row.state == EscalationState.FIRED:
                row.fired_via, row.attempts = "task", 1
            rows.append(row)
        for pause in run.pauses:
            pauses.append(
                TicketPause(
                    ticket=ticket,
                    cycle=pause.cycle,
                    paused_at=pause.paused_at,
                    paused_via=TicketVia.BUTTON,
                    paused_by=pause.paused_by,
                    resumed_at=pause.resumed_at,
                    resumed_via=pause.resumed_via,
                    resumed_by=pause.resumed_by,
                    remaining=pause.remaining,
                    breach_remaining=pause.breach_remaining,
                )
            )
        for n, snooze in enumerate(run.snooze_log):
            snoozes.append(
                SnoozeRequest(
                    request_key=f"demo-history:{ticket.pk}:{n}",
                    ticket=ticket,
                    actor=snooze.moment.actor,
                    at=snooze.moment.at,
                    applied=snooze.applied,
                    due_times=snooze.due_times,
                    refused=snooze.refused,
                )
            )
        events.extend(_events(item, label=label))
    TicketSla.objects.bulk_create(slas, batch_size=1000)
    TicketCycle.objects.bulk_create(cycles, batch_size=1000)
    Escalation.objects.bulk_create(rows, batch_size=1000)
    TicketPause.objects.bulk_create(pauses, batch_size=1000)
    SnoozeRequest.objects.bulk_create(snoozes, batch_size=1000)
    TicketEvent.objects.bulk_create(events, batch_size=2000)


def demo_history_seed(
    *, now: datetime | None = None, days: int = DEMO_HISTORY_DAYS, tickets: int = DEMO_HISTORY_TICKETS
) -> int:
    """Seed the demo's past month (demo mode only; once: nothing if it is there already)."""
    if not settings.DEMO_MODE:
        raise DemoOnly(
            "the demo's past month is only seeded in demo mode (no SLACK_BOT_TOKEN, not production)"
        )
    now = (now or timezone.now()).astimezone(UTC).replace(microsecond=0)
    with transaction.atomic():
        channels = demo_history_tiers()
        if Ticket.objects.filter(channel__in=channels).exists():
            return 0
        start = now - timedelta(days=days)
        demo_roster_history(start=start, now=now)
        return past_tickets_seed(
            channels=channels, start=start, end=now - timedelta(hours=1), count=tickets, now=now
        )
