"""Response cycles: the first response, then one next-response cycle each time the customer
writes again after an answer (or after a close, which reopens the ticket).

Each cycle is a ``TicketCycle`` row (its start, target, breach time, how it ended) and its
own ``Escalation`` rows (``cycle`` = its number), so every level of every cycle has its own
row, its own outbox key and posts exactly once. A cycle's levels are planned with the same
arithmetic as the first response (``escalation/planning.py``), from the customer's message.

Levels that are already overdue when a cycle's rows are written (a ticket or a message first
seen late, e.g. backfilled by the channel scan after downtime) are not posted one after
another: the widest overdue level posts once and says the ticket was picked up late; the
overdue levels below it are recorded as cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from base.formatting import duration_text
from escalation.lifecycle_requests import lifecycle_request_applied, lifecycle_request_take
from escalation.messages import DEFAULT_TEMPLATE, PAGED_TEMPLATE
from escalation.models import CycleKind, Escalation, LifecycleAction, TicketCycle, TicketSla
from escalation.planning import SlaPlan, next_response_plan, ticket_clock
from escalation.policy import Ladder
from escalation.queueing import escalations_queue_within_horizon
from escalation.transitions import EscalationState
from tickets.models import Ticket, TicketEventKind, TicketState
from tickets.timeline import timeline_record

# A level due less than this before its row is written is on time, not "picked up late".
LATE_GRACE = timedelta(minutes=1)


def ticket_cycle_current(ticket_id: int) -> TicketCycle | None:
    """The ticket's latest cycle (open or ended); None for a ticket never armed with levels."""
    return TicketCycle.objects.filter(ticket_id=ticket_id).order_by("-number").first()


def level_cycle_times(row: Escalation, *, ticket: Ticket, first_breach_at: datetime | None
                      ) -> tuple[datetime, datetime | None]:
    """When the customer started waiting for the level's cycle, and its breach time (what an
    escalation message says: "waited 12 min", "breaches in 5 min")."""
    if row.cycle == 1:
        return ticket.opened_at, first_breach_at
    cycle = TicketCycle.objects.filter(ticket_id=ticket.pk, number=row.cycle).first()
    return (cycle.started_at, cycle.breach_at) if cycle else (ticket.opened_at, first_breach_at)


def cycle_first(*, ticket: Ticket, plan: SlaPlan, target: timedelta | None) -> TicketCycle:
    """Cycle 1 (the first response) of a ticket being armed, unsaved (arming a batch saves many
    at once); its breach time is the ticket's."""
    return TicketCycle(ticket=ticket, number=1, kind=CycleKind.FIRST, started_at=ticket.opened_at,
                       started_by=ticket.author_slack_id or "system", target=target, breach_at=plan.breach_at)


def cycle_first_record(*, ticket: Ticket, plan: SlaPlan, target: timedelta | None) -> TicketCycle:
    first = cycle_first(ticket=ticket, plan=plan, target=target)
    cycle, _ = TicketCycle.objects.get_or_create(
        ticket=ticket, number=1,
        defaults={name: getattr(first, name) for name in ("kind", "started_at", "started_by", "target",
                                                           "breach_at")},
    )
    return cycle


def _late_template(template: str, *, target_kind: str, late_by: timedelta, skipped: list[int]) -> str:
    """The widest overdue level's template, saying it was picked up late (placeholders kept)."""
    folded = ""
    if len(skipped) == 1:
        folded = f"; level {skipped[0]} was already overdue and is folded into this message"
    elif skipped:
        folded = f"; levels {skipped[0]}–{skipped[-1]} were already overdue and are folded into this message"
    note = (f":hourglass: _Picked up late: SLA Buddy first saw this {duration_text(late_by)} after it "
            f"was due{folded}._\n")
    base = template or (PAGED_TEMPLATE if target_kind == "page" else DEFAULT_TEMPLATE)
    return note.replace("{", "{{").replace("}", "}}") + base


@dataclass(frozen=True)
class CycleLevels:
    """A cycle's level rows, unsaved, and the overdue levels folded into the widest one."""

    rows: list[Escalation]
    caught_up: list[int]  # overdue levels recorded as cancelled: the widest overdue level posts for them
    posts: int | None = None  # that widest overdue level

    def note(self, *, cycle: int) -> dict | None:
        """The timeline note of a late pickup (None if nothing was folded)."""
        if not self.caught_up:
            return None
        return {"note": f"Picked up late: levels {', '.join(map(str, self.caught_up))} were already overdue; "
                f"level {self.posts} posts once for them.",
                "caught_up": self.caught_up, "cycle": cycle, "posts": self.posts}


def cycle_level_rows(*, ticket: Ticket, plan: SlaPlan, cycle: int, now: datetime) -> CycleLevels:
    """One unsaved row per planned level of ``cycle`` (no database: arming a batch uses it too);
    levels already overdue at ``now`` collapse into the widest of them, which says so."""
    overdue = [level for level in plan.levels if level.due_at <= now]
    widest = overdue[-1] if overdue else None
    late = widest is not None and now - widest.due_at >= LATE_GRACE
    skipped = [level.plan.level for level in overdue[:-1]]
    rows = []
    for level in plan.levels:
        template = level.plan.message_template
        if late and level is widest:
            template = _late_template(template, target_kind=level.plan.target_kind,
                                      late_by=now - overdue[0].due_at, skipped=skipped)
        rows.append(Escalation(
            ticket=ticket,
            cycle=cycle,
            step_id=level.plan.step_id,
            level=level.plan.level,
            target_kind=level.plan.target_kind,
            target_ref=level.plan.target_ref,
            engineer_id=level.plan.engineer_id,
            message_template=template,
            page_provider=level.plan.page_provider,
            page_credential=level.plan.page_credential,
            outside_hours=level.plan.outside_hours,
            due_at=level.due_at,
            late_pickup=late and level is widest,
            # Folded into the widest overdue level: recorded, never posted on its own.
            state=EscalationState.CANCELLED if level.plan.level in skipped else EscalationState.PENDING,
        ))
    return CycleLevels(rows, skipped, widest.plan.level if skipped else None)


def cycle_levels_create(*, ticket: Ticket, plan: SlaPlan, cycle: int, now: datetime) -> list[Escalation]:
    """Write a cycle's level rows (``cycle_level_rows``), note a late pickup, and queue the
    pending levels within the horizon. Returns every row."""
    levels = cycle_level_rows(ticket=ticket, plan=plan, cycle=cycle, now=now)
    created = Escalation.objects.bulk_create(levels.rows)
    note = levels.note(cycle=cycle)
    if note is not None:
        timeline_record(ticket=ticket, kind=TicketEventKind.NOTE, at=now, details=note)
    live = [row for row in created if row.state == EscalationState.PENDING]
    escalations_queue_within_horizon(live, now=now)
    return created


@dataclass(frozen=True)
class CycleStart:
    """What a customer's message did: started cycle ``number`` (``started``), or nothing and why."""

    started: bool
    reason: str
    number: int | None = None


def ticket_next_response_start(
    *, ticket: Ticket, request_key: str | None, message_ts: str, actor: str, at: datetime,
    now: datetime | None = None,
) -> CycleStart:
    """The customer wrote again (message ``message_ts`` at ``at``): after an answer, or after a
    close (reopening the ticket), start a next-response cycle from that message. Once per
    message (``request_key``), however often Slack delivers it."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = (Ticket.objects.select_for_update(of=("self",)).select_related("channel__tier")
                  .get(pk=ticket.pk))
        if locked.state not in (TicketState.RESPONDED, TicketState.CLOSED):
            return CycleStart(False, f"ticket is {locked.state}")
        sla = TicketSla.objects.filter(ticket=locked).first()
        ladder = Ladder.from_json(sla.next_response if sla else None)
        if ladder is None:
            return CycleStart(False, "no next-response ladder")
        previous = ticket_cycle_current(locked.pk)
        ended = [t for t in (previous and previous.responded_at, previous and previous.closed_at,
                             locked.closed_at) if t is not None]
        if ended and at <= max(ended):
            # Written before the answer (or the close): it was answered, or closed, after it.
            return CycleStart(False, "message from before the answer or close")
        request = lifecycle_request_take(ticket=locked, key=request_key, action=LifecycleAction.CYCLE,
                                         actor=actor, at=now)
        if request is None:
            return CycleStart(False, "duplicate")
        reopened = locked.state == TicketState.CLOSED
        Ticket.objects.mark_rearmed(pk=locked.pk)
        number = (previous.number if previous else 1) + 1
        plan = next_response_plan(ladder=ladder, clock=ticket_clock(sla, tier=locked.channel.tier, now=now),
                                  started_at=at)
        TicketCycle.objects.create(
            ticket=locked, number=number, kind=CycleKind.NEXT, started_at=at, started_by=actor,
            trigger_ts=message_ts, reopened=reopened, target=ladder.target, breach_at=plan.breach_at,
        )
        rows = cycle_levels_create(ticket=locked, plan=plan, cycle=number, now=now)
        lifecycle_request_applied(request)
        details = {"cycle": number, "reopened": reopened, "message_ts": message_ts,
                   "levels": {str(r.level): r.due_at.isoformat() for r in rows}}
        if plan.breach_at is not None:
            details["breach_at"] = plan.breach_at.isoformat()
        timeline_record(ticket=locked, kind=TicketEventKind.CYCLE_STARTED, at=at, actor=actor,
                        details=details)
    ticket.state = TicketState.ARMED
    return CycleStart(True, "reopened" if reopened else "next response", number)
