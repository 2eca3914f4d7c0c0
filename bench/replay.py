"""Replay timing: a 30-day replay of N tickets (default 10,000) on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slabuddy_replay_bench python -m bench.replay

1. Creates and migrates the database if needed, and (unless ``--reuse``) empties the bench's own
   rows, then seeds ``--tickets`` past tickets over ``--days`` days in two tiers (a 24/7 one on the
   calendar clock, a business-hours one), with their level rows, cycles, waits, snoozes and
   timelines, and a month of shift overrides for five engineers. The seeding is bulk inserts,
   through the same generator as the demo's past month (ops/demo/history.py).
2. Times ``replay_run`` over the whole range twice: under the identical policies (it must report
   no change) and under a stricter ladder (every delay halved). Prints the figures as JSON.

The timing includes reading the tickets and their timelines, the roster history and every
ticket's replay; the issue's budget is 60 s for 10,000 tickets.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.common import BASE_DIR, bench_environment, ensure_database, machine


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=10_000, help="tickets seeded in the range (10,000)")
    parser.add_argument("--days", type=int, default=30, help="days of the range (30)")
    parser.add_argument("--reuse", action="store_true", help="replay what the last run seeded, seed nothing")
    parser.add_argument("--json", help="also write the result to this file")
    return parser.parse_args(argv)


def _seed(*, tickets: int, days: int, now: datetime) -> float:
    from django.db import transaction

    from calendars.models import Engineer, RosterOverride
    from ops.demo.history import MARK, demo_history_tiers, demo_roster_history, past_tickets_seed
    from tickets.models import Ticket

    started = time.monotonic()
    with transaction.atomic():
        channels = demo_history_tiers()
        Ticket.objects.filter(channel__in=channels).delete()
        RosterOverride.objects.filter(note__startswith=MARK).delete()
        Engineer.objects.filter(slack_user_id__startswith="UDEMO").update(active=True)
        start = now - timedelta(days=days)
        demo_roster_history(start=start, now=now)
    past_tickets_seed(channels=channels, start=start, end=now - timedelta(hours=1), count=tickets, now=now,
                      seed=11)
    return time.monotonic() - started


def _config(factor: float):
    import yaml

    from escalation.sla_config_schema import duration_parse, duration_text
    from ops.sla_config.exporting import config_export
    from reports.replay.policy_file import policy_file_read

    document = config_export()
    for tier in document["tiers"]:
        for policy in tier.get("policies", []):
            if factor != 1:
                policy.pop("first_response_target", None)
                for step in policy["steps"]:
                    step["after"] = duration_text(duration_parse(step["after"]) * factor)
    return policy_file_read(yaml.safe_dump(document))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_environment(database="slabuddy_replay_bench", broker_db=11, data_dir="/tmp/slabuddy-replay-bench")
    ensure_database()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=BASE_DIR, check=True)
    import django

    django.setup()
    from ops.demo.history import demo_history_tiers
    from reports.replay.running import replay_run
    from tickets.models import Ticket

    now = datetime(2026, 11, 1, tzinfo=UTC)
    seeded = 0.0 if args.reuse else _seed(tickets=args.tickets, days=args.days, now=now)
    count = Ticket.objects.filter(channel__in=demo_history_tiers()).count()
    result = {"tickets": count, "days": args.days, "seed_seconds": round(seeded, 1), "machine": machine()}
    for name, factor in (("identical", 1.0), ("stricter", 0.5)):
        config = _config(factor)
        started = time.monotonic()
        report = replay_run(since=now - timedelta(days=args.days + 1), until=now, config=config, now=now)
        took = time.monotonic() - started
        result[name] = {"seconds": round(took, 2), "replayed": report.tickets, "changed": len(report.changed),
                        "levels_fired_actual": dict(report.actual.as_json()["levels_fired"]),
                        "levels_fired_proposed": dict(report.proposed.as_json()["levels_fired"])}
        if name == "identical" and report.changed:
            raise SystemExit(f"the identical-policy replay changed {len(report.changed)} tickets")
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
