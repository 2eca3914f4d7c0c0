"""Where the firing path's time goes: fire N due levels in this process, one after another, under
cProfile, against the stand-in Slack, on PostgreSQL, and count the queries of each.

    python -m bench.firing_profile --levels 300            # queries per level, time per level, top functions

No Celery, no worker: this measures the engine's own work per level (the claim, the outbox, the
thread lookups, the settle), which ``bench.escalation_lag --side-by-side`` compares with a bare
Celery task that only posts. Uses ``DATABASE_URL`` (default database ``slabuddy_bench``; its bench
tickets are replaced) and never the broker (tasks queued after commit are discarded).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.common import ensure_database


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.firing_profile",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, default=300)
    parser.add_argument("--top", type=int, default=25, help="functions to list (by cumulative time)")
    options = parser.parse_args(argv)
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/slabuddy_bench")
    os.environ.setdefault("SLABUDDY_DATA_DIR", "/tmp/slabuddy-bench")
    os.environ["CELERY_BROKER_URL"] = "memory://"  # nothing is sent anywhere
    os.environ["SLACK_CHANNEL_PACING"] = os.environ.get("SLACK_CHANNEL_PACING", "false")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slabuddy.settings")
    ensure_database()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from base.fake_slack import FakeSlack
    from calendars.targets import TargetKind
    from escalation.arming import tickets_arm_new
    from escalation.firing import escalation_fire
    from escalation.models import Escalation, EscalationStep, SlaPolicy
    from tickets.models import Ticket, Tier, WatchedChannel

    call_command("migrate", verbosity=0)
    tier, _ = Tier.objects.get_or_create(name="Bench")
    Ticket.objects.filter(channel__tier=tier).delete()
    policy, _ = SlaPolicy.objects.get_or_create(tier=tier, priority="", defaults={"name": "Bench"})
    policy.steps.all().delete()
    EscalationStep.objects.create(policy=policy, level=1, delay=timedelta(minutes=10),
                                  target_kind=TargetKind.USER_GROUP, target_ref="SBENCH")
    EscalationStep.objects.create(policy=policy, level=2, delay=timedelta(hours=6),
                                  target_kind=TargetKind.USER_GROUP, target_ref="SBENCH")
    channel, _ = WatchedChannel.objects.get_or_create(slack_channel_id="CBENCH000",
                                                      defaults={"name": "bench-0", "tier": tier})
    opened = datetime.now(UTC) - timedelta(minutes=11)
    Ticket.objects.bulk_create(
        Ticket(channel=channel, slack_ts=f"{1700000000 + i}.{i:06d}", helpdesk_ticket_id=str(i),
               priority="normal", text="bench ticket", opened_at=opened) for i in range(options.levels)
    )
    tickets = list(Ticket.objects.filter(channel__tier=tier).select_related("channel__tier"))
    with FakeSlack() as fake:
        settings.SLACK_API_BASE_URL = fake.base_url
        for t in tickets:
            fake.add_message(channel.slack_channel_id, "bench ticket", ts=t.slack_ts, user="UCUST")
        tickets_arm_new(tickets=tickets, now=opened)
        rows = list(Escalation.objects.filter(ticket__in=tickets, level=1).values_list("pk", "version"))
        queries: list[int] = []
        seconds: list[float] = []
        kinds: Counter = Counter()
        profiler = cProfile.Profile()
        for pk, version in rows:
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                profiler.enable()
                outcome = escalation_fire(escalation_id=pk, version=version)
                profiler.disable()
                seconds.append(time.perf_counter() - started)
            assert outcome == "fired", outcome
            queries.append(len(captured.captured_queries))
            for query in captured.captured_queries:
                kinds[query["sql"].split()[0].upper()] += 1
        posts = fake.call_counts()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(options.top)
    print(out.getvalue())
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "levels": len(rows),
        "queries_per_level": statistics.median(queries),
        "statements_by_kind_per_level": {k: round(v / len(rows), 1) for k, v in kinds.most_common()},
        "ms_per_level_p50": round(1000 * statistics.median(seconds), 2),
        "ms_per_level_mean": round(1000 * statistics.mean(seconds), 2),
        "slack_calls": dict(posts),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }
    print(result)
    return result


if __name__ == "__main__":
    main()
