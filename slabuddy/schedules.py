"""The periodic jobs SLA Buddy needs, created in django-celery-beat's tables.

``manage.py ensure_schedules`` adds any that are missing and never changes one
that exists, so intervals edited in the admin stick. Each app appends its jobs
here; the interval may come from a setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int
    description: str
    queue: str | None = None


def default_schedules() -> list[Schedule]:
    # Apps register their periodic jobs here as they gain them.
    schedules: list[Schedule] = []
    _ = settings  # intervals come from settings; see each entry
    return schedules
