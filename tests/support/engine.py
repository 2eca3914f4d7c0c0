"""Running the engine's services as a worker would, at a frozen moment."""

from __future__ import annotations

from datetime import datetime

import time_machine

from escalation.firing import escalation_fire
from escalation.models import Escalation


def fire(row: Escalation, *, at: datetime, version: int | None = None):
    """Run the level's task as it would run at ``at`` (with the row's current version by default)."""
    if version is None:
        row.refresh_from_db()
        version = row.version
    with time_machine.travel(at, tick=False):
        return escalation_fire(escalation_id=row.pk, version=version)


def rows(ticket) -> list[Escalation]:
    return list(Escalation.objects.filter(ticket=ticket).order_by("level"))
