"""Intake throughput: signed Events API requests, open loop at a fixed rate, into gunicorn.

    python -m bench.intake --rate 200 --rate 400 --rate 600     # one run per rate
    python -m bench.intake --rate 800 --duration 30             # overload: store first, process later

Runs against PostgreSQL and Redis (``DATABASE_URL``, ``CELERY_BROKER_URL``;
defaults: database ``slabuddy_bench`` on 127.0.0.1, created and migrated if
missing, and Redis database 14, which is FLUSHDB'ed: point it at a database
nothing else uses). It starts gunicorn, the Celery worker and beat with the
commands of docker-compose.yml's ``web``, ``worker`` and ``beat`` services
(only the bind address, the worker's name and beat's job list differ; the
worker's ``cpu_shares`` becomes the equivalent ``nice`` value, as both run on
this one machine), and a stand-in Slack (``base.fake_slack``) in a process of
its own.

Each run sends ``--rate`` × ``--duration`` helpdesk-bot messages (one ticket
each, spread over ``--channels`` watched channels of a tier whose four levels
lie days ahead, beyond the horizon) as signed ``event_callback`` requests. The sender is
open-loop: request i is due at start + i / rate whatever happened to the
earlier ones, so a slow server cannot slow the offered load down.

Reported per run:
- ack latency p50 / p99 / max, from each request's **scheduled** send time to
  the end of its response (so the sender's own delays count against us), and
  how many answers were not 200 or took 3 s or more (Slack retries those);
- intake processing: tickets armed per second (first to last ticket armed),
  whether processing kept up with the offered rate, the largest backlog of
  stored but unprocessed deliveries, and how long it took to drain;
- that nothing was lost: stored deliveries, armed tickets and duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    FakeSlackProcess,
    LoadSampler,
    Proc,
    bench_environment,
    compose_command,
    compose_service,
    cpu_seconds,
    ensure_database,
    free_port,
    latency_summary,
    machine,
    nice_for_cpu_shares,
    option_get,
    option_set,
    stop_on_sigterm,
    venv_argv,
)

SIGNING_SECRET = "bench-signing-secret"
SLACK_LIMIT_SECONDS = 3.0
CHANNEL_PREFIX = "CINTAKE"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, action="append",
                        help="events per second offered; repeat for several runs (default 200, 400, 600)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds each run sends (default 20)")
    parser.add_argument("--channels", type=int, default=100, help="watched channels (default 100)")
    parser.add_argument("--senders", type=int, default=1,
                        help="sender processes sharing the offered rate (default 1)")
    parser.add_argument("--drain-timeout", type=float, default=300.0,
                        help="seconds to wait for the backlog to be processed after sending (default 300)")
    parser.add_argument("--web-workers", type=int, default=None,
                        help="override gunicorn's --workers from docker-compose.yml")
    parser.add_argument("--web-threads", type=int, default=None,
                        help="override gunicorn's --threads from docker-compose.yml")
    parser.add_argument("--worker-concurrency", type=int, default=None,
                        help="override the Celery worker's --concurrency from docker-compose.yml")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    options = parser.parse_args(argv)
    options.rate = options.rate or [200.0, 400.0, 600.0]
    return options


# --- the sender (a child process: open loop, asyncio, raw HTTP/1.1) -----------------------


def _signed_request(*, host: str, port: int, body: bytes, timestamp: str) -> bytes:
    base = b"v0:" + timestamp.encode() + b":" + body
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    head = (
        f"POST /slack/events HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Slack-Request-Timestamp: {timestamp}\r\n"
        f"X-Slack-Signature: {signature}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def event_body(*, run: str, index: int, channel: str, ts: str) -> bytes:
    event = {
        "type": "message", "subtype": "bot_message", "bot_id": "BHELPDESK", "channel": channel,
        "text": f"*Ticket ID*: {run}-{index}\n*Ticket priority*: High\n*Type*: Incident",
        "ts": ts, "event_ts": ts,
    }
    return json.dumps({
        "token": "bench", "team_id": "TBENCH", "api_app_id": "ABENCH", "type": "event_callback",
        "event_id": f"Ev{run}x{index}", "event_time": int(float(ts)), "event": event,
    }).encode()


def _sender(conn, host: str, port: int, indexes: list[int], requests: list[bytes], rate: float,
            start_wall: float, timeout: float) -> None:
    """Send request k at start + indexes[k] / rate; report (scheduled offset, latency, status, lag)."""

    async def one(k: int, due: float, results: list) -> None:
        lag = time.monotonic() - due
        status = 0
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.write(requests[k])
            head = await asyncio.wait_for(reader.read(), timeout)
            writer.close()
            status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else -1
        except (TimeoutError, OSError, ValueError, IndexError):
            status = -1
        results.append((indexes[k] / rate, time.monotonic() - due, status, lag))

    async def run() -> list:
        results: list = []
        start = time.monotonic() + (start_wall - time.time())
        pending = []
        for k, index in enumerate(indexes):
            due = start + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.ensure_future(one(k, due, results)))
        await asyncio.gather(*pending)
        return results

    conn.send(asyncio.run(run()))
    conn.close()


def send_open_loop(*, host: str, port: int, bodies: list[bytes], rate: float, senders: int,
                   timeout: float = 10.0) -> list[tuple[float, float, int, float]]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    timestamp = str(int(time.time()))
    start_wall = time.time() + 1.5  # time for the senders to start
    children = []
    for s in range(senders):
        indexes = list(range(s, len(bodies), senders))
        requests = [_signed_request(host=host, port=port, body=bodies[i], timestamp=timestamp)
                    for i in indexes]
        parent, child = context.Pipe(duplex=False)
        process = context.Process(target=_sender, daemon=True,
                                  args=(child, host, port, indexes, requests, rate, start_wall, timeout))
        process.start()
        children.append((parent, process))
    results = []
    for parent, process in children:
        results += parent.recv()
        process.join()
    return results


# --- the run ---------------------------------------------------------------------------


class BacklogSampler(threading.Thread):
    """Largest number of stored, unprocessed Slack deliveries, sampled every half second."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from slackbot.models import InboundState, SlackInbound

        try:
            while not self.stopping.wait(0.5):
                self.peak = max(self.peak, SlackInbound.objects.filter(state=InboundState.PENDING).count())
        finally:
            connection.close()


def _setup(channels: int):
    from datetime import timedelta as td

    from django.core.management import call_command
    from django.db import connection
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from calendars.targets import TargetKind
    from escalation.models import EscalationStep, SlaPolicy
    from ops.schedules import default_schedules
    from tickets.models import Tier, WatchedChannel

    call_command("migrate", verbosity=0)
    tier, _ = Tier.objects.get_or_create(name="Bench intake")
    policy, _ = SlaPolicy.objects.get_or_create(tier=tier, priority="", defaults={"name": "Bench intake"})
    # Four levels like the seeded Enterprise ladder, but days away: beyond the horizon (no
    # Celery task at arming, as in production) and never due during this or a later benchmark.
    policy.steps.all().delete()
    for level, days in enumerate((10, 20, 35, 50), start=1):
        EscalationStep.objects.create(policy=policy, level=level, delay=td(days=days),
                                      target_kind=TargetKind.USER_GROUP, target_ref="SBENCH")
    for i in range(channels):
        WatchedChannel.objects.get_or_create(slack_channel_id=f"{CHANNEL_PREFIX}{i:04d}",
                                             defaults={"name": f"intake-{i}", "tier": tier})
    _clean()
    # Beat runs the engine's jobs, the inbound sweep and the heartbeat; not the
    # channel scan and response polls, which would read 100 channels' threads.
    wanted = ("escalation.tasks.", "slackbot.tasks.slack_inbound", "ops.tasks.heartbeat")
    PeriodicTask.objects.update(enabled=False)
    for schedule in default_schedules():
        if not schedule.task.startswith(wanted):
            continue
        interval, _ = IntervalSchedule.objects.get_or_create(every=schedule.every_seconds,
                                                             period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name=schedule.name,
            defaults={"task": schedule.task, "interval": interval, "queue": schedule.queue,
                      "enabled": True, "description": schedule.description},
        )
    connection.close()
    return tier


def _clean() -> None:
    """Forget earlier runs' tickets and deliveries (raw SQL: tens of thousands of rows)."""
    from django.db import connection

    from tickets.models import Ticket

    tickets = (
        "SELECT t.id FROM tickets_ticket t JOIN tickets_watchedchannel c ON c.id = t.channel_id "
        "WHERE c.slack_channel_id LIKE %s"
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tickets_slackinbound")
        for relation in Ticket._meta.related_objects:  # the database has no ON DELETE CASCADE
            table, column = relation.related_model._meta.db_table, relation.field.column
            cursor.execute(f"DELETE FROM {table} WHERE {column} IN ({tickets})", [CHANNEL_PREFIX + "%"])
        cursor.execute(f"DELETE FROM tickets_ticket WHERE id IN ({tickets})", [CHANNEL_PREFIX + "%"])


def _wait_processed(*, expected: int, timeout: float) -> float | None:
    """Seconds until every delivery was processed and every ticket armed (None: timed out)."""
    from django.db import connection

    from slackbot.models import InboundState, SlackInbound
    from tickets.models import Ticket

    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            pending = SlackInbound.objects.filter(state=InboundState.PENDING).count()
            armed = Ticket.objects.filter(channel__slack_channel_id__startswith=CHANNEL_PREFIX,
                                          escalations__level=1).count()
            if pending == 0 and armed >= expected:
                return time.monotonic() - started
            time.sleep(0.5)
        return None
    finally:
        connection.close()


def run_once(*, rate: float, duration: float, channels: int, senders: int, port: int,
             drain_timeout: float, web_pid: int, worker_pid: int) -> dict:
    from django.db import connection
    from django.db.models import Count, Max, Min

    from slackbot.models import SlackInbound
    from tickets.models import Ticket

    _clean()
    n = int(rate * duration)
    run = f"{int(time.time())}"
    base_ts = int(time.time())
    bodies = [
        event_body(run=run, index=i, channel=f"{CHANNEL_PREFIX}{i % channels:04d}",
                   ts=f"{base_ts}.{i:06d}")
        for i in range(n)
    ]
    connection.close()
    backlog = BacklogSampler()
    backlog.start()
    load = LoadSampler()
    load.start()
    cpu_before = cpu_seconds(web_pid), cpu_seconds(worker_pid)
    send_started = datetime.now(UTC)
    results = send_open_loop(host="127.0.0.1", port=port, bodies=bodies, rate=rate, senders=senders)
    sent_seconds = (datetime.now(UTC) - send_started).total_seconds()
    # Every acknowledged event must become an armed ticket (an unacknowledged one Slack would retry).
    acknowledged = sum(1 for _, _, status, _ in results if status == 200)
    drain_seconds = _wait_processed(expected=acknowledged, timeout=drain_timeout)
    web_cpu = cpu_seconds(web_pid) - cpu_before[0]
    worker_cpu = cpu_seconds(worker_pid) - cpu_before[1]
    backlog.stopping.set()
    load.stopping.set()
    backlog.join()

    latencies = [latency for _, latency, status, _ in results if status == 200]
    statuses: dict[str, int] = {}
    for _, _, status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    tickets = Ticket.objects.filter(channel__slack_channel_id__startswith=CHANNEL_PREFIX)
    span = tickets.aggregate(first=Min("created_at"), last=Max("created_at"))
    armed = tickets.filter(escalations__level=1).count()
    seconds = (span["last"] - span["first"]).total_seconds() if span["first"] else 0.0
    stored = SlackInbound.objects.count()
    duplicates = (tickets.values("channel_id", "slack_ts").annotate(n=Count("id")).filter(n__gt=1).count())
    per_second = round(armed / seconds, 1) if seconds > 0 else None
    connection.close()
    return {
        "rate_offered_per_s": rate,
        "events_sent": n,
        "send_seconds": round(sent_seconds, 1),
        **latency_summary(latencies, "ack"),
        "acks_200": statuses.get("200", 0),
        "acks_not_200": {k: v for k, v in statuses.items() if k != "200"},
        "acks_failed_or_3s": sum(
            1 for _, lat, status, _ in results if status != 200 or lat >= SLACK_LIMIT_SECONDS
        ),
        "sender_lag_max_s": round(max((lag for *_, lag in results), default=0.0), 3),
        "deliveries_stored": stored,
        "tickets_armed": armed,
        "duplicate_tickets": duplicates,
        "tickets_per_s": per_second,
        "processing_kept_up": bool(per_second and per_second >= 0.95 * rate),
        "backlog_peak": backlog.peak,
        "drained_after_send_s": round(drain_seconds, 1) if drain_seconds is not None else None,
        # CPU per item does not depend on what else the machine runs: compare these across runs.
        "web_cpu_ms_per_event": round(1000 * web_cpu / n, 2),
        "worker_cpu_ms_per_ticket": round(1000 * worker_cpu / max(armed, 1), 2),
        **load.summary(),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    options = parse_args(argv)
    stop_on_sigterm()
    bench_environment(database="slabuddy_bench", broker_db=14, data_dir="/tmp/slabuddy-bench")
    os.environ["SLACK_SIGNING_SECRET"] = SIGNING_SECRET
    os.environ["SLACK_BOT_TOKEN"] = "xoxb-bench"
    os.environ["SLACK_BOT_USER_ID"] = "UBENCHBOT"
    ensure_database()

    import django

    django.setup()
    import redis
    from django.conf import settings

    _setup(options.channels)
    if settings.CELERY_BROKER_URL.startswith("redis"):
        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()

    fake = FakeSlackProcess()
    log_dir = settings.DATA_DIR / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SLACK_API_BASE_URL": fake.base_url}
    port = free_port()
    web_argv = option_set(compose_command("web"), "--bind", f"127.0.0.1:{port}")
    if options.web_workers:
        web_argv = option_set(web_argv, "--workers", str(options.web_workers))
    if options.web_threads:
        web_argv = option_set(web_argv, "--threads", str(options.web_threads))
    worker_argv = option_set(compose_command("worker"), "-n", f"bench-intake-{time.time_ns()}@%h")
    if options.worker_concurrency:
        worker_argv = option_set(worker_argv, "--concurrency", str(options.worker_concurrency))
    # compose gives the worker container a smaller CPU share than web's; natively that is a
    # nice value for each of its processes (main + pool) against web's (master + workers).
    niceness = nice_for_cpu_shares(
        compose_service("worker").get("cpu_shares"),
        processes=1 + int(option_get(worker_argv, "--concurrency", "1")),
        against=1 + int(option_get(web_argv, "--workers", "1")),
    )
    beat_argv = compose_command("beat")
    procs = []
    results = []
    try:
        web = Proc("web", venv_argv(web_argv), env=env, log_dir=log_dir)
        procs.append(web)
        web.wait_for_http(f"http://127.0.0.1:{port}/healthz")
        worker = Proc("worker", ["nice", "-n", str(niceness), *venv_argv(worker_argv)], env=env,
                      log_dir=log_dir).wait_for_log(" ready.")
        procs.append(worker)
        beat = Proc("beat", venv_argv(beat_argv), env=env, log_dir=log_dir).wait_for_log("beat: Starting")
        procs.append(beat)
        config = {
            "gunicorn": " ".join(web_argv[1:]),
            "worker": " ".join(worker_argv[1:]),
            "web_workers": option_get(web_argv, "--workers"),
            "web_threads": option_get(web_argv, "--threads", "1"),
            "worker_concurrency": option_get(worker_argv, "--concurrency"),
            "worker_nice": niceness,
        }
        print(f"gunicorn on :{port}, worker and beat up; logs in {log_dir}", flush=True)
        for rate in options.rate:
            result = run_once(rate=rate, duration=options.duration, channels=options.channels,
                              senders=options.senders, port=port, drain_timeout=options.drain_timeout,
                              web_pid=web.pid, worker_pid=worker.pid)
            result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
            result.update(config)
            results.append(result)
            print(json.dumps(result, indent=2), flush=True)
            time.sleep(2)
    finally:
        for proc in reversed(procs):
            proc.stop()
        fake.stop()
        _clean()  # the tickets of the last run, so that no other benchmark meets them
    summary = {"machine": machine(), "runs": results}
    if options.json:
        options.json.write_text(json.dumps(summary, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
