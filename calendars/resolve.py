"""Who an escalation level notifies: answered from the database, never the network.

``resolve_target`` is the one function the escalation engine calls. Until
calendar sources are configured, "on shift" means every active support
engineer and nobody is embedded; calendars/ (shifts, embedded assignments,
overrides) refines ``on_shift`` and ``embedded``.

A target that resolves to nobody falls through to the next wider audience,
and the resolution says so, so the message never silently pings no one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from calendars.models import Engineer, Role

# Widest last. A kind falls through to the kinds after it.
LADDER = ("on_shift_not_embedded", "on_shift", "user_group", "head_of_success")
LABELS = {
    "on_shift_not_embedded": "support engineers on shift who are not embedded",
    "on_shift": "support engineers on shift",
    "user_group": "the support user group",
    "head_of_success": "the head of success",
    "engineer": "the named engineer",
}


@dataclass(frozen=True)
class Person:
    name: str
    slack_user_id: str


@dataclass
class Resolution:
    """Whom to mention, and why if it is not what the step asked for."""

    kind: str  # the kind that actually resolved to someone ("" if nobody at all)
    people: list[Person] = field(default_factory=list)
    user_group_id: str = ""
    fell_through_from: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def mentions(self) -> list[str]:
        if self.user_group_id:
            return [f"<!subteam^{self.user_group_id}>"]
        return [f"<@{p.slack_user_id}>" for p in self.people]

    @property
    def notified(self) -> list[dict[str, str]]:
        """What the escalation row stores as 'whom it notified'."""
        if self.user_group_id:
            return [{"user_group": self.user_group_id}]
        return [{"name": p.name, "slack_user_id": p.slack_user_id} for p in self.people]

    @property
    def note(self) -> str:
        """A sentence for the message when the step's own target was empty."""
        parts = [f"Nobody resolved for {LABELS.get(k, k)}." for k in self.fell_through_from]
        if not self.mentions:
            parts.append("Nobody could be resolved at all: check the roster in the admin.")
        return " ".join(parts + self.warnings)


def _support_engineers():
    return Engineer.objects.filter(active=True, role=Role.SUPPORT_ENGINEER).exclude(
        slack_user_id__isnull=True
    )


def on_shift(at: datetime) -> list[Engineer]:
    """Support engineers on shift at ``at``."""
    return list(_support_engineers().order_by("name"))


def embedded(at: datetime) -> dict[int, str]:
    """Engineer id -> product team, for engineers embedded at ``at``."""
    return {}


def _people(engineers) -> list[Person]:
    return [Person(e.name, e.slack_user_id) for e in engineers if e.slack_user_id]


def _resolve_one(kind: str, ref: str, engineer_id: int | None, at: datetime) -> Resolution:
    if kind == "on_shift_not_embedded":
        away = embedded(at)
        return Resolution(kind, _people(e for e in on_shift(at) if e.pk not in away))
    if kind == "on_shift":
        return Resolution(kind, _people(on_shift(at)))
    if kind == "user_group":
        group = ref or settings.SLACK_SUPPORT_USERGROUP_ID
        return Resolution(kind, user_group_id=group or "")
    if kind == "head_of_success":
        heads = Engineer.objects.filter(active=True, role=Role.HEAD_OF_SUCCESS).order_by("name")
        return Resolution(kind, _people(heads))
    if kind == "engineer":
        chosen = Engineer.objects.filter(pk=engineer_id, active=True)
        return Resolution(kind, _people(chosen))
    raise ValueError(f"unknown target kind {kind!r}")


def resolve_target(*, kind: str, ref: str = "", engineer_id: int | None = None, at: datetime) -> Resolution:
    """Resolve a step's target at ``at``, falling through to wider audiences."""
    tried: list[str] = []
    # A specific engineer falls through to the head of success; ladder kinds to the wider ones.
    chain = [kind] + ([k for k in LADDER[LADDER.index(kind) + 1:]] if kind in LADDER else ["head_of_success"])
    for candidate in chain:
        resolution = _resolve_one(candidate, ref if candidate == kind else "", engineer_id, at)
        if resolution.mentions:
            resolution.fell_through_from = tried
            return resolution
        tried.append(candidate)
    return Resolution("", fell_through_from=tried)
