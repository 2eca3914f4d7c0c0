"""Many processes, one truth: three workers on "three hosts", two web processes, beat, and signed
Slack events at a steady rate, while a worker is SIGKILLed and restarted, the broker is flushed
and a second beat runs for a minute. Reports exactly-once and lag, before and after the faults.

    python -m bench.cluster                                   # the faults, 5 tickets/s for 2 min
    python -m bench.cluster --no-faults                       # the same without them
    python -m bench.cluster --no-faults --armed-beyond 100000 # + 100,000 tickets armed far ahead

Runs against PostgreSQL and Redis (``DATABASE_URL``, ``CELERY_BROKER_URL``; defaults: database
``slabuddy_bench`` on 127.0.0.1, created and migrated if missing, and Redis database 14, which is
FLUSHDB'ed: point it at a database nothing else uses). The stand-in Slack runs in a process of
its own. Each ticket comes in as a signed Events API request (a helpdesk-bot message) to one of
the web processes, in turn; its levels fall due ``--levels`` seconds after it opened (the last
beyond the horizon, so the beat horizon job queues it). Lag is the arrival of the post at the
stand-in Slack minus the level's due time. ops/testing/cluster.py has the orchestration, shared
with tests/operations/test_many_processes.py.

``--armed-beyond N`` first writes N armed tickets whose every level lies six hours ahead (their
rows wait in the database, as with a big backlog), to show that they cost the workers neither
memory nor lag.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    FakeSlackProcess,
    LoadSampler,
    RssSampler,
    bench_environment,
    ensure_database,
    free_port,
    machine,
    stop_on_sigterm,
)

SECRET = "bench-cluster-signing-secret"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=5.0, help="tickets (signed events) per second (5)")
    parser.add_argument("--seconds", type=float, default=120.0, help="seconds of events (120)")
    parser.add_argument("--levels", default="5,30,90",
                        help="seconds from opening to each level (5,30,90: the last beyond the horizon)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker (2)")
    parser.add_argument("--webs", type=int, default=2, help="gunicorn processes (2)")
    parser.add_argument("--horizon", type=int, default=60, help="ESCALATION_HORIZON_SECONDS (60)")
    parser.add_argument("--sweep-seconds", type=int, default=15, help="the sweeper's interval (15)")
    parser.add_argument("--no-faults", action="store_true", help="no kill, no flush, no second beat")
    parser.add_argument("--armed-beyond", type=int, default=0,
                        help="tickets to arm first with every level six hours ahead (0)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    return parser.parse_args(argv)


def _clean(prefixes: tuple[str, ...]) -> None:
    from django.db import connection

    from tickets.models import Ticket

    tickets = ("SELECT t.id FROM tickets_ticket t JOIN tickets_watchedchannel c ON c.id = t.channel_id "
               "WHERE c.slack_channel_id LIKE %s")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tickets_slackinbound")
        for prefix in prefixes:
            for relation in Ticket._meta.related_objects:  # no ON DELETE CASCADE in the database
                table, column = relation.related_model._meta.db_table, relation.field.column
                cursor.execute(f"DELETE FROM {table} WHERE {column} IN ({tickets})", [prefix + "%"])
            cursor.execute(f"DELETE FROM tickets_ticket WHERE id IN ({tickets})", [prefix + "%"])
        cursor.execute("DELETE FROM base_outboxmessage")


def _armed_far_ahead(count: int) -> float:
    from calendars.targets import TargetKind
    from escalation.models import EscalationStep, SlaPolicy
    from ops.testing.bulk import armed_tickets_insert
    from tickets.models import Tier, WatchedChannel

    tier, _ = Tier.objects.get_or_create(name="Bench far ahead")
    policy, _ = SlaPolicy.objects.get_or_create(tier=tier, priority="", defaults={"name": "Far ahead"})
    if not policy.steps.exists():
        for level, minutes in enumerate((10, 20, 35, 50), start=1):
            EscalationStep.objects.create(policy=policy, level=level, delay=timedelta(minutes=minutes),
                                          target_kind=TargetKind.USER_GROUP, target_ref="SFAR")
    channel, _ = WatchedChannel.objects.get_or_create(slack_channel_id="CFARAHEAD",
                                                      defaults={"name": "far-ahead", "tier": tier})
    started = time.monotonic()
    armed_tickets_insert(channel=channel, policy=policy, count=count, prefix=str(int(time.time())),
                         opened_at=datetime.now(UTC) + timedelta(hours=6), spread=timedelta(hours=1))
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> dict:
    options = parse_args(argv)
    stop_on_sigterm()
    bench_environment(database="slabuddy_bench", broker_db=14, data_dir="/tmp/slabuddy-bench")
    ensure_database()
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from escalation.models import Escalation
    from ops.testing.cluster import CHANNEL_PREFIX, ChaosPlan, ChaosRun, chaos_setup, process_environment
    from ops.testing.worker import database_url_for_worker

    call_command("migrate", verbosity=0)
    _clean((CHANNEL_PREFIX, "CFARAHEAD"))
    far_seconds = _armed_far_ahead(options.armed_beyond) if options.armed_beyond else None
    levels = tuple(float(x) for x in options.levels.split(","))
    seconds = options.seconds
    plan = ChaosPlan(
        events_per_second=options.rate, seconds=seconds, channels=100, level_delays=levels,
        workers=options.workers, concurrency=options.concurrency, webs=options.webs,
        sweep_seconds=options.sweep_seconds, horizon_seconds=options.horizon,
        kill_at=None if options.no_faults else seconds / 3,
        flush_at=None if options.no_faults else seconds / 2,
        second_beat=None if options.no_faults else (seconds / 2 + 5, seconds / 2 + 65),
        settle_seconds=120,
    )
    chaos_setup(plan)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    connection.close()

    fake = FakeSlackProcess()
    lock = threading.Lock()

    def thread_add(channel: str, ts: str) -> None:
        with lock:
            fake.ask("threads", [(channel, ts)])

    def posts() -> list[tuple[str, float]]:
        with lock:
            return fake.ask("posts")

    log_dir = settings.DATA_DIR / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ, "DATABASE_URL": database_url_for_worker(), "SLACK_API_BASE_URL": fake.base_url,
        "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_BOT_USER_ID": "UBENCHBOT", "SLACK_SIGNING_SECRET": SECRET,
        **process_environment(plan), "LOG_LEVEL": "warning",
    }
    run = ChaosRun(plan=plan, env=env, log_dir=log_dir, thread_add=thread_add, posts=posts,
                   broker_flush=broker.flushdb)
    rss, load = RssSampler(), LoadSampler()
    watching = threading.Event()

    def watch_workers() -> None:  # the restarted worker gets a new pid
        while not watching.wait(1):
            for name, proc in list(run.procs.items()):
                if name.startswith("worker"):
                    rss.watch(name, proc.pid)

    threading.Thread(target=watch_workers, daemon=True).start()
    rss.start()
    load.start()
    try:
        run.start(ports=[free_port() for _ in range(plan.webs)])
        result = run.run(secret=SECRET)
    finally:
        watching.set()
        rss.stopping.set()
        load.stopping.set()
        run.stop()
        fake.stop()

    first_fault = min(result.events.values()) if result.events else None
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "plan": {"rate_per_s": plan.events_per_second, "seconds": plan.seconds, "levels_s": list(levels),
                 "workers": plan.workers, "concurrency": plan.concurrency, "webs": plan.webs,
                 "horizon_s": plan.horizon_seconds, "sweep_s": plan.sweep_seconds,
                 "faults": not options.no_faults},
        "faults_at": {what: datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")
                      for what, at in result.events.items()},
        "events_sent": result.events_sent,
        "events_acknowledged": result.events_acknowledged,
        "slack_style_retries": result.slack_retries,
        "tickets": result.tickets,
        "duplicate_tickets": result.duplicate_tickets,
        "levels": result.levels_expected,
        "posts_per_level": {str(k): v for k, v in sorted(result.posts_per_level.items())},
        "lost": len(result.lost),
        "duplicated": len(result.duplicated),
        "fired_via": dict(result.fired_via),
        "lag_all": result.lag_summary(),
        "lag_before_faults": result.lag_summary(until=first_fault) if first_fault else None,
        "lag_from_first_fault": result.lag_summary(since=first_fault) if first_fault else None,
        "beats_overlapped": result.beats_overlapped,
        "armed_beyond_horizon": Escalation.objects.filter(
            ticket__channel__slack_channel_id="CFARAHEAD", state="pending").count(),
        "armed_beyond_insert_s": round(far_seconds, 1) if far_seconds else None,
        "worker_peak_rss_mib": {name: round(kib / 1024, 1) for name, kib in sorted(rss.peak_main.items())},
        "worker_peak_rss_with_pool_mib": {name: round(kib / 1024, 1)
                                          for name, kib in sorted(rss.peak_total.items())},
        **load.summary(),
        "logs": str(log_dir),
    }
    connection.close()
    print(json.dumps(report, indent=2), flush=True)
    if options.json:
        options.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
