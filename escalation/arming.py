"""Where a ticket is armed: its policy is chosen, copied, and one pending row per level written."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from escalation.clock import BusinessClock
from escalation.cycles import cycle_first_record, cycle_levels_create
from escalation.models import Escalation, TicketSla
from escalation.planning import tier_sla_plan
from escalation.policy import PolicySnapshot, policy_for, policy_snapshot
from tickets.models import Ticket, TicketEventKind, TicketState
from tickets.timeline import timeline_record


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
        plan = tier_sla_plan(snapshot=snapshot, tier=locked.channel.tier, opened_at=locked.opened_at)
        if policy is not None:
            hours = plan.clock.hours.as_json() if isinstance(plan.clock, BusinessClock) else None
            TicketSla.objects.get_or_create(
                ticket=locked,
                defaults={"policy": policy, "policy_name": snapshot.name,
                          "snooze_minutes": snapshot.snooze_minutes, "armed_at": now,
                          "clock": plan.clock.kind, "first_response_target": snapshot.target,
                          "breach_at": plan.breach_at, "hours": hours,
                          "snoozes_extend_target": snapshot.snoozes_extend_target,
                          "max_total_snooze": snapshot.max_total_snooze,
                          "next_response": _ladder_json(snapshot)},
            )
        if not snapshot.levels:
            _no_policy(locked, now=now)
            ticket.state = TicketState.NO_POLICY
            return []
        cycle_first_record(ticket=locked, plan=plan, target=snapshot.target)
        rows = cycle_levels_create(ticket=locked, plan=plan, cycle=1, now=now)
        details = {"policy": snapshot.name, "levels": {str(r.level): r.due_at.isoformat() for r in rows}}
        if plan.breach_at is not None:
            details.update(clock=plan.clock.kind, breach_at=plan.breach_at.isoformat())
        timeline_record(ticket=locked, kind=TicketEventKind.ARMED, at=now, details=details)
    return rows


def _ladder_json(snapshot: PolicySnapshot) -> dict | None:
    return snapshot.next_response.as_json() if snapshot.next_response else None


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
