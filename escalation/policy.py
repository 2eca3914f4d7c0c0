"""Which policy a ticket gets, and the snapshot of it that the ticket keeps."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from escalation.clock import ClockKind
from escalation.models import DEFAULT_SNOOZE_MINUTES, EscalationStep, SlaPolicy, StepFields

T = TypeVar("T")


def policy_for(*, tier_id: int, priority: str) -> SlaPolicy | None:
    """The most specific active policy: (tier, priority), else the tier's default."""
    return policy_pick(SlaPolicy.objects.filter(tier_id=tier_id, active=True), priority=priority)


def policy_pick(policies: Iterable[T], *, priority: str) -> T | None:
    """Of one tier's policies (anything with ``priority`` and ``active``), the one a ticket of
    ``priority`` gets: its own active policy, else the tier's active default (pure: arming and
    replays of proposed policies choose alike)."""
    active = [p for p in policies if p.active]
    if priority:
        specific = next((p for p in active if p.priority == priority), None)
        if specific is not None:
            return specific
    return next((p for p in active if p.priority == ""), None)


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

    def as_json(self) -> dict[str, Any]:
        """As the ticket's snapshot keeps a next-response level (TicketSla.next_response)."""
        return {"level": self.level, "delay": self.delay.total_seconds(), "target_kind": self.target_kind,
                "target_ref": self.target_ref, "engineer_id": self.engineer_id,
                "message_template": self.message_template, "page_provider": self.page_provider,
                "page_credential": self.page_credential, "page_priorities": list(self.page_priorities),
                "outside_hours": self.outside_hours}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LevelPlan:
        return cls(level=int(data["level"]), delay=timedelta(seconds=float(data["delay"])),
                   target_kind=data["target_kind"], target_ref=data.get("target_ref") or "",
                   engineer_id=data.get("engineer_id"), message_template=data.get("message_template") or "",
                   step_id=None, page_provider=data.get("page_provider") or "",
                   page_credential=data.get("page_credential") or "",
                   page_priorities=tuple(data.get("page_priorities") or ()),
                   outside_hours=bool(data.get("outside_hours")))


@dataclass(frozen=True)
class Ladder:
    """Levels and their response target: the next-response ladder of a policy."""

    levels: tuple[LevelPlan, ...]
    response_target: timedelta | None = None  # None: the first level's delay

    @property
    def target(self) -> timedelta | None:
        if self.response_target is not None:
            return self.response_target
        return self.levels[0].delay if self.levels else None

    def as_json(self) -> dict[str, Any]:
        target = self.response_target
        return {"target": None if target is None else target.total_seconds(),
                "levels": [level.as_json() for level in self.levels]}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Ladder | None:
        if not data or not data.get("levels"):
            return None
        target = data.get("target")
        return cls(tuple(LevelPlan.from_json(level) for level in data["levels"]),
                   None if target is None else timedelta(seconds=float(target)))


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
    next_response: Ladder | None = None  # None: a customer writing again starts no cycle
    exclude_types: tuple[str, ...] = ()  # lower-case ticket types that are never armed
    max_total_snooze: timedelta | None = None

    def excludes(self, ticket_type: str) -> bool:
        return bool(ticket_type) and ticket_type.strip().lower() in self.exclude_types

    @property
    def target(self) -> timedelta | None:
        """The first-response target, on the policy's clock (None without levels or a target)."""
        if self.first_response_target is not None:
            return self.first_response_target
        return self.levels[0].delay if self.levels else None


def _level_plans(steps, *, priority: str | None) -> tuple[LevelPlan, ...]:
    levels = tuple(_level_plan(step) for step in steps.order_by("level"))
    return levels_for_priority(levels, priority=priority)


def levels_for_priority(levels: tuple[LevelPlan, ...], *, priority: str | None) -> tuple[LevelPlan, ...]:
    """The levels that apply to a ticket of ``priority`` (None: all), by level."""
    levels = tuple(sorted(levels, key=lambda plan: plan.level))
    if priority is not None:
        levels = tuple(plan for plan in levels if plan.applies_to(priority))
    return levels


def _level_plan(step: StepFields) -> LevelPlan:
    return LevelPlan(
        level=step.level,
        delay=step.delay,
        target_kind=step.target_kind,
        target_ref=step.target_ref,
        engineer_id=step.engineer_id,
        message_template=step.message_template,
        # Escalation.step refers to first-response steps only; a next-response step is not one.
        step_id=step.pk if isinstance(step, EscalationStep) else None,
        page_provider=step.page_provider,
        page_credential=step.page_credential,
        page_priorities=tuple(step.page_priorities or ()),
        outside_hours=step.outside_hours,
    )


def policy_snapshot(policy: SlaPolicy | None, *, priority: str | None = None) -> PolicySnapshot:
    """The policy as it applies to a ticket of ``priority`` (None: every level, whatever
    the priority). A page step limited to other priorities is left out."""
    if policy is None:
        return PolicySnapshot(None, "", DEFAULT_SNOOZE_MINUTES, ())
    return snapshot_build(
        policy=policy, name=str(policy), levels=_level_plans(policy.steps, priority=priority),
        next_levels=_level_plans(policy.next_steps, priority=priority), policy_id=policy.pk,
    )


def snapshot_build(*, policy, name: str, levels: tuple[LevelPlan, ...], next_levels: tuple[LevelPlan, ...],
                   policy_id: int | None = None) -> PolicySnapshot:
    """The snapshot of a policy (a model, or anything with its fields, e.g. a proposed policy read
    from an ``sla_config`` file) whose levels are already chosen for the ticket's priority."""
    return PolicySnapshot(
        policy_id,
        name,
        policy.snooze_minutes,
        levels,
        clock=policy.clock,
        first_response_target=policy.first_response_target,
        snoozes_extend_target=policy.snoozes_extend_target,
        next_response=Ladder(next_levels, policy.next_response_target) if next_levels else None,
        exclude_types=tuple(t.strip().lower() for t in policy.exclude_types or () if isinstance(t, str)),
        max_total_snooze=policy.max_total_snooze,
    )
