"""With many armed tickets, the horizon job, the sweeper and the admin's breached filter never
read the escalation table by a sequential scan (the filter reads the tickets' breach times and
no level row at all).

The queries are the ones the code really runs (captured while it runs), explained by
PostgreSQL with statistics of 16,000 level rows, most of them far beyond the horizon.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escalation.factories import EscalationStepFactory, SlaPolicyFactory
from escalation.queueing import escalations_enqueue_horizon
from escalation.sweeping import escalations_sweep
from ops.testing.bulk import armed_tickets_insert
from tickets.factories import TierFactory, WatchedChannelFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

TICKETS = 4000


@pytest.fixture
def many_armed_tickets(db):
    if connection.vendor != "postgresql":
        pytest.skip("query plans are PostgreSQL's; the embedded SQLite run has no planner to ask")
    tier = TierFactory(name="Plans")
    policy = SlaPolicyFactory(tier=tier, priority="")
    for level, minutes in enumerate((10, 20, 35, 50), start=1):
        EscalationStepFactory(policy=policy, level=level, delay=timedelta(minutes=minutes))
    channel = WatchedChannelFactory(slack_channel_id="CPLANS", tier=tier)
    # Opened over the next day: every level beyond the horizon, as with a big backlog of armed tickets.
    armed_tickets_insert(channel=channel, policy=policy, count=TICKETS, opened_at=timezone.now(),
                         prefix="1700000000", spread=timedelta(days=1))
    return channel


def plans_of(queries: list[dict], *, table: str = "escalation_escalation") -> list[tuple[str, str]]:
    """(query, plan) of every captured SELECT that reads ``table``."""
    plans = []
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if sql.startswith("SELECT") and table in sql:
                cursor.execute("EXPLAIN " + sql)
                plans.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return plans


def assert_indexed(plans: list[tuple[str, str]], *, index: str) -> None:
    assert plans, "no query of the escalation table was captured"
    for sql, plan in plans:
        assert "Seq Scan on escalation_escalation" not in plan, f"{sql}\n{plan}"
    assert any(index in plan for _, plan in plans), f"{index} unused:\n" + "\n".join(p for _, p in plans)


def test_the_horizon_job_and_the_sweeper_use_the_state_and_due_time_index(many_armed_tickets):
    with CaptureQueriesContext(connection) as horizon:
        assert escalations_enqueue_horizon() == 0
    with CaptureQueriesContext(connection) as sweep:
        assert escalations_sweep().handled == 0
    assert_indexed(plans_of(horizon.captured_queries), index="escalation_state_due")
    assert_indexed(plans_of(sweep.captured_queries), index="escalation_state_due")


@pytest.mark.parametrize("breached", ["yes", "no"])
def test_the_admin_breached_filter_reads_breach_times_not_levels(many_armed_tickets, staff_client, breached):
    with CaptureQueriesContext(connection) as page:
        response = staff_client.get(f"/admin/tickets/ticket/?breached={breached}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == (0 if breached == "yes" else TICKETS)
    filtered = plans_of(page.captured_queries, table="escalation_ticketsla")
    assert filtered, "the filter did not read the tickets' breach times"
    for sql, plan in plans_of(page.captured_queries):
        assert "Seq Scan on escalation_escalation" not in plan, f"{sql}\n{plan}"
