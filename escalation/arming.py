"""Where a ticket is armed: its policy is chosen, copied, and one pending row per level written."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from escalation.clock import BusinessClock
from escalation.models import Escalation, TicketSla
from escalation.planning import SlaPlan, tier_sla_plan
from escalation.policy import policy_for, policy_snapshot
from escalation.queueing import escalations_queue_within_horizon
from tickets.models import Ticket, TicketEventKind, TicketState
from tickets.timeline import timeline_record


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
        plan = tier_sla_plan(snapshot=snapshot, tier=locked.channel.tier, opened_at=locked.opened_at)
        if policy is not None:
            hours = plan.clock.hours.as_json() if isinstance(plan.clock, BusinessClock) else None
            TicketSla.objects.get_or_create(
                ticket=locked,
                defaults={"policy": policy, "policy_name": snapshot.name,
                          "snooze_minutes": snapshot.snooze_minutes, "armed_at": now,
                          "clock": plan.clock.kind, "first_response_target": snapshot.target,
                          "breach_at": plan.breach_at, "hours": hours,
                          "snoozes_extend_target": snapshot.snoozes_extend_target},
            )
        if not snapshot.levels:
            _no_policy(locked, now=now)
            ticket.state = TicketState.NO_POLICY
            return []
        rows = _levels_create(locked, plan)
        details = {"policy": snapshot.name, "levels": {str(r.level): r.due_at.isoformat() for r in rows}}
        if plan.breach_at is not None:
            details.update(clock=plan.clock.kind, breach_at=plan.breach_at.isoformat())
        timeline_record(ticket=locked, kind=TicketEventKind.ARMED, at=now, details=details)
        escalations_queue_within_horizon(rows, now=now)
    return rows


def _levels_create(ticket: Ticket, plan: SlaPlan) -> list[Escalation]:
    return Escalation.objects.bulk_create(
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
