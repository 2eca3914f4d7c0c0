"""Benchmark of the SLA report on PostgreSQL: seed a history of tickets, time the report page.

    python -m bench.reports                      # 100,000 tickets over 90 days, then the 90-day report
    python -m bench.reports --tickets 2000       # a small run (CI-sized)
    python -m bench.reports --reuse              # keep the history already seeded, time again
    python -m bench.reports --reuse --explain    # and EXPLAIN ANALYZE each section's slowest query

The history (``seed_history``) is bulk-inserted the way the engine leaves its rows: per ticket its
snapshot (TicketSla, half of the tickets on a business clock), its first response cycle (and some
next-response cycles), its levels (fired before the response, cancelled after; a few failed), snoozes,
pauses, and its timeline (opened, each level fired, responded or closed). Other parts (a replay timing,
say) can reuse ``seed_history`` and add their own ``--`` option and section to ``main``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench.common import bench_environment, ensure_database

BENCH_TIERS = (
    # name, time zone, clock, business hours, first-response target, level delays
    ("Bench Enterprise", "Europe/Berlin", "calendar", None, timedelta(minutes=30), (10, 20, 35, 50)),
    (
        "Bench Teams",
        "America/New_York",
        "business",
        {"mon-fri": ["09:00-18:00"]},
        timedelta(hours=4),
        (60, 180, 360, 720),
    ),
)
ENGINEERS = [(f"Engineer {i}", f"UBENCH{i:03d}") for i in range(12)]
CHUNK = 5000


@dataclass
class SeedResult:
    tickets: int
    levels: int
    events: int
    seconds: float


def seed_history(*, tickets: int, days: int, end: datetime, seed: int = 7) -> SeedResult:
    """Bulk-insert ``tickets`` tickets opened over the ``days`` days before ``end``, with their levels,
    cycles, snoozes, pauses and timeline. Deterministic for a seed."""
    from escalation.clock import clock_for
    from escalation.models import Escalation, SnoozeRequest, TicketCycle, TicketPause, TicketSla
    from tickets.hours import OpenHours, weekly_parse
    from tickets.models import Ticket, TicketEvent, Tier, WatchedChannel

    started = time.perf_counter()
    rng = random.Random(seed)
    setups = []
    for name, zone, clock_kind, hours, target, delays in BENCH_TIERS:
        tier, _ = Tier.objects.get_or_create(name=name, defaults={"time_zone": zone, "business_hours": hours})
        channel, _ = WatchedChannel.objects.get_or_create(
            slack_channel_id=f"CBENCH{len(setups)}",
            defaults={"name": f"bench-{name.split()[-1].lower()}", "tier": tier},
        )
        open_hours = OpenHours(time_zone=zone, weekly=weekly_parse(hours)) if hours else None
        clock = clock_for(kind=clock_kind, hours=open_hours)
        setups.append(
            (tier, channel, clock_kind, open_hours.as_json() if open_hours else None, clock, target, delays)
        )
    levels = events = 0
    start = end - timedelta(days=days)
    span = (end - start).total_seconds()
    for offset in range(0, tickets, CHUNK):
        batch = []
        plans = []
        for i in range(offset, min(offset + CHUNK, tickets)):
            tier, channel, kind, hours_json, clock, target, delays = setups[i % len(setups)]
            opened = start + timedelta(seconds=rng.random() * span)
            breach = clock.add(opened, target)
            roll = rng.random()
            # a response after a lognormal wait on the policy's clock (median about 60% of the target)
            wait = target * min(rng.lognormvariate(-0.5, 0.8), 20)
            responded = clock.add(opened, wait) if roll < 0.85 and clock.add(opened, wait) < end else None
            closed = (
                opened + timedelta(minutes=rng.randint(1, 120)) if responded is None and roll < 0.92 else None
            )
            state = "responded" if responded else ("closed" if closed else "armed")
            batch.append(
                Ticket(
                    channel=channel,
                    slack_ts=f"{1_700_000_000 + i}.000100",
                    helpdesk_ticket_id=str(i),
                    priority=rng.choice(("low", "normal", "normal", "high", "urgent")),
                    opened_at=opened,
                    state=state,
                    responded_at=responded,
                    response_path="slack_thread" if responded else "",
                    closed_at=closed,
                    closed_via="button" if closed else "",
                )
            )
            plans.append((kind, hours_json, clock, target, delays, opened, breach, responded, closed))
        Ticket.objects.bulk_create(batch)
        slas, cycles, rows, snoozes, pauses, timeline = [], [], [], [], [], []
        for ticket, (kind, hours_json, clock, target, delays, opened, breach, responded, closed) in zip(
            batch, plans, strict=True
        ):
            slas.append(
                TicketSla(
                    ticket=ticket,
                    policy_name=f"{ticket.channel.tier.name} default",
                    armed_at=opened,
                    clock=kind,
                    hours=hours_json,
                    first_response_target=target,
                    breach_at=breach,
                )
            )
            cycles.append(
                TicketCycle(
                    ticket=ticket,
                    number=1,
                    kind="first",
                    started_at=opened,
                    target=target,
                    breach_at=breach,
                    responded_at=responded,
                    closed_at=closed,
                )
            )
            timeline.append(TicketEvent(ticket=ticket, kind="opened", at=opened, actor="UCUSTOMER"))
            ended = responded or closed or end
            for level, minutes in enumerate(delays, start=1):
                due = clock.add(opened, timedelta(minutes=minutes))
                fired = due < ended
                state = ("failed" if rng.random() < 0.005 else "fired") if fired else "cancelled"
                who = [ENGINEERS[rng.randrange(len(ENGINEERS))]] if level < 3 else []
                notified = (
                    [{"name": n, "slack_user_id": s} for n, s in who]
                    if level < 3
                    else [{"user_group": "SBENCH"}]
                )
                rows.append(
                    Escalation(
                        ticket=ticket,
                        level=level,
                        target_kind="on_shift",
                        due_at=due,
                        state=state,
                        fired_at=due if state == "fired" else None,
                        notified=notified if state == "fired" else [],
                    )
                )
                if state == "fired":
                    timeline.append(
                        TicketEvent(
                            ticket=ticket,
                            kind="level_fired",
                            at=due,
                            level=level,
                            details={"notified": notified},
                        )
                    )
            if responded:
                timeline.append(TicketEvent(ticket=ticket, kind="responded", at=responded, actor="UAGENT"))
                if rng.random() < 0.1:  # the customer wrote again: a next-response cycle
                    again = responded + timedelta(minutes=rng.randint(5, 600))
                    answer = again + timedelta(minutes=rng.randint(2, 240))
                    cycles.append(
                        TicketCycle(
                            ticket=ticket,
                            number=2,
                            kind="next",
                            started_at=again,
                            target=target,
                            breach_at=clock.add(again, target),
                            responded_at=answer if answer < end else None,
                        )
                    )
                    timeline.append(TicketEvent(ticket=ticket, kind="cycle_started", at=again))
            elif closed:
                timeline.append(TicketEvent(ticket=ticket, kind="closed", at=closed, actor="UAGENT"))
            if rng.random() < 0.05:
                snoozes.append(
                    SnoozeRequest(
                        request_key=f"bench-snooze-{ticket.pk}",
                        ticket=ticket,
                        at=opened + timedelta(minutes=5),
                        applied=True,
                    )
                )
                timeline.append(TicketEvent(ticket=ticket, kind="snoozed", at=opened + timedelta(minutes=5)))
            if rng.random() < 0.05 and responded and responded - opened > timedelta(minutes=20):
                pauses.append(
                    TicketPause(
                        ticket=ticket,
                        cycle=1,
                        paused_at=opened + timedelta(minutes=5),
                        paused_via="button",
                        resumed_at=opened + timedelta(minutes=15),
                        resumed_via="customer",
                    )
                )
        TicketSla.objects.bulk_create(slas)
        TicketCycle.objects.bulk_create(cycles)
        Escalation.objects.bulk_create(rows)
        SnoozeRequest.objects.bulk_create(snoozes)
        TicketPause.objects.bulk_create(pauses)
        TicketEvent.objects.bulk_create(timeline)
        levels += len(rows)
        events += len(timeline)
        print(f"  seeded {min(offset + CHUNK, tickets)} tickets", file=sys.stderr, flush=True)
    return SeedResult(tickets=tickets, levels=levels, events=events, seconds=time.perf_counter() - started)


def _section(stack: list[traceback.FrameSummary]) -> str:
    """The report section a query runs for: the outermost function of reports/figures.py on the stack
    below ``report_build`` (its helpers count towards the figure that called them)."""
    for frame in stack:
        if frame.filename.endswith(os.path.join("reports", "figures.py")) and frame.name not in _BUILDERS:
            return frame.name
    return "other"


# The report's scheduling (its sections may run on several connections at once): not a section.
_BUILDERS = ("report_build", "_report_tier", "_sections_run", "_sections_take", "_sections_helper")


@dataclass
class PageRun:
    wall: float
    cpu: float
    sql: float  # summed over the report's connections
    sql_wall: float  # wall time with at least one query in flight
    sections: dict[str, list[float]]  # section -> [seconds waiting for SQL, queries]
    slowest: dict[str, tuple[float, str, tuple]]  # section -> its slowest query (seconds, SQL, params)


def time_report_page(*, days: int, end: datetime, repeat: int) -> list[PageRun]:
    """Renders /admin/reports/sla/ for the ``days`` days before ``end`` (figures, charts and template),
    as a staff user, ``repeat`` times: per run the wall seconds, this process's CPU seconds, the
    seconds spent waiting for SQL (on a shared machine, mostly PostgreSQL waiting for a core), and
    that wait per section of the report (the function of reports/figures.py that ran the query).
    The report runs its sections on several connections at once (``REPORT_CONNECTIONS``), each
    with the caller's execute wrappers: the SQL wait is summed over them, so it can exceed the wall."""
    import threading

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import RequestFactory

    from reports.views import report_page

    user, _ = get_user_model().objects.get_or_create(
        username="bench-lead", defaults={"is_staff": True, "is_superuser": True}
    )
    query = {"since": (end - timedelta(days=days)).date().isoformat(), "until": end.date().isoformat()}
    runs = []
    for run in range(repeat + 1):  # the first run warms the process (URL conf, admin registry): not timed
        request = RequestFactory().get("/admin/reports/sla/", query)
        request.user = user
        began, cpu = time.perf_counter(), time.process_time()
        sections: dict[str, list[float]] = {}
        slowest: dict[str, tuple[float, str, tuple]] = {}

        lock = threading.Lock()  # the report's helper threads run this wrapper too
        spans: list[tuple[float, float]] = []

        def timed(
            execute,
            sql_text,
            params,
            many,
            context,
            sections=sections,
            slowest=slowest,
            lock=lock,
            spans=spans,
        ):
            at = time.perf_counter()
            try:
                return execute(sql_text, params, many, context)
            finally:
                took = time.perf_counter() - at
                name = _section(traceback.extract_stack())
                with lock:
                    spans.append((at, at + took))
                    entry = sections.setdefault(name, [0.0, 0])
                    entry[0] += took
                    entry[1] += 1
                    if took > slowest.get(name, (0.0,))[0]:
                        slowest[name] = (took, sql_text, tuple(params or ()))

        with connection.execute_wrapper(timed):
            response = report_page(request)
        assert response.status_code == 200 and b"<svg" in response.content
        if run:
            runs.append(
                PageRun(
                    wall=time.perf_counter() - began,
                    cpu=time.process_time() - cpu,
                    sql=sum(s for s, _ in sections.values()),
                    sql_wall=_covered(spans),
                    sections=sections,
                    slowest=slowest,
                )
            )
    return runs


def _covered(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of [start, end) spans."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def print_sections(runs: list[PageRun]) -> None:
    """Median SQL wait per section over the runs (and queries per run), costliest first."""
    names = {name for r in runs for name in r.sections}
    rows = sorted(
        ((statistics.median(r.sections.get(n, [0.0, 0])[0] for r in runs), n) for n in names), reverse=True
    )
    print("SQL wait per section (median of runs; queries per run):")
    for seconds, name in rows:
        print(f"  {name:<28} {seconds:6.2f} s  ({runs[-1].sections.get(name, [0, 0])[1]} queries)")
    in_flight = statistics.median(r.sql_wall for r in runs)
    rest = statistics.median(r.wall - r.sql_wall for r in runs)
    print(f"  {'(a query in flight, wall)':<28} {in_flight:6.2f} s")
    print(f"  {'(page outside SQL)':<28} {rest:6.2f} s")


def explain_slowest(run: PageRun) -> None:
    """EXPLAIN ANALYZE of each section's slowest query of the run, as the report runs it."""
    from django.db import connection, transaction

    for name, (took, sql_text, params) in sorted(run.slowest.items(), key=lambda i: -i[1][0]):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL jit = off")  # as report_build
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql_text}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"\n--- {name}: slowest query, {took:.2f} s in the run\n{sql_text}\nparams {params}\n{plan}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90, help="History seeded, and the report's range.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--reuse", action="store_true", help="Keep the tickets already seeded (no new seeding)."
    )
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE each section's slowest query of the last run."
    )
    args = parser.parse_args(argv)

    bench_environment(database="slabuddy_reports_bench", broker_db=10, data_dir="/tmp/bench-reports")
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tickets.models import Ticket

    call_command("migrate", verbosity=0)
    end = datetime(2026, 11, 1, tzinfo=UTC)
    if not args.reuse:
        Ticket.objects.filter(channel__slack_channel_id__startswith="CBENCH").delete()
        seeded = seed_history(tickets=args.tickets, days=args.days, end=end)
        print(
            f"seeded {seeded.tickets} tickets, {seeded.levels} levels, {seeded.events} timeline events "
            f"in {seeded.seconds:.1f} s"
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    count = Ticket.objects.count()
    runs = time_report_page(days=args.days, end=end, repeat=args.repeat)
    load = os.getloadavg()
    print(
        f"report page, {args.days} days, {count} tickets in the database: "
        f"median {statistics.median(r.wall for r in runs):.2f} s, "
        f"runs {', '.join(f'{r.wall:.2f}' for r in runs)} s "
        f"(SQL wait, summed over the report's connections, {', '.join(f'{r.sql:.2f}' for r in runs)} s; "
        f"CPU of this process {', '.join(f'{r.cpu:.2f}' for r in runs)} s)"
    )
    print_sections(runs)
    print(
        f"machine: {platform.node()} {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    if args.explain:
        explain_slowest(runs[-1])


if __name__ == "__main__":
    main()
