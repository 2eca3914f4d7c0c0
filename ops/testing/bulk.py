"""Many armed tickets in seconds, for the scale tests and benchmarks (PostgreSQL only).

``ticket_arm`` takes a few milliseconds a ticket; 100,000 tickets through it would
take minutes. This writes the same rows (ticket, its SLA snapshot, one pending
level row per step, the 'opened' and 'armed' timeline entries) with one
``INSERT ... SELECT generate_series`` per table. The levels are not queued: use it
for tickets whose levels lie beyond the horizon, where a real ticket has no
Celery task either.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction

from escalation.models import SlaPolicy
from tickets.models import WatchedChannel


def armed_tickets_insert(
    *, channel: WatchedChannel, policy: SlaPolicy, count: int, opened_at: datetime, prefix: str,
    spread: timedelta = timedelta(0),
) -> int:
    """Insert ``count`` armed tickets opened from ``opened_at`` on (spread evenly over
    ``spread``), with ``policy``'s levels pending. ``prefix`` keeps their Slack ts unique."""
    if connection.vendor != "postgresql":
        raise RuntimeError("armed_tickets_insert uses generate_series: PostgreSQL only")
    steps = list(policy.steps.order_by("level"))
    step_seconds = spread.total_seconds() / max(count, 1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO tickets_ticket (channel_id, slack_ts, helpdesk_ticket_id, priority, ticket_type,
                text, author_slack_id, opened_at, state, responded_by, response_path, created_at)
            SELECT %s, %s || '.' || lpad(n::text, 6, '0'), %s || n, 'normal', '', 'bulk ticket',
                'UBULK', %s + n * make_interval(secs => %s), 'armed', '', '', now()
            FROM generate_series(1, %s) AS n
            """,
            [channel.pk, prefix, prefix, opened_at, step_seconds, count],
        )
        cursor.execute(
            """
            CREATE TEMP TABLE bulk_new ON COMMIT DROP AS
            SELECT id, opened_at FROM tickets_ticket WHERE channel_id = %s AND slack_ts LIKE %s
            """,
            [channel.pk, prefix + ".%"],
        )
        cursor.execute(
            """
            INSERT INTO escalation_ticketsla (ticket_id, policy_id, policy_name, snooze_minutes, armed_at)
            SELECT id, %s, %s, %s, now() FROM bulk_new
            """,
            [policy.pk, str(policy), policy.snooze_minutes],
        )
        for step in steps:
            cursor.execute(
                """
                INSERT INTO escalation_escalation (ticket_id, step_id, level, target_kind, target_ref,
                    engineer_id, message_template, due_at, state, version, celery_task_id, fired_via,
                    notified, slack_message_ts, attempts, last_error, created_at, updated_at)
                SELECT id, %s, %s, %s, %s, %s, %s, opened_at + %s, 'pending', 1, '', '', '[]', '', 0, '',
                    now(), now()
                FROM bulk_new
                """,
                [step.pk, step.level, step.target_kind, step.target_ref, step.engineer_id,
                 step.message_template, step.delay],
            )
        for kind in ("opened", "armed"):
            cursor.execute(
                """
                INSERT INTO tickets_ticketevent (ticket_id, kind, at, actor, details)
                SELECT id, %s, opened_at, 'system', '{}' FROM bulk_new
                """,
                [kind],
            )
        cursor.execute("ANALYZE tickets_ticket, escalation_escalation, tickets_ticketevent")
    return count
