"""Append to a ticket's timeline: every state change writes one row here."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from tickets.models import Ticket, TicketEvent

logger = logging.getLogger("slabuddy.timeline")


def timeline_record(
    *,
    ticket: Ticket,
    kind: str,
    at: datetime,
    actor: str = "system",
    level: int | None = None,
    details: dict[str, Any] | None = None,
) -> TicketEvent:
    event = TicketEvent.objects.create(
        ticket=ticket, kind=kind, at=at, actor=actor, level=level, details=details or {}
    )
    logger.info(
        "ticket_event ticket=%s channel=%s level=%s action=%s actor=%s",
        ticket.pk, ticket.channel.slack_channel_id, level if level is not None else "-", kind, actor,
    )
    return event
