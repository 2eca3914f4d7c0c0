"""Where a ticket is armed: its policy is chosen, copied, and one pending row per level written."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from escalation.models import Escalation, SlaPolicy, TicketSla
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
        snapshot = policy_snapshot(policy)
        if policy is not None:
            TicketSla.objects.get_or_create(
                ticket=locked,
                defaults={"policy": policy, "policy_name": snapshot.name,
                          "snooze_minutes": snapshot.snooze_minutes, "armed_at": now},
            )
        if not snapshot.levels:
            _no_policy(locked, now=now)
            ticket.state = TicketState.NO_POLICY
            return []
        rows = _levels_create(locked, snapshot)
        timeline_record(
            ticket=locked, kind=TicketEventKind.ARMED, at=now, details=_armed_details(snapshot, rows)
        )
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
    slas, events = [], []
    with transaction.atomic():
        for ticket in tickets:
            key = (ticket.channel.tier_id, ticket.priority)
            if key not in policies:
                policy = policy_for(tier_id=key[0], priority=key[1])
                policies[key] = (policy, policy_snapshot(policy))
            policy, snapshot = policies[key]
            if policy is not None:
                slas.append(TicketSla(ticket=ticket, policy=policy, policy_name=snapshot.name,
                                      snooze_minutes=snapshot.snooze_minutes, armed_at=now))
            armed[ticket.pk] = _levels(ticket, snapshot)
        TicketSla.objects.bulk_create(slas)
        rows = Escalation.objects.bulk_create([row for levels in armed.values() for row in levels])
        for ticket in tickets:
            levels = armed[ticket.pk]
            if not levels:
                _no_policy(ticket, now=now)
                continue
            snapshot = policies[(ticket.channel.tier_id, ticket.priority)][1]
            events.append(TicketEvent(ticket=ticket, kind=TicketEventKind.ARMED, at=now,
                                      details=_armed_details(snapshot, levels)))
        timeline_record_many(events)
        escalations_queue_within_horizon(rows, now=now)
    return armed


def _armed_details(snapshot: PolicySnapshot, rows: list[Escalation]) -> dict:
    return {"policy": snapshot.name, "levels": {str(r.level): r.due_at.isoformat() for r in rows}}


def _levels_create(ticket: Ticket, snapshot: PolicySnapshot) -> list[Escalation]:
    return Escalation.objects.bulk_create(_levels(ticket, snapshot))


def _levels(ticket: Ticket, snapshot: PolicySnapshot) -> list[Escalation]:
    """The unsaved level rows of ``ticket`` under ``snapshot``."""
    return [
        Escalation(
            ticket=ticket,
            step_id=plan.step_id,
            level=plan.level,
            target_kind=plan.target_kind,
            target_ref=plan.target_ref,
            engineer_id=plan.engineer_id,
            message_template=plan.message_template,
            due_at=ticket.opened_at + plan.delay,
        )
        for plan in snapshot.levels
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
