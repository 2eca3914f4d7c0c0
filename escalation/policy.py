"""Which policy a ticket gets, and the snapshot of it that the ticket keeps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from escalation.clock import ClockKind
from escalation.models import DEFAULT_SNOOZE_MINUTES, SlaPolicy


def policy_for(*, tier_id: int, priority: str) -> SlaPolicy | None:
    """The most specific active policy: (tier, priority), else the tier's default."""
    policies = SlaPolicy.objects.filter(tier_id=tier_id, active=True)
    if priority:
        specific = policies.filter(priority=priority).first()
        if specific is not None:
            return specific
    return policies.filter(priority="").first()


@dataclass(frozen=True)
class LevelPlan:
    """One step as copied onto a ticket."""

    level: int
    delay: timedelta
    target_kind: str
    target_ref: str
    engineer_id: int | None
    message_template: str
    step_id: int | None
    page_provider: str = ""
    page_credential: str = ""
    page_priorities: tuple[str, ...] = ()
    outside_hours: bool = False

    def applies_to(self, priority: str) -> bool:
        """A page step limited to priorities is left out for other tickets (and for unknown priority)."""
        return not self.page_priorities or priority in self.page_priorities


@dataclass(frozen=True)
class PolicySnapshot:
    """Everything a ticket keeps of its policy when it is armed."""

    policy_id: int | None
    name: str
    snooze_minutes: int
    levels: tuple[LevelPlan, ...]
    clock: str = ClockKind.CALENDAR
    first_response_target: timedelta | None = None  # None: the first level's delay
    snoozes_extend_target: bool = False

    @property
    def target(self) -> timedelta | None:
        """The first-response target, on the policy's clock (None without levels or a target)."""
        if self.first_response_target is not None:
            return self.first_response_target
        return self.levels[0].delay if self.levels else None


def policy_snapshot(policy: SlaPolicy | None, *, priority: str | None = None) -> PolicySnapshot:
    """The policy as it applies to a ticket of ``priority`` (None: every level, whatever
    the priority). A page step limited to other priorities is left out."""
    if policy is None:
        return PolicySnapshot(None, "", DEFAULT_SNOOZE_MINUTES, ())
    levels = tuple(
        LevelPlan(
            level=step.level,
            delay=step.delay,
            target_kind=step.target_kind,
            target_ref=step.target_ref,
            engineer_id=step.engineer_id,
            message_template=step.message_template,
            step_id=step.pk,
            page_provider=step.page_provider,
            page_credential=step.page_credential,
            page_priorities=tuple(step.page_priorities or ()),
            outside_hours=step.outside_hours,
        )
        for step in policy.steps.order_by("level")
    )
    if priority is not None:
        levels = tuple(plan for plan in levels if plan.applies_to(priority))
    return PolicySnapshot(
        policy.pk,
        str(policy),
        policy.snooze_minutes,
        levels,
        clock=policy.clock,
        first_response_target=policy.first_response_target,
        snoozes_extend_target=policy.snoozes_extend_target,
    )
