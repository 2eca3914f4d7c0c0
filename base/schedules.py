"""The shape of a periodic job. Each app lists its own in ``<app>/schedules.py``;
the operations app collects them and creates them in django-celery-beat."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int
    description: str
    queue: str | None = None
