"""Redis stopped, PostgreSQL restarted, or the worker killed with the broker flushed, during a
run: no level is lost or posted twice, and the worker and beat ride it out. The levels that fell
due meanwhile post once the service is back (the test prints how soon; bench/outage.py
measures it, docs/SCALING.md).

Each run starts a private redis-server and PostgreSQL cluster on free ports (bench/outage.py)
and stops only those, never the machine's own. About a minute and a half each.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings

from ops.testing.services import missing_servers
from tests.support.runall import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def private_servers():
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("starts its own PostgreSQL and Redis; runs once, in the PostgreSQL + Redis run")
    why_not = missing_servers()
    if why_not:
        pytest.skip(why_not)


@pytest.mark.parametrize(("service", "down"), [("redis", 15), ("postgres", 5), ("worker", 5)])
def test_an_outage_loses_and_doubles_no_level(private_servers, tmp_path, service, down):
    out = tmp_path / "result.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.outage", "--service", service, "--down", str(down),
         "--before", "10", "--after", "10", "--lead", "10", "--sweep", "5", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    print(f"\n{service} away {result['down_seconds']} s: levels due meanwhile posted "
          f"{result['posted_after_service_back']} after it was back")
    assert result["levels_fired"] == result["levels"] > 0
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["posts_per_level"] == {"1": result["levels"]}
    assert result["due_during_outage"] > 0
    assert result["worker_survived"] and result["beat_survived"]
    if service == "worker":  # killed, broker flushed, a new worker started: its catch-up posted them
        assert result["levels_posted_after_worker_ready"] > 0
        print(f"latest level after the new worker was ready: {result['latest_level_after_worker_ready_s']} s")
