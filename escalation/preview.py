"""When would this policy's levels fire? The preview for ``manage.py sla_preview`` and the admin.

Runs the very code arming runs (``escalation/planning.py``) and writes nothing.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from escalation.models import SlaPolicy
from escalation.planning import tier_sla_plan
from escalation.policy import policy_for, policy_snapshot
from tickets.models import Tier


class PreviewError(ValueError):
    """No policy applies (the message says why)."""


def policy_preview(*, policy: SlaPolicy, opened_at: datetime) -> dict:
    """``{"tier", "policy", "clock", "breach_at", "levels": [{"level", "due_at", "notify"}]}``,
    times in ISO 8601 in the tier's time zone (with its UTC offset)."""
    tier = policy.tier
    snapshot = policy_snapshot(policy)
    plan = tier_sla_plan(snapshot=snapshot, tier=tier, opened_at=opened_at)
    zone = tier.zone

    def shown(at: datetime | None) -> str | None:
        return at.astimezone(zone).isoformat() if at is not None else None

    return {
        "tier": tier.name,
        "policy": snapshot.name,
        "clock": policy.clock,
        "breach_at": shown(plan.breach_at),
        "levels": [
            {"level": due.plan.level, "due_at": shown(due.due_at), "notify": due.plan.target_kind}
            for due in plan.levels
        ],
    }


def tier_preview(*, tier: Tier, priority: str, opened_at: datetime) -> dict:
    """The preview for the policy a ticket of this tier and priority would get."""
    policy = policy_for(tier_id=tier.pk, priority=priority)
    if policy is None:
        which = f"priority {priority!r} or " if priority else ""
        raise PreviewError(f"tier {tier.name!r} has no active policy for {which}its default (blank priority)")
    return policy_preview(policy=policy, opened_at=opened_at)


def next_friday_evening(*, now: datetime, tier: Tier) -> datetime:
    """The coming Friday 17:30 in the tier's time zone (a ticket opened just before the weekend)."""
    local = now.astimezone(tier.zone)
    days = (4 - local.weekday()) % 7
    candidate = datetime.combine(local.date() + timedelta(days=days), time(17, 30), tzinfo=tier.zone)
    if candidate < local:
        candidate = datetime.combine(local.date() + timedelta(days=7), time(17, 30), tzinfo=tier.zone)
    return candidate
