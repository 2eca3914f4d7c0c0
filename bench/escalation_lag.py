"""Escalation lag: how late, how often and how reliably levels post, with a real worker.

    python -m bench.escalation_lag                      # 2,000 tickets falling due
    python -m bench.escalation_lag --flush-midway       # broker flushed and worker killed mid-run
    python -m bench.escalation_lag --tickets 10000 --due-tickets 2000   # + 8,000 armed far ahead
    python -m bench.escalation_lag --tickets 10000      # 10,000 falling due (long: N / rate s)
    python -m bench.escalation_lag --clock business     # levels counted on business hours
    python -m bench.escalation_lag --hang-share 0.05    # 5% of posts hang past the client timeout
    python -m bench.escalation_lag --side-by-side       # + a bare countdown task per level, same stand-in
    python -m bench.escalation_lag --burst              # 5,000 levels in 500 channels due at once,
                                                        # Slack's per-channel posting limit enforced

Runs against PostgreSQL and Redis (``DATABASE_URL``, ``CELERY_BROKER_URL``;
defaults: database ``slabuddy_bench`` on 127.0.0.1 (created and migrated if
missing, its bench tickets replaced on every run) and Redis database 14,
which is FLUSHDB'ed: point it at a database nothing else uses). It starts one
Celery worker and Celery beat (django-celery-beat, with only the escalation
jobs enabled) as subprocesses, and answers Slack with ``slabuddy.fake_slack``
in a child process of its own.

N tickets are armed through ``ticket_arm`` (with ``--due-tickets M``, N - M
of them first, with every level six hours away). Level 1 of the others falls due at
``--rate`` tickets per second starting ``--lead`` seconds after arming begins,
level 2 ``--gap`` seconds after level 1, and level 3 six hours later (armed,
never due during the run: the rows "beyond the horizon"). The worker's
horizon is ``--horizon`` seconds, so with a fixed rate the number of delayed
tasks a worker holds does not depend on N, only on the rate; comparing
``--tickets 10000 --due-tickets 2000`` with ``--tickets 2000`` shows whether
rows armed beyond the horizon cost the worker memory (they should not).

Reported: lag = arrival of the post at the fake Slack minus the level's due
time (p50 / p99 / max), posts per level (exactly one expected), levels lost,
levels the sweeper fired, and the worker's peak RSS (main process, which
holds the delayed tasks, and main process + pool). With ``--flush-midway``,
halfway through the due window the broker's Redis database is flushed and
the worker is killed with SIGKILL and restarted: every queued, unacknowledged
and in-memory task is gone and the sweeper must fire what they would have.

The workers are the two kinds of ``ops/workers.py`` (a prefork worker for the
default queue, a threads worker for the escalation queue), as ``make run`` and
docker-compose.yml start them; ``--layout single`` runs the layout before it
(one prefork worker on both queues) for comparison.

``--hang-share S``: the stand-in holds a share S of all ``chat.postMessage``
calls for ``--hang-seconds`` (default: the client timeout + 0.5 s), then
answers 503 with nothing posted. The lag of the *other* levels (whose posts
never hung) is reported apart: a slow Slack must not delay them.

``--side-by-side``: with every level, a bare Celery countdown task
(``bench/bare_post.py``) falls due at the same moment on the same worker and
makes one ``chat.postMessage`` to the same stand-in; both lags are reported,
and the ratio of their medians (the firing path's own cost).

``--burst``: as after an outage, ``--tickets`` (default 5,000) level-1 rows in
``--channels`` (default 500) channels are all due when the workers start (their
due times spread over the minute before, in order within each channel); the
stand-in enforces Slack's posting limit (``ChannelPostLimit``: about one message
per second per channel, bursts of 3, 429 with Retry-After beyond). Reported: the
seconds from the workers' start to the last post, 429s, and posts out of due
order per channel.

With ``--clock business`` the bench policy counts business hours (Europe/Berlin):
the tier is closed for the hour before the first level falls due and open
otherwise, and every ticket opened before that closed hour, so each level's
due time is computed through it by the business clock at arming (the same due
times as the calendar run, reached the other way). The seeded tiers stay 24/7.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import children_of, rss_kib, stop_on_sigterm, worker_argvs

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/slabuddy_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"
CHANNELS = 50
BURST_CHANNELS = 500
BARE_TASK = "bench.bare_post"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.escalation_lag", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tickets", type=int, default=2000, help="tickets to arm (default 2000)")
    parser.add_argument("--due-tickets", type=int, default=None,
                        help="how many of them fall due during the run (default: all); the others "
                        "are armed with every level 6 h away, beyond the horizon")
    parser.add_argument("--rate", type=float, default=5.0,
                        help="tickets whose level 1 falls due per second (default 5)")
    parser.add_argument("--gap", type=float, default=30.0, help="seconds from level 1 to level 2 (30)")
    parser.add_argument("--lead", type=float, default=None,
                        help="seconds from the start of arming to the first due level "
                        "(default: 15 s + 35 ms per ticket, so arming is mostly done by then)")
    parser.add_argument("--horizon", type=int, default=60,
                        help="the worker's ESCALATION_HORIZON_SECONDS (default 60, minimum 30)")
    parser.add_argument("--sweep-seconds", type=int, default=15,
                        help="ESCALATION_SWEEP_SECONDS: beat's sweeper interval (default 15)")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                        help="worker pool processes (default: the number of CPUs)")
    parser.add_argument("--flush-midway", action="store_true",
                        help="halfway: FLUSHDB the broker and SIGKILL + restart the worker")
    parser.add_argument("--clock", choices=("calendar", "business"), default="calendar",
                        help="the bench policy's clock (default calendar); business: levels counted "
                        "through a closed hour of the tier's business hours")
    parser.add_argument("--layout", choices=("split", "single"), default="split",
                        help="split (default): the workers of ops/workers.py; single: one prefork worker "
                        "on both queues, as before the split")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of the escalation worker (default: ops/workers.py's)")
    parser.add_argument("--hang-share", type=float, default=0.0,
                        help="share of chat.postMessage calls the stand-in holds past the client timeout")
    parser.add_argument("--hang-seconds", type=float, default=None,
                        help="how long a held call hangs (default: SLACK_TIMEOUT_SECONDS + 0.5)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="also a bare countdown task posting once per level, due at the same moment")
    parser.add_argument("--burst", action="store_true",
                        help="N levels in --channels channels all due at once, Slack's posting limit on")
    parser.add_argument("--burst-timeout", type=float, default=300,
                        help="--burst: give up waiting after this many seconds (default 300)")
    parser.add_argument("--channels", type=int, default=None,
                        help="channels (default 50; 500 with --burst)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    return parser.parse_args(argv)


def configure_environment(options: argparse.Namespace) -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    os.environ.setdefault("SLABUDDY_DATA_DIR", "/tmp/slabuddy-bench")
    os.environ["ESCALATION_HORIZON_SECONDS"] = str(options.horizon)
    os.environ["ESCALATION_SWEEP_SECONDS"] = str(options.sweep_seconds)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slabuddy.settings")
    # As deployed (docker-compose.yml runs production mode): DEBUG keeps every query of every
    # task in memory and formats it, which the workers would pay for on every statement.
    os.environ["DEBUG"] = "false"
    os.environ.pop("SLACK_BOT_TOKEN", None)


def ensure_database() -> None:
    import dj_database_url
    import psycopg

    db = dj_database_url.parse(os.environ["DATABASE_URL"])
    if "postgresql" not in db["ENGINE"]:
        print("note: not PostgreSQL; the issue's targets are for PostgreSQL + Redis", flush=True)
        return
    dsn = dict(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or None,
               password=db["PASSWORD"] or None, dbname="postgres", autocommit=True)
    with psycopg.connect(**{k: v for k, v in dsn.items() if v is not None}) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db["NAME"],)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


# --- processes -----------------------------------------------------------------


class Child:
    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str]):
        self.name = name
        self.log_path = log_dir / f"{name}-{int(time.time())}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "slabuddy", *args],
            cwd=BASE_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not start; see {self.log_path}")
            time.sleep(0.2)

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self._log.close()


def _serve_fake_slack(conn, faults: dict) -> None:
    """Child process: the fake Slack, away from this process's CPU and GIL."""
    from base.fake_slack import ChannelPostLimit, FakeSlack, SlowPosts

    fake = FakeSlack(
        slow_posts=SlowPosts(share=faults["hang_share"], seconds=faults["hang_seconds"])
        if faults.get("hang_share") else None,
        post_limit=ChannelPostLimit() if faults.get("post_limit") else None,
    ).start()
    conn.send(fake.base_url)
    while True:
        command, payload = conn.recv()
        if command == "threads":
            for channel, ts in payload:
                fake.add_message(channel, "bench ticket", ts=ts, user="UCUST")
            conn.send(None)
        elif command == "posts":  # (key, arrival time) of every accepted chat.postMessage
            conn.send([
                ((c.args.get("metadata") or {}).get("event_payload", {}).get("key"), c.at)
                for c in fake.calls("chat.postMessage") if c.status == 200
            ])
        elif command == "faults":  # keys of the posts that hung or were refused with 429
            calls = fake.calls("chat.postMessage")
            conn.send({
                status: [(c.args.get("metadata") or {}).get("event_payload", {}).get("key")
                         for c in calls if c.status == status]
                for status in (503, 429)
            })
        elif command == "stop":
            fake.stop()
            conn.send(None)
            return


class FakeSlackProcess:
    def __init__(self, faults: dict | None = None):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_serve_fake_slack, args=(child_conn, faults or {}), daemon=True)
        self.process.start()
        self.base_url = self.conn.recv()

    def ask(self, command: str, payload=None):
        self.conn.send((command, payload))
        return self.conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self.process.join(5)


class RssSampler(threading.Thread):
    """Peak RSS of the worker's main process, and of the main process plus its pool."""

    def __init__(self):
        super().__init__(daemon=True)
        self.pid: int | None = None
        self.peak_main = 0
        self.peak_total = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            pid = self.pid
            if pid is None:
                continue
            main = rss_kib(pid)
            total = main + sum(rss_kib(child) for child in children_of(pid))
            self.peak_main = max(self.peak_main, main)
            self.peak_total = max(self.peak_total, total)


class Workers:
    """The bench's Celery workers: the kinds of ops/workers.py (or one worker on both queues)."""

    def __init__(self, options: argparse.Namespace, *, log_dir: Path, env: dict[str, str], sampler):
        from ops.workers import ESCALATION_WORKER

        self.options, self.log_dir, self.env, self.sampler = options, log_dir, env, sampler
        split = options.layout == "split"
        self.threads = (options.threads or ESCALATION_WORKER.concurrency) if split else None
        self.children: list[Child] = []

    def _argvs(self) -> list[tuple[str, list[str]]]:

        stamp = time.time_ns()
        if self.options.layout == "single":
            return [("worker", ["worker", "-Q", "escalation,default", "-P", "prefork",
                                "-c", str(self.options.concurrency), "-n", f"bench-{stamp}@%h"])]
        return worker_argvs(node=f"bench-{stamp}@%h",
                            concurrency={"worker": self.options.concurrency, "escalation": self.threads})

    def start(self, *, wait: bool = True) -> None:
        common = ["-l", "info", "--without-gossip", "--without-mingle", "--include", "bench.bare_post"]
        self.children = [Child(name, argv + common, self.log_dir, self.env) for name, argv in self._argvs()]
        if wait:
            self.wait_ready()
        # The escalation worker holds the delayed tasks: its RSS is the one that matters.
        self.sampler.pid = self.children[-1].process.pid

    def wait_ready(self) -> None:
        for child in self.children:
            child.wait_for_log(" ready.")

    def kill(self) -> None:
        for child in self.children:
            child.kill()

    def stop(self) -> None:
        for child in self.children:
            child.stop()


def run_burst(options: argparse.Namespace, *, tier, channels: list, fake: FakeSlackProcess,
              workers: Workers, first_delay: timedelta, log_dir: Path, env: dict[str, str]) -> dict:
    """After an outage: every level-1 row is already due when the workers start."""
    from escalation.arming import tickets_arm_new
    from escalation.models import Escalation
    from escalation.transitions import EscalationState
    from tickets.models import Ticket

    n = options.tickets
    start_due = datetime.now(UTC) - timedelta(seconds=90)
    spread = 60.0  # due times over a minute, in ticket order (so in order within each channel)
    Ticket.objects.bulk_create(
        Ticket(channel=channels[i % len(channels)], slack_ts=f"{1700000000 + i}.{i % 1000000:06d}",
               helpdesk_ticket_id=str(100000 + i), priority="normal", text="bench ticket",
               opened_at=start_due + timedelta(seconds=i * spread / n) - first_delay)
        for i in range(n)
    )
    tickets = list(Ticket.objects.filter(channel__tier=tier).select_related("channel__tier")
                   .order_by("opened_at"))
    fake.ask("threads", [(t.channel.slack_channel_id, t.slack_ts) for t in tickets])
    started = time.monotonic()
    for i in range(0, n, 500):  # armed before they were due; their delayed tasks wait in the broker
        tickets_arm_new(tickets=tickets[i:i + 500], now=start_due - timedelta(seconds=1))
    print(f"armed {n} tickets in {time.monotonic() - started:.1f} s, every level 1 due (the last "
          f"{(datetime.now(UTC) - start_due).total_seconds() - spread:.0f} s ago); starting the workers",
          flush=True)
    rows = Escalation.objects.filter(ticket__channel__tier=tier, level=1)
    t0 = time.time()
    workers.start(wait=False)
    beat = Child("beat", ["beat", "-l", "info", "--scheduler",
                          "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="], log_dir, env)
    try:
        workers.wait_ready()
        ready = time.time()
        deadline = time.monotonic() + options.burst_timeout
        while rows.exclude(state=EscalationState.FIRED).exists() and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(5)  # duplicates, if any, arrive
    finally:
        beat.stop()
    due = {f"ticket:{t}:level:1": (d, t, c) for t, d, c in rows.values_list("ticket_id", "due_at",
                                                                             "ticket__channel__slack_channel_id")}
    arrivals: dict[str, list[float]] = {}
    for key, at in fake.ask("posts"):
        arrivals.setdefault(key, []).append(at)
    faults = fake.ask("faults")
    per_channel: dict[str, list[tuple[float, tuple]]] = {}
    for key, (due_at, ticket_id, channel) in due.items():
        if key in arrivals:
            per_channel.setdefault(channel, []).append((min(arrivals[key]), (due_at, ticket_id)))
    out_of_order = 0
    for posts in per_channel.values():
        posts.sort()
        out_of_order += sum(1 for a, b in zip(posts, posts[1:], strict=False) if b[1] < a[1])
    posted = [min(times) for key, times in arrivals.items() if key in due]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "burst",
        "levels_due": len(due),
        "channels": len(channels),
        "layout": options.layout,
        "escalation_threads": workers.threads,
        "default_concurrency": options.concurrency,
        "posted": len(posted),
        "lost": sum(1 for key in due if key not in arrivals),
        "duplicated": sum(1 for key in due if len(arrivals.get(key, [])) > 1),
        "seconds_from_start_to_last_post": round(max(posted) - t0, 1) if posted else None,
        "seconds_from_ready_to_last_post": round(max(posted) - ready, 1) if posted else None,
        "seconds_from_start_to_ready": round(ready - t0, 1),
        "posts_refused_429": len(faults[429]),
        "share_429": round(len(faults[429]) / max(len(due), 1), 4),
        "posts_out_of_due_order_in_their_channel": out_of_order,
        "pacing": os.environ.get("SLACK_CHANNEL_PACING", "true"),
        "python": platform.python_version(),
    }


# --- the run ---------------------------------------------------------------------


def closed_hour_schedule(closed_until: datetime, zone) -> dict[str, list[str]]:
    """A weekly schedule open around the clock except the hour before ``closed_until``
    (a whole minute), in the tier's zone."""
    from tickets.hours import DAYS, MINUTES_PER_DAY, interval_text

    start, end = (closed_until - timedelta(hours=1)).astimezone(zone), closed_until.astimezone(zone)
    closed: dict[int, list[tuple[int, int]]] = {}
    first = start.hour * 60 + start.minute
    last = end.hour * 60 + end.minute
    if start.date() == end.date():
        closed[start.weekday()] = [(first, last)]
    else:  # the hour spans midnight
        closed[start.weekday()] = [(first, MINUTES_PER_DAY)]
        if last:
            closed[end.weekday()] = [(0, last)]
    schedule: dict[str, list[str]] = {}
    for weekday, day in enumerate(DAYS):
        shut = closed.get(weekday, [])
        edges = [0] + [m for gap in shut for m in gap] + [MINUTES_PER_DAY]
        schedule[day] = [interval_text((a, b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b > a]
    return schedule


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> dict:
    options = parse_args(argv)

    stop_on_sigterm()  # SIGTERM unwinds like Ctrl-C: the workers, beat and the stand-in are stopped
    if options.channels is None:
        options.channels = BURST_CHANNELS if options.burst else CHANNELS
    if options.burst and options.tickets == 2000:
        options.tickets = 5000
    if options.burst:
        options.gap = 3 * 3600.0  # only level 1 falls due during a burst run
    if options.lead is None:
        options.lead = 15 + 0.035 * min(options.tickets, options.due_tickets or options.tickets)
    configure_environment(options)
    ensure_database()

    import django

    django.setup()
    import logging

    import redis
    from django.conf import settings
    from django.core.management import call_command
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from calendars.targets import TargetKind
    from escalation.arming import ticket_arm
    from escalation.models import Escalation, EscalationStep, SlaPolicy
    from escalation.schedules import schedules
    from escalation.transitions import EscalationState
    from slabuddy.celery import app
    from tickets.models import Ticket, Tier, WatchedChannel

    logging.getLogger("slabuddy").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)

    # A clean slate: the bench's own tier, channels and tickets; an empty broker db.
    tier, _ = Tier.objects.get_or_create(name="Bench")
    Ticket.objects.filter(channel__tier=tier).delete()
    tier.time_zone, tier.business_hours = "Europe/Berlin", None  # around the clock until the due tickets
    tier.save()
    policy, _ = SlaPolicy.objects.get_or_create(tier=tier, priority="", defaults={"name": "Bench"})
    policy.clock = options.clock
    policy.save()
    policy.steps.all().delete()
    first_delay = timedelta(minutes=10)
    closed = timedelta(0)
    if options.clock == "business":
        # Every due ticket must open before the closed hour: level 1 counts longer than the due window.
        window = min(options.tickets, options.due_tickets or options.tickets) / options.rate
        first_delay = max(first_delay, timedelta(minutes=math.ceil((window + 120) / 60)))
        closed = timedelta(hours=1)
    for level, delay in enumerate(
        (first_delay, first_delay + timedelta(seconds=options.gap), timedelta(hours=6)), start=1
    ):
        EscalationStep.objects.create(policy=policy, level=level, delay=delay,
                                      target_kind=TargetKind.USER_GROUP, target_ref="SBENCH")
    channels = [
        WatchedChannel.objects.get_or_create(slack_channel_id=f"CBENCH{i:03d}",
                                             defaults={"name": f"bench-{i}", "tier": tier})[0]
        for i in range(options.channels)
    ]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    if settings.CELERY_BROKER_URL.startswith("redis"):
        broker.flushdb()
    PeriodicTask.objects.update(enabled=False)
    for schedule in schedules():
        interval, _ = IntervalSchedule.objects.get_or_create(every=schedule.every_seconds,
                                                             period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name=schedule.name,
            defaults={"task": schedule.task, "interval": interval, "queue": schedule.queue,
                      "enabled": True, "description": schedule.description},
        )

    hang_seconds = options.hang_seconds or settings.SLACK_TIMEOUT_SECONDS + 0.5
    fake = FakeSlackProcess({"hang_share": options.hang_share, "hang_seconds": hang_seconds,
                             "post_limit": options.burst})
    log_dir = settings.DATA_DIR / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SLACK_API_BASE_URL": fake.base_url, "LOG_LEVEL": "warning"}
    sampler = RssSampler()
    sampler.start()
    workers = Workers(options, log_dir=log_dir, env=env, sampler=sampler)
    if options.burst:
        try:
            result = run_burst(options, tier=tier, channels=channels, fake=fake, workers=workers,
                               first_delay=first_delay, log_dir=log_dir, env=env)
        finally:
            sampler.stopping.set()
            workers.stop()
            fake.stop()
        return report(result, options)

    workers.start()
    beat = Child("beat", ["beat", "-l", "info", "--scheduler",
                          "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="], log_dir, env)
    beat.wait_for_log("beat: Starting")
    print(f"workers ({options.layout}) and beat up; fake Slack at {fake.base_url}; logs in {log_dir}",
          flush=True)

    try:
        n = options.tickets
        due_n = min(n, options.due_tickets or n)

        def create_and_arm(indexes: range, opened_at) -> float:
            """Tickets first (one bulk insert), then each armed through the real service."""
            Ticket.objects.bulk_create(
                Ticket(
                    channel=channels[i % len(channels)],
                    slack_ts=f"{1700000000 + i}.{i % 1000000:06d}",
                    helpdesk_ticket_id=str(100000 + i),
                    priority="normal",
                    text="bench ticket",
                    opened_at=opened_at(i),
                )
                for i in indexes
            )
            tickets = list(
                Ticket.objects.filter(channel__tier=tier, escalations__isnull=True)
                .select_related("channel").order_by("opened_at")
            )
            # The tickets' own messages, so that their threads exist.
            fake.ask("threads", [(t.channel.slack_channel_id, t.slack_ts) for t in tickets])
            if options.side_by_side:  # the yardstick: a bare countdown task due with each level 1
                for ticket in tickets:  # (sent first: a slow arming must not make it late)
                    level1 = ticket.opened_at + first_delay + closed
                    app.send_task(BARE_TASK, args=(ticket.channel.slack_channel_id, ticket.slack_ts,
                                                   f"bare:{ticket.pk}"), eta=level1, queue="escalation")
            started = time.monotonic()
            for ticket in tickets:
                ticket_arm(ticket=ticket)
            return time.monotonic() - started

        if n > due_n:  # armed, every level far beyond the horizon (none due during the run)
            far = datetime.now(UTC) + timedelta(hours=6)
            seconds = create_and_arm(range(due_n, n), lambda i: far)
            print(f"armed {n - due_n} tickets due in 6 h in {seconds:.1f} s", flush=True)
        # Level 1 of the due tickets falls due at --rate per second from first_due on.
        first_due = datetime.now(UTC) + timedelta(seconds=options.lead)
        if options.clock == "business":
            # Closed for the hour up to the first due minute; each ticket opened an hour earlier
            # than on the calendar clock, so its open time runs through the closed hour.
            tier.business_hours = closed_hour_schedule(first_due.replace(second=0, microsecond=0), tier.zone)
            tier.save()
        arm_seconds = create_and_arm(
            range(due_n), lambda i: first_due + timedelta(seconds=i / options.rate) - first_delay - closed
        )
        late_armed = Escalation.objects.filter(ticket__channel__tier=tier, level=1,
                                               due_at__lt=datetime.now(UTC)).count()
        # Wall time from opening to level 1: the delay, plus the closed hour on a business clock.
        waits = sorted({
            round((due - opened).total_seconds())
            for due, opened in Escalation.objects.filter(
                ticket__channel__tier=tier, level=1, due_at__lt=first_due + timedelta(hours=1)
            ).values_list("due_at", "ticket__opened_at")
        })
        print(f"armed {due_n} tickets in {arm_seconds:.1f} s ({late_armed} level-1 rows already due "
              f"when arming finished)", flush=True)

        rows = Escalation.objects.filter(ticket__channel__tier=tier, level__in=(1, 2),
                                         due_at__lt=first_due + timedelta(hours=1))
        last_due = max(rows.values_list("due_at", flat=True))
        midway = first_due + (last_due - first_due) / 2
        flushed_at = None
        deadline = last_due + timedelta(seconds=options.sweep_seconds + 60)
        while True:
            now = datetime.now(UTC)
            if options.flush_midway and flushed_at is None and now >= midway:
                broker.flushdb()
                workers.kill()
                flushed_at = now
                print(f"{now:%H:%M:%S} flushed the broker db and killed the workers; restarting them",
                      flush=True)
                workers.start()
            done = rows.filter(state=EscalationState.FIRED).count()
            if now > last_due and done == rows.count():
                break
            if now > deadline:
                print("deadline passed with levels unfired", flush=True)
                break
            time.sleep(1)
        time.sleep(max(options.sweep_seconds, 5))  # let duplicates, if any, arrive

        due = {
            key: (level, due_at, fired_via)
            for key, level, due_at, fired_via in (
                (f"ticket:{t}:level:{lv}", lv, d, v)
                for t, lv, d, v in rows.values_list("ticket_id", "level", "due_at", "fired_via")
            )
        }
        arrivals: dict[str, list[float]] = {}
        for key, at in fake.ask("posts"):
            arrivals.setdefault(key, []).append(at)
        lags = [
            min(times) - due[key][1].timestamp() for key, times in arrivals.items() if key in due
        ]
        faults = fake.ask("faults")
        hung = set(faults[503])
        other_lags = [
            min(times) - due[key][1].timestamp() for key, times in arrivals.items()
            if key in due and key not in hung
        ]
        level1_due = {f"bare:{t}": d for t, d in rows.filter(level=1).values_list("ticket_id", "due_at")}
        bare_lags = [min(times) - level1_due[key].timestamp()
                     for key, times in arrivals.items() if key in level1_due]
        level1_lags = [min(times) - due[key][1].timestamp() for key, times in arrivals.items()
                       if key in due and due[key][0] == 1]
        per_level: dict[int, dict[int, int]] = {}
        for key, (level, _, _) in due.items():
            count = len(arrivals.get(key, []))
            per_level.setdefault(level, {}).setdefault(count, 0)
            per_level[level][count] += 1
        lost = sum(1 for key in due if key not in arrivals)
        duplicated = sum(1 for key in due if len(arrivals.get(key, [])) > 1)
        via = {}
        for _, _, fired_via in due.values():
            via[fired_via or "-"] = via.get(fired_via or "-", 0) + 1
        flushed_lags = []
        if flushed_at is not None:
            flushed_lags = [
                min(arrivals[key]) - d.timestamp()
                for key, (_, d, _) in due.items()
                if key in arrivals and d >= flushed_at
            ]
        result = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "tickets": n,
            "due_tickets": due_n,
            "levels_due": len(due),
            "rate_per_second": options.rate,
            "horizon_seconds": options.horizon,
            "sweep_seconds": options.sweep_seconds,
            "concurrency": options.concurrency,
            "flush_midway": options.flush_midway,
            "clock": options.clock,
            "level1_wait_after_opening_s": waits,
            "arm_seconds": round(arm_seconds, 1),
            "lag_p50_s": round(statistics.median(lags), 3) if lags else None,
            "lag_p99_s": round(percentile(lags, 0.99), 3) if lags else None,
            "lag_max_s": round(max(lags), 3) if lags else None,
            "lag_max_after_flush_s": round(max(flushed_lags), 3) if flushed_lags else None,
            "layout": options.layout,
            "escalation_threads": workers.threads,
            "hang_share": options.hang_share,
            "hang_seconds": hang_seconds if options.hang_share else None,
            "posts_hung": len(hung),
            "levels_whose_post_hung": len(hung & set(due)),
            **({
                "other_levels": len(other_lags),
                "other_lag_p50_s": round(statistics.median(other_lags), 3) if other_lags else None,
                "other_lag_p99_s": round(percentile(other_lags, 0.99), 3) if other_lags else None,
                "other_lag_max_s": round(max(other_lags), 3) if other_lags else None,
            } if options.hang_share else {}),
            **({
                "bare_posts": len(bare_lags),
                "bare_lag_p50_s": round(statistics.median(bare_lags), 4) if bare_lags else None,
                "bare_lag_p99_s": round(percentile(bare_lags, 0.99), 4) if bare_lags else None,
                "level1_lag_p50_s": round(statistics.median(level1_lags), 4) if level1_lags else None,
                "level1_lag_p99_s": round(percentile(level1_lags, 0.99), 4) if level1_lags else None,
                "median_ratio_level1_to_bare": round(statistics.median(level1_lags)
                                                     / statistics.median(bare_lags), 2)
                if bare_lags and level1_lags else None,
            } if options.side_by_side else {}),
            "posts_per_level": {
                str(k): {f"{c} post(s)": m for c, m in sorted(v.items())} for k, v in per_level.items()
            },
            "lost": lost,
            "duplicated": duplicated,
            "fired_via": via,
            "worker_peak_rss_main_mib": round(sampler.peak_main / 1024, 1),
            "worker_peak_rss_total_mib": round(sampler.peak_total / 1024, 1),
            "armed_beyond_horizon": Escalation.objects.filter(
                ticket__channel__tier=tier, state=EscalationState.PENDING,
                due_at__gt=datetime.now(UTC) + timedelta(seconds=options.horizon),
            ).count(),
            "python": platform.python_version(),
        }
    finally:
        sampler.stopping.set()
        beat.stop()
        workers.stop()
        fake.stop()
    return report(result, options)


def report(result: dict, options: argparse.Namespace) -> dict:
    result["load_avg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    if options.json:
        options.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
