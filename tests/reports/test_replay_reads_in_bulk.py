"""A replay reads a range's tickets, timelines and roster in bulk: the number of queries does not grow
with the number of tickets."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ops.demo.history import demo_history_tiers, demo_roster_history, past_tickets_seed
from ops.sla_config.exporting import config_dump, config_export
from reports.replay.policy_file import policy_file_read
from reports.replay.running import replay_run

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _queries(config, *, days: int) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        report = replay_run(since=NOW - timedelta(days=days), until=NOW, config=config, now=NOW)
    assert report.changed == []
    return report.tickets, len(captured.captured_queries)


def test_the_queries_do_not_grow_with_the_tickets():
    channels = demo_history_tiers()
    demo_roster_history(start=NOW - timedelta(days=20), now=NOW)
    past_tickets_seed(channels=channels, start=NOW - timedelta(days=20), end=NOW - timedelta(hours=1),
                      count=200, now=NOW, seed=1)
    config = policy_file_read(config_dump(config_export()))
    few, few_queries = _queries(config, days=2)
    every, every_queries = _queries(config, days=20)
    assert few < 40 and every == 200
    assert few_queries == every_queries <= 20
