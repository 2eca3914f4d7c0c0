"""Make the database match an ``sla_config`` file: one transaction, idempotent, with a change list.

What the file names, it describes completely: a listed tier's policies are
exactly the file's (others are deleted), a policy's steps are exactly the
file's, a tier's hand-entered holidays are exactly the file's. What the file
does not name (other tiers, channels, engineers, calendar sources) is left as
it is: importing never deletes a tier, a channel or an engineer. Tickets
already armed keep their snapshot; changes apply to tickets armed later.

A dry run makes the same changes and rolls them back, so it reports exactly
what a real import would do.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from calendars.models import CalendarSource, Engineer, Purpose
from escalation.models import EscalationStep, NextResponseStep, SlaPolicy
from escalation.sla_config_schema import (
    ChannelSpec,
    EngineerSpec,
    HolidaysSpec,
    PageSpec,
    PolicySpec,
    SlaConfig,
    StepSpec,
    TierSpec,
    duration_text,
    known_references,  # noqa: F401  (the sla_config command reads it from here)
)
from escalation.sla_config_tiers import holiday_source_find, holiday_source_lookup, tier_fields
from tickets.models import Tier, TierHoliday, WatchedChannel


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if hasattr(value, "total_seconds"):
        return duration_text(value)
    if isinstance(value, models.Model):
        return str(value)
    return repr(value) if isinstance(value, str) else str(value)


class Changes(list):
    """What an import did (or would do), one line per change, for people."""

    def save(self, obj: models.Model, wanted: dict[str, Any], label: str) -> models.Model:
        """Create ``obj`` or update the fields that differ, recording each change."""
        if obj.pk is None:
            for name, value in wanted.items():
                setattr(obj, name, value)
            obj.save()
            self.append(f"create {label}")
            return obj
        differ = [name for name, value in wanted.items() if getattr(obj, name) != value]
        for name in differ:
            self.append(f"update {label}: {name} {_shown(getattr(obj, name))} -> {_shown(wanted[name])}")
            setattr(obj, name, wanted[name])
        if differ:
            obj.save()
        return obj

    def delete(self, obj: models.Model, label: str) -> None:
        obj.delete()
        self.append(f"delete {label}")


def _engineer_find(key: str) -> Engineer | None:
    key = key.strip()
    return (
        Engineer.objects.filter(email__iexact=key).first()
        or Engineer.objects.filter(slack_user_id=key).first()
        or Engineer.objects.filter(name=key).first()
    )


def _engineer(spec: EngineerSpec, changes: Changes) -> None:
    found = None
    if spec.email:
        found = Engineer.objects.filter(email__iexact=spec.email).first()
    if found is None and spec.slack_id:
        found = Engineer.objects.filter(slack_user_id=spec.slack_id).first()
    if found is None and not spec.email and not spec.slack_id:
        found = Engineer.objects.filter(
            name=spec.name, email__isnull=True, slack_user_id__isnull=True
        ).first()
    changes.save(
        found or Engineer(),
        {"name": spec.name, "email": spec.email or None, "slack_user_id": spec.slack_id or None,
         "role": spec.role, "active": spec.active},
        f"engineer {spec.name}",
    )


def _holiday_calendar(tier: Tier, spec: HolidaysSpec, changes: Changes) -> CalendarSource | None:
    lookup = holiday_source_lookup(spec)
    if lookup is None:
        return None
    found = holiday_source_find(spec)
    if found is not None:
        return found
    kind, fields = lookup
    return changes.save(
        CalendarSource(),
        {"name": f"{tier.name} holidays", "kind": kind, "purpose": Purpose.HOLIDAYS,
         "time_zone": tier.time_zone, **fields},
        f"holiday calendar source {tier.name} holidays",
    )


def _holidays(tier: Tier, spec: HolidaysSpec, changes: Changes) -> None:
    wanted = {entry.day: entry.name for entry in spec.dates}
    for holiday in TierHoliday.objects.filter(tier=tier):
        if holiday.date not in wanted:
            changes.delete(holiday, f"holiday {holiday.date} of tier {tier.name}")
    for day, name in sorted(wanted.items()):
        found = TierHoliday.objects.filter(tier=tier, date=day).first()
        changes.save(found or TierHoliday(tier=tier), {"date": day, "name": name},
                     f"holiday {day} of tier {tier.name}")


def _steps(policy: SlaPolicy, specs: list[StepSpec], label: str, changes: Changes, *,
           model: type[EscalationStep] | type[NextResponseStep] = EscalationStep) -> None:
    """Make ``policy``'s first-response (or, with ``model``, next-response) ladder the file's."""
    existing = model.objects.filter(policy=policy)
    wanted = {spec.level for spec in specs}
    for step in existing:
        if step.level not in wanted:
            changes.delete(step, f"level {step.level} of {label}")
    for spec in sorted(specs, key=lambda s: s.level):
        found = existing.filter(level=spec.level).first()
        engineer = _engineer_find(spec.engineer) if spec.engineer else None
        page = spec.page or PageSpec(provider="")
        changes.save(
            found or model(policy=policy),
            {"level": spec.level, "delay": spec.after, "target_kind": spec.notify, "target_ref": spec.ref,
             "engineer": engineer, "outside_hours": spec.outside_hours, "message_template": spec.message,
             "page_provider": page.provider, "page_credential": page.credential,
             "page_priorities": list(page.priorities)},
            f"level {spec.level} of {label}",
        )


def _policies(tier: Tier, specs: list[PolicySpec], changes: Changes) -> None:
    wanted = {spec.priority for spec in specs}
    for policy in SlaPolicy.objects.filter(tier=tier):
        if policy.priority not in wanted:
            changes.delete(policy, f"policy {policy}")
    for spec in specs:
        label = f"policy {tier.name} ({spec.priority or 'default'})"
        found = SlaPolicy.objects.filter(tier=tier, priority=spec.priority).first()
        policy = changes.save(
            found or SlaPolicy(tier=tier),
            {"priority": spec.priority, "name": spec.name, "clock": spec.clock,
             "first_response_target": spec.first_response_target, "snooze_minutes": spec.snooze_minutes,
             "snoozes_extend_target": spec.snoozes_extend_target, "max_total_snooze": spec.max_total_snooze,
             "exclude_types": list(spec.exclude_types), "active": spec.active,
             "next_response_target": spec.next_response.target if spec.next_response else None},
            label,
        )
        _steps(policy, spec.steps, label, changes)
        _steps(policy, spec.next_response.steps if spec.next_response else [], f"next response of {label}",
               changes, model=NextResponseStep)


def _tier(spec: TierSpec, changes: Changes) -> None:
    tier = Tier.objects.filter(name=spec.name).first() or Tier()
    label = f"tier {spec.name}"
    changes.save(tier, tier_fields(spec), label)
    changes.save(tier, {"holiday_calendar": _holiday_calendar(tier, spec.holidays, changes)}, label)
    _holidays(tier, spec.holidays, changes)
    _policies(tier, spec.policies, changes)


def _channel(spec: ChannelSpec, changes: Changes) -> None:
    found = WatchedChannel.objects.filter(slack_channel_id=spec.id).first()
    changes.save(
        found or WatchedChannel(),
        {"slack_channel_id": spec.id, "name": spec.name, "tier": Tier.objects.get(name=spec.tier),
         "intake_mode": spec.intake, "response_mode": spec.response, "allowed_bot_ids": spec.allowed_bot_ids,
         "lookback_minutes": spec.lookback_minutes, "active": spec.active,
         "close_reaction": spec.close_reaction, "waiting_reaction": spec.waiting_reaction},
        f"channel #{spec.name} ({spec.id})",
    )


def config_apply(config: SlaConfig, *, dry_run: bool = False) -> list[str]:
    """Apply a checked file (schema.config_read). Returns the changes made (or that a real
    import would make, with ``dry_run``); an empty list means the database already matches."""
    changes = Changes()
    try:
        with transaction.atomic():
            for engineer in config.engineers:
                _engineer(engineer, changes)
            for tier in config.tiers:
                _tier(tier, changes)
            for channel in config.channels:
                _channel(channel, changes)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return list(changes)
