"""The beat heartbeat: a periodic task writes a timestamp row; /readyz reads it."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

from django.conf import settings

from base.schedules import Schedule
from ops.models import Heartbeat

BEAT = "beat"


def schedules() -> list[Schedule]:
    return [
        Schedule(
            name="SLA Buddy heartbeat",
            task="ops.tasks.heartbeat",
            every_seconds=settings.HEARTBEAT_SECONDS,
            description="Writes a timestamp row so /readyz can tell that beat and a worker are alive.",
            queue="default",
        )
    ]


def heartbeat_record(*, name: str = BEAT, now: datetime | None = None) -> Heartbeat:
    row, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"at": now or datetime.now(UTC), "hostname": socket.gethostname()}
    )
    return row


def heartbeat_age(*, name: str = BEAT, now: datetime | None = None) -> timedelta | None:
    """How long ago the heartbeat was written; None if never."""
    at = Heartbeat.objects.filter(name=name).values_list("at", flat=True).first()
    if at is None:
        return None
    return max((now or datetime.now(UTC)) - at, timedelta(0))
