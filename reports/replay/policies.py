"""The policies a replay plays tickets under: those of a proposed ``sla_config`` file for the tiers
it names (read and checked by ``escalation.sla_config_schema``, as ``sla_config import`` does),
the database's current ones for the tiers it does not name (as an import would leave them).

A ticket gets its policy as arming gives it (``policy.policy_pick``: its priority's active policy,
else the tier's active default), and the snapshot of it as arming takes it
(``policy.snapshot_build``, with page steps limited to other priorities left out).
"""

from __future__ import annotations

from dataclasses import dataclass

from calendars.models import Engineer
from escalation.policy import (
    LevelPlan,
    PolicySnapshot,
    levels_for_priority,
    policy_for,
    policy_pick,
    policy_snapshot,
    snapshot_build,
)
from escalation.sla_config_schema import PolicySpec, SlaConfig, StepSpec
from tickets.models import Priority


@dataclass(frozen=True)
class ProposedPolicy:
    """A policy of the file, with the fields a snapshot reads (as ``SlaPolicy`` has them)."""

    tier: str
    spec: PolicySpec

    @property
    def priority(self) -> str:
        return self.spec.priority

    @property
    def active(self) -> bool:
        return self.spec.active

    @property
    def name(self) -> str:
        label = Priority(self.priority).label if self.priority else "default"
        return self.spec.name or f"{self.tier} ({label})"

    def __getattr__(self, field: str):
        if field == "next_response_target":
            return self.spec.next_response.target if self.spec.next_response else None
        return getattr(self.spec, field)  # snooze_minutes, clock, first_response_target, ...


class Engineers:
    """Engineer ids by the keys a file may use (email, Slack id, name), read once."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        for pk, name, email, slack_id in Engineer.objects.values_list("pk", "name", "email", "slack_user_id"):
            for key in (name, email, slack_id):
                if key:
                    self.ids.setdefault(key.strip().lower(), pk)

    def find(self, key: str) -> int | None:
        return self.ids.get(key.strip().lower()) if key else None


def _level(spec: StepSpec, engineers: Engineers) -> LevelPlan:
    page = spec.page
    return LevelPlan(level=spec.level, delay=spec.after, target_kind=spec.notify, target_ref=spec.ref,
                     engineer_id=engineers.find(spec.engineer), message_template=spec.message, step_id=None,
                     page_provider=page.provider if page else "",
                     page_credential=page.credential if page else "",
                     page_priorities=tuple(page.priorities) if page else (), outside_hours=spec.outside_hours)


class PolicyBook:
    """Which snapshot a ticket of (tier, priority) gets under the proposal."""

    def __init__(self, config: SlaConfig):
        self.proposed = {tier.name: [ProposedPolicy(tier.name, p) for p in tier.policies]
                         for tier in config.tiers}
        self.engineers = Engineers()
        self._cache: dict[tuple[str, int, str], PolicySnapshot] = {}

    def names(self, tier: str) -> bool:
        return tier in self.proposed

    def snapshot(self, *, tier_id: int, tier: str, priority: str) -> PolicySnapshot:
        key = (tier, tier_id, priority)
        if key not in self._cache:
            self._cache[key] = self._snapshot(tier_id=tier_id, tier=tier, priority=priority)
        return self._cache[key]

    def _snapshot(self, *, tier_id: int, tier: str, priority: str) -> PolicySnapshot:
        if tier not in self.proposed:
            return policy_snapshot(policy_for(tier_id=tier_id, priority=priority), priority=priority)
        chosen = policy_pick(self.proposed[tier], priority=priority)
        if chosen is None:
            return policy_snapshot(None)
        ladder = chosen.spec.next_response
        return snapshot_build(
            policy=chosen, name=chosen.name,
            levels=levels_for_priority(tuple(_level(s, self.engineers) for s in chosen.spec.steps),
                                       priority=priority),
            next_levels=levels_for_priority(tuple(_level(s, self.engineers) for s in ladder.steps),
                                            priority=priority) if ladder else (),
        )

