"""The text and Block Kit of an escalation message. Pure functions, no I/O."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from base.formatting import clock_text, duration_text
from calendars.targets import LABELS
from escalation.breach import breach_text

logger = logging.getLogger("slabuddy.escalation")

DEFAULT_TEMPLATE = (
    ":rotating_light: *Level {level} escalation*: {mentions} this ticket has waited "
    "{waited} without a response and {breach}.\n"
    "{note}"
    "Next: {next_step}.\n"
    "Snooze every pending level by {snooze_minutes} min: @mention me in this thread "
    "or press the button."
)
SNOOZE_ACTION_ID = "snooze"


_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt);)")


def _slack_escaped(value: str) -> str:
    """Slack's escaping of ``&``, ``<`` and ``>``: the value shows as text, never as a mention or link.

    Helpdesk messages reach us already escaped by Slack (``&amp;``, ``&lt;``), so
    those entities are kept as they are rather than escaped twice.
    """
    return _BARE_AMPERSAND.sub("&amp;", value).replace("<", "&lt;").replace(">", "&gt;")


def _helpdesk_values(*, ticket_id: str, priority: str, tier: str) -> dict[str, str]:
    """The template values that come from outside SLA Buddy's own rendering, escaped."""
    return {
        "ticket_id": _slack_escaped(ticket_id),
        "priority": _slack_escaped(priority or "unset"),
        "tier": _slack_escaped(tier),
    }


class _KeepUnknown(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class NextStep:
    level: int
    due_at: datetime
    target_kind: str


@dataclass(frozen=True)
class RenderedMessage:
    text: str
    blocks: list[dict[str, Any]]


def render_escalation(
    *,
    template: str,
    level: int,
    mentions: list[str],
    note: str,
    opened_at: datetime,
    now: datetime,
    next_step: NextStep | None,
    snooze_minutes: int,
    ticket_pk: int,
    ticket_id: str,
    tier: str,
    priority: str,
    time_zone: str,
    breach_at: datetime | None = None,
) -> RenderedMessage:
    if next_step is None:
        next_text = "this was the last level"
    else:
        target = LABELS.get(next_step.target_kind, next_step.target_kind)
        when = clock_text(next_step.due_at, time_zone=time_zone, now=now)
        next_text = f"level {next_step.level} ({target}) at {when}"
    values = _KeepUnknown(
        level=level,
        mentions=" ".join(mentions) or "nobody could be resolved,",
        waited=duration_text(now - opened_at),
        breach=breach_text(breach_at, now=now),
        next_step=next_text,
        snooze_minutes=snooze_minutes,
        ticket_link=f"{settings.SITE_URL}/admin/tickets/ticket/{ticket_pk}/change/",
        note=f"_{note}_\n" if note else "",
        **_helpdesk_values(ticket_id=ticket_id, priority=priority, tier=tier),
    )
    try:
        text = (template or DEFAULT_TEMPLATE).format_map(values)
    except (ValueError, IndexError, AttributeError, KeyError) as exc:
        # A broken template in the admin must not stop an escalation.
        logger.warning("escalation template is invalid (%s); using the default", exc)
        text = DEFAULT_TEMPLATE.format_map(values)
    text = text.strip()
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": SNOOZE_ACTION_ID,
                    "text": {"type": "plain_text", "text": f"Snooze {snooze_minutes} min"},
                    "value": str(ticket_pk),
                }
            ],
        },
    ]
    return RenderedMessage(text=text, blocks=blocks)
