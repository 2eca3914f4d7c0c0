"""Redis or PostgreSQL away for a while during a run, or the worker killed and the broker
flushed (``service="worker"``): levels fire late, none is lost or doubled.

Run by bench/outage.py (which starts private Redis and PostgreSQL servers, points
Django at them and calls ``outage_run``) for the benchmark and for
tests/operations/test_outages.py. The two Celery workers of ops/workers.py and beat run
against the private servers; tickets are armed whose levels fall due at a steady rate
before, during and after the outage; the service is stopped for
``down_seconds`` and started again. Reported: how often each level posted, and,
for the levels that fell due while the service was away, how long after its
return they posted.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from base.fake_slack import FakeSlack
from calendars.targets import TargetKind
from escalation.arming import ticket_arm
from escalation.models import Escalation, EscalationStep, SlaPolicy
from escalation.tasks import escalations_sweep
from escalation.transitions import EscalationState
from ops.schedules import default_schedules
from ops.testing.processes import Proc
from ops.testing.services import PrivatePostgres, PrivateRedis
from ops.workers import DEFAULT_WORKER, ESCALATION_WORKER
from tickets.models import Ticket, Tier, WatchedChannel

DELAY = timedelta(minutes=10)
JOBS = ("escalation.tasks.", "ops.tasks.heartbeat")


READY_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] \S+ ready\.$", re.M)


@dataclass
class OutagePlan:
    service: str  # "redis", "postgres", or "worker" (killed, broker flushed, started again)
    down_seconds: float
    levels_per_second: float = 2.0
    lead: float = 20.0  # seconds from the start to the first level due
    before: float = 15.0  # seconds of levels falling due before the outage
    after: float = 30.0  # ... and after it
    horizon_seconds: int = 30
    sweep_seconds: int = 15
    channels: int = 20
    concurrency: int | None = None  # threads of the escalation worker (None: as runall starts it)


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"levels": len(ordered), "p50_s": round(statistics.median(ordered), 3),
            "max_s": round(ordered[-1], 3)}


def _setup(plan: OutagePlan) -> list[WatchedChannel]:
    tier = Tier.objects.create(name="Outage")
    policy = SlaPolicy.objects.create(tier=tier, priority="", name="Outage")
    EscalationStep.objects.create(policy=policy, level=1, delay=DELAY, target_kind=TargetKind.USER_GROUP,
                                  target_ref="SOUTAGE")
    PeriodicTask.objects.update(enabled=False)
    for schedule in default_schedules():
        if schedule.task.startswith(JOBS):
            # The sweep at the plan's interval (this process's settings keep their default).
            every = plan.sweep_seconds if schedule.task == escalations_sweep.name else schedule.every_seconds
            interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
            PeriodicTask.objects.update_or_create(
                name=schedule.name,
                defaults={"task": schedule.task, "interval": interval, "queue": schedule.queue,
                          "enabled": True},
            )
    return [WatchedChannel.objects.create(slack_channel_id=f"COUTAGE{i:02d}", name=f"outage-{i}", tier=tier)
            for i in range(plan.channels)]


def _ready_at(worker: Proc, fallback: float) -> float:
    """When the worker logged "ready." (its own clock, UTC: the log's timestamps), else ``fallback``."""
    found = READY_LINE.findall(worker.log())
    if not found:
        return fallback
    stamp = datetime.strptime(found[-1], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    return stamp.timestamp()


def _flush(redis: PrivateRedis) -> None:
    """FLUSHALL on the private redis-server this run started (never the machine's own)."""
    subprocess.run(["redis-cli", "-p", str(redis.port), "FLUSHALL"], check=True, capture_output=True)


def outage_run(plan: OutagePlan, *, redis: PrivateRedis, postgres: PrivatePostgres, env: dict[str, str],
               log_dir: Path) -> dict:
    channels = _setup(plan)
    fake = FakeSlack().start()
    env = {**env, "SLACK_API_BASE_URL": fake.base_url,
           "ESCALATION_HORIZON_SECONDS": str(plan.horizon_seconds),
           "ESCALATION_SWEEP_SECONDS": str(plan.sweep_seconds)}
    celery = [sys.executable, "-m", "celery", "-A", "slabuddy"]
    # The two kinds of worker production runs (ops/workers.py); "worker" is the escalation one,
    # which holds the levels' delayed tasks and is the one killed in a worker outage.
    quiet = ["-l", "info", "--without-gossip", "--without-mingle"]
    escalation = ESCALATION_WORKER.argv(node="outage@host-a", concurrency=plan.concurrency)
    worker_argv = [*celery, *escalation, *quiet]
    worker = Proc("worker", worker_argv, env=env, log_dir=log_dir)
    default_worker = Proc("default", [*celery, *DEFAULT_WORKER.argv(node="outage-default@host-a"), *quiet],
                          env=env, log_dir=log_dir)
    ready = None
    beat = Proc("beat", [*celery, "beat", "-l", "info", "--scheduler",
                         "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="], env=env,
                log_dir=log_dir)
    try:
        worker.wait_for_log(" ready.", timeout=90)
        default_worker.wait_for_log(" ready.", timeout=90)
        beat.wait_for_log("beat: Starting", timeout=90)
        start = time.time()
        first_due = datetime.fromtimestamp(start + plan.lead, UTC)
        count = int(plan.levels_per_second * (plan.before + plan.down_seconds + plan.after))
        for i in range(count):
            due = first_due + timedelta(seconds=i / plan.levels_per_second)
            channel = channels[i % len(channels)]
            ticket = Ticket.objects.create(channel=channel, slack_ts=f"{due.timestamp():.6f}",
                                           opened_at=due - DELAY, priority="normal", text="outage ticket")
            fake.add_message(channel.slack_channel_id, "ticket", ts=ticket.slack_ts, user="UCUSTOMER")
            ticket_arm(ticket=ticket)
        connection.close()  # the service may go away under this connection

        went = start + plan.lead + plan.before
        time.sleep(max(0.0, went - time.time()))
        went = time.time()
        if plan.service == "worker":
            worker.kill()  # SIGKILL: the delayed tasks it held are gone with it
            _flush(redis)  # ...and so is everything the broker held
            time.sleep(max(0.0, went + plan.down_seconds - time.time()))
            worker.stop()
            worker = Proc("worker", worker_argv, env=env, log_dir=log_dir)
            worker.wait_for_log(" ready.", timeout=90)
            back = ready = _ready_at(worker, time.time())
        else:
            (redis if plan.service == "redis" else postgres).stop()
            time.sleep(max(0.0, went + plan.down_seconds - time.time()))
            (redis if plan.service == "redis" else postgres).start()
            back = time.time()

        last_due = first_due + timedelta(seconds=count / plan.levels_per_second)
        deadline = last_due.timestamp() + plan.sweep_seconds + 120
        levels = Escalation.objects.filter(ticket__channel__in=channels)
        while time.time() < deadline and levels.filter(state=EscalationState.FIRED).count() < count:
            time.sleep(1)
        time.sleep(plan.sweep_seconds + 2)  # a duplicate, if any, would arrive now

        posted: dict[str, list[float]] = {}
        for call in fake.calls("chat.postMessage"):
            if call.status == 200:
                posted.setdefault(call.args["metadata"]["event_payload"]["key"], []).append(call.at)
        rows = list(levels.values_list("ticket_id", "due_at", "state", "fired_via"))
        per_level = Counter(len(posted.get(f"ticket:{t}:level:1", [])) for t, *_ in rows)
        lags = {"before": [], "during": [], "after": []}
        after_back = []
        lost_tasks_after_ready = []  # worker restart: levels queued before the kill, posted after ready
        first_posts = []  # ...of those due before it was ready: how soon after ready each posted
        for ticket_id, due_at, _, _ in rows:
            times = posted.get(f"ticket:{ticket_id}:level:1")
            if not times:
                continue
            due, at = due_at.timestamp(), min(times)
            phase = "before" if due < went else "during" if due < back else "after"
            lags[phase].append(at - due)
            if phase == "during":
                after_back.append(at - back)
            if ready is not None and went <= due < went + plan.horizon_seconds:  # its task died
                lost_tasks_after_ready.append(max(0.0, at - max(due, ready)))
                if due < ready:
                    first_posts.append(at - ready)
        return {
            "service": plan.service,
            "down_seconds": round(back - went, 1),
            "levels": count,
            "levels_fired": sum(1 for row in rows if row[2] == EscalationState.FIRED),
            "posts_per_level": {str(k): v for k, v in sorted(per_level.items())},
            "lost": per_level.get(0, 0),
            "duplicated": sum(v for k, v in per_level.items() if k > 1),
            "fired_via": dict(Counter(row[3] or "-" for row in rows)),
            "lag_due_before_outage": _summary(lags["before"]),
            "lag_due_after_outage": _summary(lags["after"]),
            "due_during_outage": len(lags["during"]),
            "posted_after_service_back": _summary(after_back),
            **({"latest_level_after_worker_ready_s": round(max(lost_tasks_after_ready, default=0.0), 3),
                "first_post_after_worker_ready_s": round(min(first_posts, default=0.0), 3),
                "levels_posted_after_worker_ready": len(lost_tasks_after_ready)} if ready else {}),
            "worker_survived": worker.alive and default_worker.alive,
            "beat_survived": beat.alive,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "logs": str(log_dir),
        }
    finally:
        beat.stop()
        worker.stop()
        default_worker.stop()
        fake.stop()
