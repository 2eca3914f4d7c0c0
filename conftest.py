"""Shared pytest fixtures. App-specific ones live in each app's tests/."""

import pytest

from base.fake_pager import FakePager
from base.fake_slack import FakeSlack
from ops.testing.worker import CeleryWorker, purge_broker
from tests.support.pager import WEBHOOK_PAGE_SECRET, pager_settings


@pytest.fixture(autouse=True)
def _channel_pacing_off_in_process(settings):
    """In-process tests run on frozen clocks: channel turns kept in Redis would carry over from one
    test to the next (the same channel ids, the same frozen moment) and hold levels back. Tests of
    pacing turn it on and delete their own keys (tests/base/test_channel_pacing.py); real workers
    started by a test pace as production does."""
    settings.SLACK_CHANNEL_PACING = False


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw-for-tests")
    client.force_login(user)
    return client


@pytest.fixture
def fake_slack(settings):
    """A real HTTP stand-in for Slack's Web API; the Slack seam points at it."""
    with FakeSlack() as fake:
        settings.SLACK_API_BASE_URL = fake.base_url
        yield fake


@pytest.fixture
def celery_worker_factory(transactional_db, settings, tmp_path):
    """Start real Celery workers (subprocesses) on the test database and broker.

    ``start(**env)`` starts one and waits until it is ready (``layout=`` a kind of
    ops/workers.py: that kind's queues and pool); ``env`` overrides
    its environment (e.g. ``ESCALATION_HORIZON_SECONDS="30"``). Request
    ``fake_slack`` first so the worker posts to it. The broker is purged
    before and after; every worker is stopped at teardown (before the
    database is flushed). See slabuddy/testing/worker.py.
    """
    purge_broker()
    workers: list[CeleryWorker] = []

    def start(*, concurrency: int = 1, layout=None, **env: str) -> CeleryWorker:
        worker = CeleryWorker(log_dir=tmp_path, env=env, concurrency=concurrency, layout=layout)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        # Short grace: a warm shutdown takes seconds, and the broker is purged anyway.
        worker.stop(grace=1)
    purge_broker()


@pytest.fixture
def fake_pager(settings):
    """Local stand-ins for PagerDuty, Grafana OnCall and a signed webhook, with credentials
    in settings the way the environment gives them (tests/support/pager.py has the values)."""
    with FakePager(webhook_secret=WEBHOOK_PAGE_SECRET) as pager:
        pager_settings(settings, pager)
        yield pager
