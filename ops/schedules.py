"""The periodic jobs SLA Buddy needs, created in django-celery-beat's tables.

``manage.py ensure_schedules`` adds any that are missing and never changes one
that exists, so intervals edited in the admin stick. Each app lists its own
jobs in ``<app>/schedules.py`` as ``def schedules() -> list[Schedule]``.
"""

from __future__ import annotations

from base.schedules import Schedule
from calendars import schedules as calendar_schedules
from escalation import schedules as escalation_schedules
from ops import heartbeat
from reports import schedules as report_schedules
from slackbot import schedules as slack_schedules

SCHEDULE_SOURCES = (slack_schedules, escalation_schedules, calendar_schedules, report_schedules, heartbeat)


def default_schedules() -> list[Schedule]:
    return [schedule for source in SCHEDULE_SOURCES for schedule in source.schedules()]
