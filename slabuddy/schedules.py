"""The periodic jobs SLA Buddy needs, created in django-celery-beat's tables.

``manage.py ensure_schedules`` adds any that are missing and never changes one
that exists, so intervals edited in the admin stick. Each app lists its own
jobs in ``<app>/schedules.py`` as ``def schedules() -> list[Schedule]``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

APPS_WITH_SCHEDULES = ("tickets", "escalation", "calendars", "slabuddy.heartbeat")


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int
    description: str
    queue: str | None = None


def default_schedules() -> list[Schedule]:
    found: list[Schedule] = []
    for app in APPS_WITH_SCHEDULES:
        module_name = app if "." in app else f"{app}.schedules"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        found.extend(module.schedules())
    return found
