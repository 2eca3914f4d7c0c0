"""Append to a ticket's timeline: every state change writes one row here."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from tickets.models import Ticket, TicketEvent

logger = logging.getLogger("slabuddy.timeline")


def _log(event: TicketEvent) -> None:
    logger.info(
        "ticket_event ticket=%s channel=%s level=%s action=%s actor=%s",
        event.ticket_id, event.ticket.channel.slack_channel_id,
        event.level if event.level is not None else "-", event.kind, event.actor,
    )


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
    _log(event)
    return event


def timeline_record_many(events: list[TicketEvent]) -> list[TicketEvent]:
    """Append several rows in one INSERT (a batch of new tickets); each is logged like one."""
    created = TicketEvent.objects.bulk_create(events)
    for event in created:
        _log(event)
    return created
