"""Many armed tickets in seconds, for the scale tests and benchmarks (PostgreSQL only).

``ticket_arm`` takes a few milliseconds a ticket; 100,000 tickets through it would
take minutes. This writes the same rows (ticket, its SLA snapshot, one pending
level row per step, the 'opened' and 'armed' timeline entries) with one
``INSERT ... SELECT generate_series`` per table. The levels are not queued: use it
for tickets whose levels lie beyond the horizon, where a real ticket has no
Celery task either. Columns it does not name get the model field's default, so
fields added later need no change here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, models, transaction

from escalation.models import Escalation, SlaPolicy, TicketSla
from tickets.models import Ticket, TicketEvent, WatchedChannel


def _insert_select(cursor, model: type[models.Model], given: dict[str, tuple[str, list]], source: str,
                   source_params: list) -> None:
    """INSERT INTO model's table (...) SELECT <given expressions, defaults for the rest> <source>."""
    columns, expressions, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.column in given:
            sql, values = given[field.column]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            sql, values = "now()", []
        elif field.null and not field.has_default():
            continue
        else:
            sql, values = "%s", [field.get_db_prep_save(field.get_default(), connection)]
        columns.append(connection.ops.quote_name(field.column))
        expressions.append(sql)
        params += values
    cursor.execute(
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(expressions)} {source}",
        params + source_params,
    )


def armed_tickets_insert(
    *, channel: WatchedChannel, policy: SlaPolicy, count: int, opened_at: datetime, prefix: str,
    spread: timedelta = timedelta(0),
) -> int:
    """Insert ``count`` armed tickets opened from ``opened_at`` on (spread evenly over
    ``spread``), with ``policy``'s levels pending. ``prefix`` keeps their Slack ts unique."""
    if connection.vendor != "postgresql":
        raise RuntimeError("armed_tickets_insert uses generate_series: PostgreSQL only")
    step_seconds = spread.total_seconds() / max(count, 1)
    new = "FROM bulk_new"
    with transaction.atomic(), connection.cursor() as cursor:
        _insert_select(cursor, Ticket, {
            "channel_id": ("%s", [channel.pk]),
            "slack_ts": ("%s || '.' || lpad(n::text, 6, '0')", [prefix]),
            "helpdesk_ticket_id": ("%s || n", [prefix]),
            "priority": ("'normal'", []),
            "text": ("'bulk ticket'", []),
            "opened_at": ("%s + n * make_interval(secs => %s)", [opened_at, step_seconds]),
            "state": ("'armed'", []),
        }, "FROM generate_series(1, %s) AS n", [count])
        cursor.execute(
            "CREATE TEMP TABLE bulk_new ON COMMIT DROP AS SELECT id, opened_at FROM tickets_ticket "
            "WHERE channel_id = %s AND slack_ts LIKE %s",
            [channel.pk, prefix + ".%"],
        )
        _insert_select(cursor, TicketSla, {
            "ticket_id": ("id", []), "policy_id": ("%s", [policy.pk]), "policy_name": ("%s", [str(policy)]),
            "snooze_minutes": ("%s", [policy.snooze_minutes]), "armed_at": ("now()", []),
        }, new, [])
        for step in policy.steps.order_by("level"):
            _insert_select(cursor, Escalation, {
                "ticket_id": ("id", []), "step_id": ("%s", [step.pk]), "level": ("%s", [step.level]),
                "target_kind": ("%s", [step.target_kind]), "target_ref": ("%s", [step.target_ref]),
                "engineer_id": ("%s", [step.engineer_id]),
                "message_template": ("%s", [step.message_template]),
                "due_at": ("opened_at + %s", [step.delay]), "state": ("'pending'", []),
            }, new, [])
        for kind in ("opened", "armed"):
            _insert_select(cursor, TicketEvent, {
                "ticket_id": ("id", []), "kind": ("%s", [kind]), "at": ("opened_at", []),
            }, new, [])
        cursor.execute("ANALYZE tickets_ticket, escalation_escalation, tickets_ticketevent")
    return count
