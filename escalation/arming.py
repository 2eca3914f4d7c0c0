"""Where a ticket is armed: its policy is chosen, copied, and one pending row per level written.

``ticket_arm`` arms one ticket; ``tickets_arm_new`` arms a batch created together
(a flood of new tickets) with the same outcome per ticket in a handful of queries.
Both go through ``_plan`` and ``_levels``, so the two paths cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from escalation.clock import BusinessClock
from escalation.models import Escalation, SlaPolicy, TicketSla
from escalation.planning import SlaPlan, tier_sla_plan
from escalation.policy import PolicySnapshot, policy_for, policy_snapshot
from escalation.queueing import escalations_queue_within_horizon
from tickets.models import Ticket, TicketEvent, TicketEventKind, TicketState
from tickets.timeline import timeline_record, timeline_record_many


def ticket_arm(*, ticket: Ticket, now: datetime | None = None) -> list[Escalation]:
    """Give a new ticket its policy and one pending row per level. Idempotent:
    a ticket that already has rows (or was found to have no policy, or was
    answered) is returned unchanged."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Ticket.objects.select_for_update(of=("self",)).select_related("channel").get(pk=ticket.pk)
        existing = list(Escalation.objects.filter(ticket=locked).order_by("level"))
        if existing or locked.state != TicketState.ARMED:
            return existing
        policy = policy_for(tier_id=locked.channel.tier_id, priority=locked.priority)
        snapshot = policy_snapshot(policy, priority=locked.priority)
        plan = _plan(locked, snapshot)
        sla = _sla(locked, policy=policy, snapshot=snapshot, plan=plan, now=now)
        if sla is not None:
            TicketSla.objects.get_or_create(ticket=locked, defaults=_sla_fields(sla))
        if not snapshot.levels:
            _no_policy(locked, now=now)
            ticket.state = TicketState.NO_POLICY
            return []
        rows = Escalation.objects.bulk_create(_levels(locked, plan))
        timeline_record(ticket=locked, kind=TicketEventKind.ARMED, at=now,
                        details=_armed_details(snapshot, plan, rows))
        escalations_queue_within_horizon(rows, now=now)
    return rows


def tickets_arm_new(*, tickets: list[Ticket], now: datetime | None = None) -> dict[int, list[Escalation]]:
    """Arm tickets created in the caller's transaction (armed, no levels yet) all at once:
    for each the outcome of ``ticket_arm``, in a handful of queries for the lot (a flood
    of new tickets is armed by the batch, not one round trip at a time).
    Returns each ticket's level rows by ticket id (none: no policy)."""
    now = now or timezone.now()
    policies: dict[tuple[int, str], tuple[SlaPolicy | None, PolicySnapshot]] = {}
    armed: dict[int, list[Escalation]] = {}
    plans: dict[int, tuple[PolicySnapshot, SlaPlan]] = {}
    slas, events = [], []
    with transaction.atomic():
        for ticket in tickets:
            key = (ticket.channel.tier_id, ticket.priority)
            if key not in policies:
                policy = policy_for(tier_id=key[0], priority=key[1])
                policies[key] = (policy, policy_snapshot(policy, priority=ticket.priority))
            policy, snapshot = policies[key]
            plan = _plan(ticket, snapshot)
            plans[ticket.pk] = (snapshot, plan)
            sla = _sla(ticket, policy=policy, snapshot=snapshot, plan=plan, now=now)
            if sla is not None:
                slas.append(sla)
            armed[ticket.pk] = _levels(ticket, plan)
        TicketSla.objects.bulk_create(slas)
        rows = Escalation.objects.bulk_create([row for levels in armed.values() for row in levels])
        for ticket in tickets:
            levels = armed[ticket.pk]
            if not levels:
                _no_policy(ticket, now=now)
                continue
            snapshot, plan = plans[ticket.pk]
            events.append(TicketEvent(ticket=ticket, kind=TicketEventKind.ARMED, at=now,
                                      details=_armed_details(snapshot, plan, levels)))
        timeline_record_many(events)
        escalations_queue_within_horizon(rows, now=now)
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
    )


def _sla_fields(sla: TicketSla) -> dict:
    names = ("policy", "policy_name", "snooze_minutes", "armed_at", "clock", "first_response_target",
             "breach_at", "hours", "snoozes_extend_target")
    return {name: getattr(sla, name) for name in names}


def _armed_details(snapshot: PolicySnapshot, plan: SlaPlan, rows: list[Escalation]) -> dict:
    details = {"policy": snapshot.name, "levels": {str(r.level): r.due_at.isoformat() for r in rows}}
    if plan.breach_at is not None:
        details.update(clock=plan.clock.kind, breach_at=plan.breach_at.isoformat())
    return details


def _levels(ticket: Ticket, plan: SlaPlan) -> list[Escalation]:
    """The unsaved level rows of ``ticket`` under ``plan``."""
    return [
        Escalation(
            ticket=ticket,
            step_id=level.plan.step_id,
            level=level.plan.level,
            target_kind=level.plan.target_kind,
            target_ref=level.plan.target_ref,
            engineer_id=level.plan.engineer_id,
            message_template=level.plan.message_template,
            page_provider=level.plan.page_provider,
            page_credential=level.plan.page_credential,
            outside_hours=level.plan.outside_hours,
            due_at=level.due_at,
        )
        for level in plan.levels
    ]


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
