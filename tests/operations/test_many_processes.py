"""Many processes, one truth: three workers on "three hosts", two web processes and beat, with
signed Slack events coming in steadily, while a worker is SIGKILLed and restarted, the broker
is flushed and a second beat runs by mistake. Every level still posts exactly once.

It needs what production runs on (PostgreSQL and Redis: CI's second run) and about two and a
half minutes. Lag is printed, not asserted: bench/cluster.py measures it (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from django.conf import settings as django_settings
from django.db import connection

from base.fake_slack import BOT_USER_ID
from ops.testing.cluster import ChaosPlan, ChaosRun, chaos_setup, chaos_time, process_environment
from ops.testing.worker import database_url_for_worker, purge_broker
from tests.support.runall import free_port

pytestmark = [pytest.mark.slow, pytest.mark.worker]

SECRET = "chaos-signing-secret"


@pytest.fixture
def production_stores(transactional_db):
    if connection.vendor != "postgresql" or not django_settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("several hosts share PostgreSQL and Redis: this runs in CI's PostgreSQL + Redis run")
    purge_broker()
    yield
    purge_broker()


def test_every_level_posts_exactly_once_through_kills_flushes_and_two_beats(
    production_stores, fake_slack, tmp_path
):
    plan = ChaosPlan()
    chaos_setup(plan)
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_worker(),
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "SLABUDDY_DATA_DIR": str(django_settings.DATA_DIR),
        "SLACK_API_BASE_URL": fake_slack.base_url,
        "SLACK_BOT_TOKEN": "xoxb-chaos",
        "SLACK_BOT_USER_ID": BOT_USER_ID,
        "SLACK_SIGNING_SECRET": SECRET,
        **process_environment(plan),
    }
    posts = lambda: [  # noqa: E731
        (c.args["metadata"]["event_payload"]["key"], c.at)
        for c in fake_slack.calls("chat.postMessage") if c.status == 200
    ]
    run = ChaosRun(
        plan=plan, env=env, log_dir=tmp_path, posts=posts, broker_flush=purge_broker,
        thread_add=lambda channel, ts: fake_slack.add_message(channel, "ticket", ts=ts, user="UCUSTOMER"),
    )
    try:
        run.start(ports=[free_port() for _ in range(plan.webs)])
        result = run.run(secret=SECRET)
    finally:
        run.stop()

    events = "; ".join(f"{what} at {chaos_time(at)}" for what, at in result.events.items())
    print(f"\n{events}\nlag, all levels: {result.lag_summary()}")
    flushed = result.events["broker flushed"]
    print(f"lag, levels due after the broker flush: {result.lag_summary(since=flushed)}")
    print(f"fired by: {dict(result.fired_via)}; Slack-style retries of events: {result.slack_retries}")

    sent = int(plan.events_per_second * plan.seconds)
    assert result.events_sent == result.events_acknowledged == sent
    assert result.tickets == sent and result.duplicate_tickets == 0
    assert result.levels_expected == sent * len(plan.level_delays)
    assert result.lost == [] and result.duplicated == []
    assert result.posts_per_level == Counter({1: result.levels_expected})
    assert result.levels_fired == result.levels_expected
    assert set(result.fired_via) <= {"task", "sweeper"}
    assert {"worker killed and restarted", "broker flushed", "second beat started"} <= set(result.events)
    assert result.beats_overlapped
