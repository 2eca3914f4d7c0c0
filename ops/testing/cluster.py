"""Many processes, one truth: SLA Buddy as several hosts' processes, under faults.

Used by the chaos test (tests/operations/test_many_processes.py) and its benchmark
(bench/cluster.py). ``ChaosRun`` starts Celery workers named as if on separate
hosts (``worker1@host-a`` ...), gunicorn processes, and beat, against one
PostgreSQL database and one Redis database; sends signed Slack events at a
steady rate (each a new ticket whose levels fall due seconds later); and,
while they run, SIGKILLs a worker and restarts it, flushes the broker, and
starts a second beat by mistake for a while. It then waits for every level and
reports what reached the stand-in Slack: how often each level posted, and how
late.

The caller provides the database rows (``chaos_setup``), the stand-in Slack
(``thread_add`` puts a ticket's message in a channel; ``posts`` returns the key
and arrival time of every accepted post) and the environment of the processes.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from calendars.targets import TargetKind
from escalation.models import Escalation, EscalationStep, SlaPolicy
from escalation.transitions import EscalationState
from ops.schedules import default_schedules
from ops.testing.processes import Proc
from slackbot.signing import slack_signature
from tickets.models import Ticket, Tier, WatchedChannel

CHANNEL_PREFIX = "CCHAOS"
# Periodic jobs the run needs (the channel scan and response polls would only add noise).
JOBS = ("escalation.tasks.", "slackbot.tasks.slack_inbound_sweep", "ops.tasks.heartbeat")


@dataclass
class ChaosPlan:
    """What runs and what goes wrong when, in seconds from the first event."""

    events_per_second: float = 4.0
    seconds: float = 60.0
    channels: int = 60
    level_delays: tuple[float, ...] = (4.0, 10.0, 45.0)  # the last beyond a 30 s horizon
    workers: int = 3
    concurrency: int = 2
    webs: int = 2
    web_threads: int = 4
    sweep_seconds: int = 5
    horizon_seconds: int = 30
    kill_at: float | None = 15.0
    flush_at: float | None = 30.0
    second_beat: tuple[float, float] | None = (35.0, 55.0)
    settle_seconds: float = 90.0  # after the last level's due time, at most


@dataclass
class ChaosResult:
    events_sent: int = 0
    events_acknowledged: int = 0
    slack_retries: int = 0
    tickets: int = 0
    duplicate_tickets: int = 0
    levels_expected: int = 0
    levels_fired: int = 0
    posts_per_level: Counter = field(default_factory=Counter)  # posts -> how many levels posted that often
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    lags: list[tuple[float, float]] = field(default_factory=list)  # (due, lag) in epoch seconds
    fired_via: Counter = field(default_factory=Counter)
    events: dict[str, float] = field(default_factory=dict)  # chaos action -> epoch seconds
    beats_overlapped: bool = False
    log_dir: str = ""

    def lag_summary(self, *, since: float | None = None, until: float | None = None) -> dict[str, float]:
        lags = sorted(lag for due, lag in self.lags
                      if (since is None or due >= since) and (until is None or due < until))
        if not lags:
            return {}
        pick = lambda q: lags[min(len(lags) - 1, round(q * (len(lags) - 1)))]  # noqa: E731
        return {"levels": len(lags), "p50_s": round(pick(0.5), 3), "p99_s": round(pick(0.99), 3),
                "max_s": round(lags[-1], 3)}


def chaos_setup(plan: ChaosPlan) -> Tier:
    """The tier, its ladder, the watched channels and beat's jobs for a run."""
    tier, _ = Tier.objects.get_or_create(name="Chaos")
    policy, _ = SlaPolicy.objects.get_or_create(tier=tier, priority="", defaults={"name": "Chaos"})
    policy.steps.all().delete()
    for level, seconds in enumerate(plan.level_delays, start=1):
        EscalationStep.objects.create(policy=policy, level=level, delay=timedelta(seconds=seconds),
                                      target_kind=TargetKind.USER_GROUP, target_ref="SCHAOS")
    for i in range(plan.channels):
        WatchedChannel.objects.get_or_create(slack_channel_id=f"{CHANNEL_PREFIX}{i:03d}",
                                             defaults={"name": f"chaos-{i}", "tier": tier})
    intervals = {"escalation.tasks.escalations_sweep": plan.sweep_seconds,
                 "slackbot.tasks.slack_inbound_sweep": plan.sweep_seconds}
    PeriodicTask.objects.update(enabled=False)
    for schedule in default_schedules():
        if not schedule.task.startswith(JOBS):
            continue
        every = intervals.get(schedule.task, schedule.every_seconds)
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name=schedule.name,
            defaults={"task": schedule.task, "interval": interval, "queue": schedule.queue, "enabled": True},
        )
    return tier


def process_environment(plan: ChaosPlan) -> dict[str, str]:
    """What every process of a run needs besides the database, broker and Slack settings."""
    return {
        "ESCALATION_HORIZON_SECONDS": str(plan.horizon_seconds),
        "ESCALATION_SWEEP_SECONDS": str(plan.sweep_seconds),
        # Shorter limits than production's (120 s), so that a level claimed by the killed worker
        # is taken over within the run; long enough for the horizon job on a busy machine.
        "CELERY_TASK_TIME_LIMIT": "30",
        "CELERY_TASK_SOFT_TIME_LIMIT": "25",
        "ESCALATION_CLAIM_LEASE_SECONDS": "35",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "info",
    }


class EventSender(threading.Thread):
    """Signed ``event_callback`` requests at a steady rate, spread over the web processes.

    Like Slack, it retries a delivery that got no 200 (three more times, a second
    apart here; Slack waits longer), with ``X-Slack-Retry-Num``.
    """

    def __init__(self, *, urls: list[str], secret: str, plan: ChaosPlan,
                 thread_add: Callable[[str, str], None]):
        super().__init__(daemon=True)
        self.urls, self.secret, self.plan, self.thread_add = urls, secret, plan, thread_add
        self.sent = 0
        self.acknowledged = 0
        self.retries = 0
        self.started_at = 0.0
        self.stopping = threading.Event()

    def _post(self, url: str, body: bytes, retry_num: int) -> int:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": slack_signature(secret=self.secret, timestamp=timestamp, body=body),
        }
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request("POST", "/slack/events", body=body, headers=headers)
            return conn.getresponse().status
        except OSError:
            return 0
        finally:
            conn.close()

    def _deliver(self, index: int) -> None:
        channel = f"{CHANNEL_PREFIX}{index % self.plan.channels:03d}"
        ts = f"{time.time():.6f}"
        self.thread_add(channel, ts)
        event = {"type": "message", "subtype": "bot_message", "bot_id": "BHELPDESK", "channel": channel,
                 "text": f"*Ticket ID*: chaos-{index}\n*Ticket priority*: High", "ts": ts, "event_ts": ts}
        body = json.dumps({"type": "event_callback", "event_id": f"EvChaos{index}x{ts}",
                           "event_time": int(float(ts)), "event": event}).encode()
        for attempt in range(4):
            if self._post(self.urls[(index + attempt) % len(self.urls)], body, attempt) == 200:
                self.acknowledged += 1
                return
            self.retries += 1
            time.sleep(1)

    def run(self) -> None:
        self.started_at = time.time()
        total = int(self.plan.events_per_second * self.plan.seconds)
        for index in range(total):
            if self.stopping.is_set():
                return
            delay = self.started_at + index / self.plan.events_per_second - time.time()
            if delay > 0:
                time.sleep(delay)
            self.sent += 1
            threading.Thread(target=self._deliver, args=(index,), daemon=True).start()


class ChaosRun:
    """Start the processes, run the plan, report. ``stop()`` always, in a finally."""

    def __init__(self, *, plan: ChaosPlan, env: dict[str, str], log_dir: Path,
                 thread_add: Callable[[str, str], None], posts: Callable[[], list[tuple[str, float]]],
                 broker_flush: Callable[[], None]):
        self.plan, self.env, self.log_dir = plan, env, Path(log_dir)
        self.thread_add, self.posts, self.broker_flush = thread_add, posts, broker_flush
        self.procs: dict[str, Proc] = {}
        self.web_urls: list[str] = []

    # -- processes ------------------------------------------------------------------
    def _celery(self, name: str, args: list[str]) -> Proc:
        proc = Proc(name, [sys.executable, "-m", "celery", "-A", "slabuddy", *args], env=self.env,
                    log_dir=self.log_dir)
        self.procs[name] = proc
        return proc

    def worker(self, node: str) -> Proc:
        return self._celery(node, ["worker", "-Q", "escalation,default", "-c", str(self.plan.concurrency),
                                   "-l", "info", "-n", node, "--without-gossip", "--without-mingle"])

    def beat(self, name: str) -> Proc:
        return self._celery(name, ["beat", "-l", "info", "--scheduler",
                                   "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="])

    def start(self, ports: list[int]) -> None:
        for i, port in enumerate(ports[: self.plan.webs], start=1):
            web = Proc(f"web{i}", [sys.executable, "-m", "gunicorn", "slabuddy.wsgi:application", "--bind",
                                   f"127.0.0.1:{port}", "--workers", "1", "--threads",
                                   str(self.plan.web_threads), "--timeout", "30"],
                       env=self.env, log_dir=self.log_dir)
            self.procs[web.name] = web
            self.web_urls.append(f"http://127.0.0.1:{port}")
        for i in range(1, self.plan.workers + 1):
            self.worker(f"worker{i}@host-{chr(96 + i)}")
        self.beat("beat")
        for name, proc in list(self.procs.items()):
            if name.startswith("web"):
                proc.wait_for_http(self.web_urls[int(name[3:]) - 1] + "/healthz", timeout=90)
            elif name.startswith("worker"):
                proc.wait_for_log(" ready.", timeout=90)
            else:
                proc.wait_for_log("beat: Starting", timeout=90)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.signal_group(15)
        for proc in self.procs.values():
            proc.stop(grace=10)

    # -- the run --------------------------------------------------------------------
    def run(self, *, secret: str) -> ChaosResult:
        plan, result = self.plan, ChaosResult(log_dir=str(self.log_dir))
        sender = EventSender(urls=self.web_urls, secret=secret, plan=plan, thread_add=self.thread_add)
        sender.start()
        while not sender.started_at:
            time.sleep(0.01)
        start = sender.started_at
        actions = []
        if plan.kill_at is not None:
            actions.append((plan.kill_at, "worker killed and restarted", self._kill_and_restart))
        if plan.flush_at is not None:
            actions.append((plan.flush_at, "broker flushed", self.broker_flush))
        if plan.second_beat is not None:
            actions.append((plan.second_beat[0], "second beat started", lambda: self.beat("beat2")))
            actions.append((plan.second_beat[1], "second beat stopped", lambda: self.procs["beat2"].stop()))
        for at, what, act in sorted(actions, key=lambda a: a[0]):
            time.sleep(max(0.0, start + at - time.time()))
            result.events[what] = time.time()
            act()
        sender.join()
        time.sleep(3)  # the last requests' Slack-style retries
        last_due = time.time() + max(plan.level_delays)
        expected = self._wait_fired(deadline=last_due + plan.settle_seconds)
        time.sleep(plan.sweep_seconds + 2)  # time for a duplicate, if any, to arrive
        self._collect(result, sender=sender)
        result.levels_expected = max(result.levels_expected, expected)
        if plan.second_beat is not None:
            result.beats_overlapped = self._beats_overlapped(result)
        return result

    def _kill_and_restart(self) -> None:
        node = f"worker{self.plan.workers}@host-{chr(96 + self.plan.workers)}"
        self.procs[node].kill()
        self.worker(node).wait_for_log(" ready.", timeout=90)

    def _levels(self):
        return Escalation.objects.filter(ticket__channel__slack_channel_id__startswith=CHANNEL_PREFIX)

    def _wait_fired(self, *, deadline: float) -> int:
        try:
            while True:
                levels = self._levels()
                expected = levels.count()
                if expected and levels.filter(state=EscalationState.FIRED).count() == expected:
                    return expected
                if time.time() > deadline:
                    return expected
                time.sleep(1)
        finally:
            connection.close()

    def _collect(self, result: ChaosResult, *, sender: EventSender) -> None:
        result.events_sent, result.events_acknowledged = sender.sent, sender.acknowledged
        result.slack_retries = sender.retries
        tickets = Ticket.objects.filter(channel__slack_channel_id__startswith=CHANNEL_PREFIX)
        result.tickets = tickets.count()
        distinct = tickets.values("channel_id", "slack_ts").distinct().count()
        result.duplicate_tickets = result.tickets - distinct
        rows = list(self._levels().values_list("ticket_id", "level", "due_at", "state", "fired_via"))
        result.levels_expected = len(rows)
        result.levels_fired = sum(1 for row in rows if row[3] == EscalationState.FIRED)
        result.fired_via = Counter(row[4] or "-" for row in rows)
        arrivals: dict[str, list[float]] = {}
        for key, at in self.posts():
            arrivals.setdefault(key, []).append(at)
        for ticket_id, level, due_at, _, _ in rows:
            key = f"ticket:{ticket_id}:level:{level}"
            times = arrivals.get(key, [])
            result.posts_per_level[len(times)] += 1
            if not times:
                result.lost.append(key)
            elif len(times) > 1:
                result.duplicated.append(key)
            if times:
                result.lags.append((due_at.timestamp(), min(times) - due_at.timestamp()))
        connection.close()

    def _beats_overlapped(self, result: ChaosResult) -> bool:
        """Both beats sent due tasks while the second one ran."""
        return all("Sending due task" in self.procs[name].log() for name in ("beat", "beat2"))


def chaos_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")
