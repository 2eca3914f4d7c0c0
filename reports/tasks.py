"""Thin Celery tasks of the reports app."""

from __future__ import annotations

from celery import shared_task

from reports.digest import digests_send_due as send_due


@shared_task(name="reports.tasks.digests_send_due", ignore_result=True)
def digests_send_due() -> dict[str, int]:
    """Beat: the weekly digests whose Monday 09:00 has come, once per channel and week."""
    run = send_due()
    return {"recorded": run.recorded, "sent": run.sent}
