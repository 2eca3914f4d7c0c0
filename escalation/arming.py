"""Where a ticket is armed: its policy is chosen and copied, its first response cycle and one
pending row per level written.

``ticket_arm`` arms one ticket; ``tickets_arm_new`` arms a batch created together (a flood
of new tickets) with the same outcome per ticket in a handful of queries. Both build the
same unsaved rows (``_sla``, ``cycle_first``, ``cycle_level_rows``), so they cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from escalation.clock import BusinessClock
from escalation.cycles import cycle_first, cycle_first_record, cycle_level_rows, cycle_levels_create
from escalation.models import Escalation, SlaPolicy, TicketCycle, TicketSla
from escalation.planning import SlaPlan, tier_sla_plan
from escalation.policy import PolicySnapshot, policy_for, policy_snapshot
from escalation.queueing import escalations_queue_within_horizon
from escalation.transitions import EscalationState
from tickets.models import Ticket, TicketEvent, TicketEventKind, TicketState
from tickets.timeline import timeline_record, timeline_record_many


def ticket_arm(*, ticket: Ticket, now: datetime | None = None) -> list[Escalation]:
    """Give a new ticket its policy, its first response cycle and one pending row per level.
    Idempotent: a ticket that already has rows (or was found to have no policy, or was
    excluded, answered or closed) is returned unchanged. A ticket whose type the policy
    excludes is recorded with a note and never armed."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Ticket.objects.select_for_update(of=("self",)).select_related("channel").get(pk=ticket.pk)
        existing = list(Escalation.objects.filter(ticket=locked).order_by("level"))
        if existing or locked.state != TicketState.ARMED:
            return existing
        policy = policy_for(tier_id=locked.channel.tier_id, priority=locked.priority)
        snapshot = policy_snapshot(policy, priority=locked.priority)
        if snapshot.excludes(locked.ticket_type):
            _excluded(locked, snapshot, now=now)
            ticket.state = TicketState.EXCLUDED
            return []
        plan = _plan(locked, snapshot)
        sla = _sla(locked, policy=policy, snapshot=snapshot, plan=plan, now=now)
        if sla is not None:
            TicketSla.objects.get_or_create(ticket=locked, defaults=_sla_fields(sla))
        if not snapshot.levels:
            _no_policy(locked, now=now)
            ticket.state = TicketState.NO_POLICY
            return []
        cycle_first_record(ticket=locked, plan=plan, target=snapshot.target)
        rows = cycle_levels_create(ticket=locked, plan=plan, cycle=1, now=now)
        timeline_record(ticket=locked, kind=TicketEventKind.ARMED, at=now,
                        details=_armed_details(snapshot, plan, rows))
    return rows


def tickets_arm_new(*, tickets: list[Ticket], now: datetime | None = None) -> dict[int, list[Escalation]]:
    """Arm tickets created in the caller's transaction (armed, no levels yet) all at once:
    for each the outcome of ``ticket_arm``, in a handful of queries for the lot (a flood
    of new tickets is armed by the batch, not one round trip at a time).
    Returns each ticket's level rows by ticket id (none: no policy, or an excluded type)."""
    now = now or timezone.now()
    policies: dict[tuple[int, str], tuple[SlaPolicy | None, PolicySnapshot]] = {}
    armed: dict[int, list[Escalation]] = {}
    plans: dict[int, tuple[PolicySnapshot, SlaPlan]] = {}
    excluded, slas, cycles, notes = [], [], [], []
    with transaction.atomic():
        for ticket in tickets:
            key = (ticket.channel.tier_id, ticket.priority)
            if key not in policies:
                policy = policy_for(tier_id=key[0], priority=key[1])
                policies[key] = (policy, policy_snapshot(policy, priority=ticket.priority))
            policy, snapshot = policies[key]
            armed[ticket.pk] = []
            if snapshot.excludes(ticket.ticket_type):
                excluded.append(ticket)
                continue
            plan = _plan(ticket, snapshot)
            plans[ticket.pk] = (snapshot, plan)
            sla = _sla(ticket, policy=policy, snapshot=snapshot, plan=plan, now=now)
            if sla is not None:
                slas.append(sla)
            if snapshot.levels:
                cycles.append(cycle_first(ticket=ticket, plan=plan, target=snapshot.target))
                levels = cycle_level_rows(ticket=ticket, plan=plan, cycle=1, now=now)
                armed[ticket.pk] = levels.rows
                note = levels.note(cycle=1)
                if note is not None:
                    notes.append(TicketEvent(ticket=ticket, kind=TicketEventKind.NOTE, at=now, details=note))
        TicketSla.objects.bulk_create(slas)
        TicketCycle.objects.bulk_create(cycles)
        rows = Escalation.objects.bulk_create([row for levels in armed.values() for row in levels])
        events = list(notes)
        for ticket in tickets:
            if ticket in excluded:
                _excluded(ticket, policies[(ticket.channel.tier_id, ticket.priority)][1], now=now)
            elif not armed[ticket.pk]:
                _no_policy(ticket, now=now)
            else:
                snapshot, plan = plans[ticket.pk]
                events.append(TicketEvent(ticket=ticket, kind=TicketEventKind.ARMED, at=now,
                                          details=_armed_details(snapshot, plan, armed[ticket.pk])))
        timeline_record_many(events)
        escalations_queue_within_horizon([row for row in rows if row.state == EscalationState.PENDING],
                                         now=now)
    return armed


def _plan(ticket: Ticket, snapshot: PolicySnapshot) -> SlaPlan:
    """Due times and breach time on the policy's clock, from the tier's hours now."""
    return tier_sla_plan(snapshot=snapshot, tier=ticket.channel.tier, opened_at=ticket.opened_at)


def _sla(ticket: Ticket, *, policy: SlaPolicy | None, snapshot: PolicySnapshot, plan: SlaPlan,
         now: datetime) -> TicketSla | None:
    """The ticket's copy of its policy (none without a policy)."""
    if policy is None:
        return None
    hours = plan.clock.hours.as_json() if isinstance(plan.clock, BusinessClock) else None
    return TicketSla(
        ticket=ticket, policy=policy, policy_name=snapshot.name, snooze_minutes=snapshot.snooze_minutes,
        armed_at=now, clock=plan.clock.kind, first_response_target=snapshot.target,
        breach_at=plan.breach_at, hours=hours, snoozes_extend_target=snapshot.snoozes_extend_target,
        max_total_snooze=snapshot.max_total_snooze,
        next_response=snapshot.next_response.as_json() if snapshot.next_response else None,
    )


_SLA_FIELDS = ("policy", "policy_name", "snooze_minutes", "armed_at", "clock", "first_response_target",
               "breach_at", "hours", "snoozes_extend_target", "max_total_snooze", "next_response")


def _sla_fields(sla: TicketSla) -> dict:
    return {name: getattr(sla, name) for name in _SLA_FIELDS}


def _armed_details(snapshot: PolicySnapshot, plan: SlaPlan, rows: list[Escalation]) -> dict:
    details = {"policy": snapshot.name, "levels": {str(r.level): r.due_at.isoformat() for r in rows}}
    if plan.breach_at is not None:
        details.update(clock=plan.clock.kind, breach_at=plan.breach_at.isoformat())
    return details


def _excluded(ticket: Ticket, snapshot: PolicySnapshot, *, now: datetime) -> None:
    Ticket.objects.mark_excluded(pk=ticket.pk)
    ticket.state = TicketState.EXCLUDED
    timeline_record(
        ticket=ticket,
        kind=TicketEventKind.NOTE,
        at=now,
        details={
            "note": f"Not escalated: {snapshot.name or 'the policy'} excludes tickets of type "
            f"{ticket.ticket_type!r}.",
            "excluded_type": ticket.ticket_type,
            "policy": snapshot.name,
        },
    )


def _no_policy(ticket: Ticket, *, now: datetime) -> None:
    Ticket.objects.mark_no_policy(pk=ticket.pk)
    ticket.state = TicketState.NO_POLICY
    timeline_record(
        ticket=ticket,
        kind=TicketEventKind.NOTE,
        at=now,
        details={
            "note": "No SLA policy with escalation steps for this tier and priority; "
            "nothing will escalate.",
            "tier": str(ticket.channel.tier),
            "priority": ticket.priority,
        },
    )
