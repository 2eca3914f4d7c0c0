"""Periodic jobs of the reports app (created by ``manage.py ensure_schedules``)."""

from __future__ import annotations

from base.schedules import Schedule


def schedules() -> list[Schedule]:
    return [
        Schedule(
            name="reports: weekly digests",
            task="reports.tasks.digests_send_due",
            every_seconds=300,
            description="Posts last week's SLA digest in each enabled digest channel once its Monday 09:00 "
            "has come (once per channel and week, however often it runs), and retries one not sent yet.",
        ),
    ]
