"""Periodic jobs of the escalation engine (created by ``manage.py ensure_schedules``)."""

from __future__ import annotations

from django.conf import settings

from base.schedules import Schedule


def schedules() -> list[Schedule]:
    horizon = settings.ESCALATION_HORIZON_SECONDS
    return [
        Schedule(
            name="escalation: sweep due levels",
            task="escalation.tasks.escalations_sweep",
            every_seconds=settings.ESCALATION_SWEEP_SECONDS,
            description="Fires every level that is due and still pending, whatever happened "
            "to its delayed task (broker flushed, worker killed, publish failed).",
            queue="escalation",
        ),
        Schedule(
            name="escalation: queue levels entering the horizon",
            task="escalation.tasks.escalations_enqueue_horizon",
            # Often enough that a level is queued well before it is due.
            every_seconds=max(10, horizon // 5),
            description=f"Gives levels due within {horizon} s (ESCALATION_HORIZON_SECONDS) "
            "their delayed Celery task; later ones wait in the database.",
            queue="escalation",
        ),
        Schedule(
            name="escalation: resolve pages",
            task="escalation.tasks.pages_resolve_pending",
            every_seconds=60,
            description="Resolves the PagerDuty / OnCall / webhook pages of answered tickets "
            "whose resolve did not go out at once (pager down, rate limited, task lost).",
            queue="escalation",
        ),
        Schedule(
            name="escalation: update threads",
            task="escalation.tasks.thread_updates_send_pending",
            every_seconds=60,
            description="Updates escalation messages (answered, closed, waiting, resumed) whose "
            "chat.update did not go out at once (Slack rate limited or down, task lost).",
            queue="escalation",
        ),
        Schedule(
            name="escalation: check for duplicate posts",
            task="escalation.tasks.outbox_duplicates_check_due",
            every_seconds=30,
            description="Looks again in the thread of every message posted after a timeout or 5xx "
            "(SLACK_DUPLICATE_CHECK_SECONDS later) and deletes a later message with the same key.",
            queue="escalation",
        ),
    ]
