"""The configuration in the database, as an ``sla_config`` document (see schema.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import yaml

from calendars.models import Engineer, SourceKind
from calendars.targets import TargetKind
from escalation.models import SlaPolicy
from escalation.sla_config_schema import duration_text
from tickets.hours import weekly_format, weekly_parse
from tickets.models import Tier, WatchedChannel


def _engineer_ref(engineer: Engineer) -> str:
    return engineer.email or engineer.slack_user_id or engineer.name


def _policy(policy: SlaPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {"priority": policy.priority}
    if policy.name:
        out["name"] = policy.name
    out["clock"] = policy.clock
    if policy.first_response_target is not None:
        out["first_response_target"] = duration_text(policy.first_response_target)
    out["snooze"] = duration_text_minutes(policy.snooze_minutes)
    if policy.snoozes_extend_target:
        out["snoozes_extend_target"] = True
    if policy.max_total_snooze is not None:
        out["max_total_snooze"] = duration_text(policy.max_total_snooze)
    out["exclude_types"] = list(policy.exclude_types or [])
    if not policy.active:
        out["active"] = False
    out["steps"] = _steps(policy.steps)
    if policy.next_steps.exists():
        ladder: dict[str, Any] = {}
        if policy.next_response_target is not None:
            ladder["target"] = duration_text(policy.next_response_target)
        ladder["steps"] = _steps(policy.next_steps)
        out["next_response"] = ladder
    return out


def _steps(steps) -> list[dict[str, Any]]:
    out = []
    for step in steps.select_related("engineer").order_by("level"):
        item: dict[str, Any] = {"level": step.level, "after": duration_text(step.delay),
                                "notify": step.target_kind}
        if step.target_ref:
            item["ref"] = step.target_ref
        if step.engineer is not None:
            item["engineer"] = _engineer_ref(step.engineer)
        if step.outside_hours:
            item["outside_hours"] = True
        if step.target_kind == TargetKind.PAGE:
            page: dict[str, Any] = {"provider": step.page_provider}
            if step.page_credential:
                page["credential"] = step.page_credential
            if step.page_priorities:
                page["priorities"] = list(step.page_priorities)
            item["page"] = page
        if step.message_template:
            item["message"] = step.message_template
        out.append(item)
    return out


def duration_text_minutes(minutes: int) -> str:
    return duration_text(timedelta(minutes=minutes))


def _holidays(tier: Tier) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dates = [
        {"date": h.date.isoformat(), "name": h.name} if h.name else h.date.isoformat()
        for h in tier.holidays.order_by("date")
    ]
    if dates:
        out["dates"] = dates
    if tier.holiday_country:
        out["country"] = tier.holiday_country
    if tier.holiday_subdivision:
        out["subdivision"] = tier.holiday_subdivision
    source = tier.holiday_calendar
    if source is not None:
        if source.kind == SourceKind.ICAL:
            out["ical"] = source.ical_url
        else:
            out["google_calendar"] = source.google_calendar_id
    return out


def _tier(tier: Tier) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tier.name, "time_zone": tier.time_zone}
    if tier.description:
        out["description"] = tier.description
    if tier.business_hours is not None:
        out["business_hours"] = weekly_format(weekly_parse(tier.business_hours))
    holidays = _holidays(tier)
    if holidays:
        out["holidays"] = holidays
    out["policies"] = [_policy(p) for p in tier.policies.order_by("priority")]
    return out


def _channel(channel: WatchedChannel) -> dict[str, Any]:
    out: dict[str, Any] = {"id": channel.slack_channel_id, "name": channel.name, "tier": channel.tier.name,
                           "intake": channel.intake_mode, "response": channel.response_mode}
    if channel.allowed_bot_ids:
        out["allowed_bot_ids"] = channel.allowed_bot_ids
    if channel.lookback_minutes != 120:
        out["lookback_minutes"] = channel.lookback_minutes
    if not channel.active:
        out["active"] = False
    if channel.close_reaction:
        out["close_reaction"] = channel.close_reaction
    if channel.waiting_reaction:
        out["waiting_reaction"] = channel.waiting_reaction
    return out


def _engineer(engineer: Engineer) -> dict[str, Any]:
    out: dict[str, Any] = {"name": engineer.name}
    if engineer.email:
        out["email"] = engineer.email
    if engineer.slack_user_id:
        out["slack_id"] = engineer.slack_user_id
    out["role"] = engineer.role
    if not engineer.active:
        out["active"] = False
    return out


def config_export() -> dict[str, Any]:
    """Every tier, watched channel and engineer, in the file format."""
    return {
        "tiers": [_tier(t) for t in Tier.objects.select_related("holiday_calendar").order_by("name")],
        "channels": [_channel(c) for c in WatchedChannel.objects.select_related("tier").order_by("name")],
        "engineers": [_engineer(e) for e in Engineer.objects.order_by("name", "pk")],
    }


class _Dumper(yaml.SafeDumper):
    """Small mappings and lists of plain values on one line ({level: 1, after: 1h, ...}),
    the way people write them; everything else in block style."""

    def represent_mapping(self, tag, mapping, flow_style=None):
        flat = all(not isinstance(v, dict | list) or _plain_list(v) for v in dict(mapping).values())
        short = flat and len(str(mapping)) < 100
        return super().represent_mapping(tag, mapping, flow_style=True if short else False)

    def represent_sequence(self, tag, sequence, flow_style=None):
        return super().represent_sequence(tag, sequence, flow_style=True if _plain_list(sequence) else False)


def _plain_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)


def config_dump(document: dict[str, Any]) -> str:
    header = "# SLA Buddy configuration: python manage.py sla_config import FILE [--dry-run]\n"
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
    return header + body
