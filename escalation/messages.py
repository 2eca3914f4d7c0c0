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
    "or press *Snooze*."
)
PAGED_TEMPLATE = (
    ":pager: *Level {level}*: paged {paged}. This ticket has waited {waited} without a response.\n"
    "Next: {next_step}.\n"
    "Snooze every pending level by {snooze_minutes} min: @mention me in this thread or press *Snooze*."
)
# (a page step's thread message: escalation/paging.py)
SNOOZE_ACTION_ID = "snooze"
WAITING_ACTION_ID = "waiting"
CLOSE_ACTION_ID = "close"
RESUME_ACTION_ID = "resume"
# Every button SLA Buddy puts on an escalation message (slackbot/interactions.py handles them).
ACTION_IDS = (SNOOZE_ACTION_ID, WAITING_ACTION_ID, CLOSE_ACTION_ID, RESUME_ACTION_ID)
ACTIONS_BLOCK_ID = "slabuddy_actions"


_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt);)")


def slack_escaped(value: str) -> str:
    """Slack's escaping of ``&``, ``<`` and ``>``: the value shows as text, never as a mention or link.

    Helpdesk messages reach us already escaped by Slack (``&amp;``, ``&lt;``), so
    those entities are kept as they are rather than escaped twice.
    """
    return _BARE_AMPERSAND.sub("&amp;", value).replace("<", "&lt;").replace(">", "&gt;")


def _helpdesk_values(*, ticket_id: str, priority: str, tier: str) -> dict[str, str]:
    """The template values that come from outside SLA Buddy's own rendering, escaped."""
    return {
        "ticket_id": slack_escaped(ticket_id),
        "priority": slack_escaped(priority or "unset"),
        "tier": slack_escaped(tier),
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
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]
    blocks += lifecycle_buttons(state="armed", ticket_pk=ticket_pk, snooze_minutes=snooze_minutes)
    return RenderedMessage(text=text, blocks=blocks)


def _button(action_id: str, label: str, ticket_pk: int, style: str = "") -> dict[str, Any]:
    button = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label},
              "value": str(ticket_pk)}
    if style:
        button["style"] = style
    return button


def lifecycle_buttons(*, state: str, ticket_pk: int, snooze_minutes: int) -> list[dict[str, Any]]:
    """The buttons an escalation message shows for the ticket's state (a list of 0 or 1 block):
    armed: Snooze, Waiting on customer, Close; waiting: Resume, Close; answered or closed: none."""
    if state == "armed":
        elements = [_button(SNOOZE_ACTION_ID, f"Snooze {snooze_minutes} min", ticket_pk),
                    _button(WAITING_ACTION_ID, "Waiting on customer", ticket_pk),
                    _button(CLOSE_ACTION_ID, "Close", ticket_pk)]
    elif state == "waiting":
        elements = [_button(RESUME_ACTION_ID, "Resume", ticket_pk, "primary"),
                    _button(CLOSE_ACTION_ID, "Close", ticket_pk)]
    else:
        return []
    return [{"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": elements}]
