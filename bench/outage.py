"""Redis stopped, or PostgreSQL restarted, during a run: no level lost or doubled, and how soon
the levels that fell due meanwhile post once the service is back.

    python -m bench.outage --service redis --down 60       # Redis stopped for a minute
    python -m bench.outage --service postgres --down 5     # PostgreSQL restarted (down 5 s)
    python -m bench.outage --service postgres --down 60    # PostgreSQL down for a minute
    python -m bench.outage --service worker --down 5       # worker killed, broker flushed, restarted

It never touches the machine's own Redis or PostgreSQL: it starts a private
redis-server (append-only, no eviction, as in docker-compose.yml) and a private
PostgreSQL cluster (initdb + pg_ctl, as the ``postgres`` user when run as root)
on free ports in a temporary folder, runs one Celery worker and beat against
them, and stops only those. Levels fall due at ``--rate`` per second from
``--before`` seconds before the outage to ``--after`` seconds after it.
See ops/testing/outage.py for what is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from bench.common import stop_on_sigterm
from ops.testing.services import PrivatePostgres, PrivateRedis, missing_servers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.outage", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", choices=("redis", "postgres", "worker"), required=True,
                        help="worker: SIGKILL the worker, flush the broker, start a new worker after --down")
    parser.add_argument("--down", type=float, default=60.0, help="seconds the service stays away (60)")
    parser.add_argument("--rate", type=float, default=2.0, help="levels falling due per second (2)")
    parser.add_argument("--before", type=float, default=15.0, help="seconds of due levels before (15)")
    parser.add_argument("--after", type=float, default=30.0, help="seconds of due levels after (30)")
    parser.add_argument("--sweep", type=int, default=15, help="ESCALATION_SWEEP_SECONDS of beat (15)")
    parser.add_argument("--lead", type=float, default=20.0,
                        help="seconds from the start to the first level due (20): time to arm them all")
    parser.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    options = parse_args(argv)
    stop_on_sigterm()
    why_not = missing_servers()
    if why_not:
        raise SystemExit(f"cannot start private servers: {why_not}")
    folder = Path(tempfile.mkdtemp(prefix="slabuddy-outage-"))
    logs = folder / "logs"
    logs.mkdir()
    redis = PrivateRedis(folder / "redis", logs).start()
    postgres = PrivatePostgres(folder / "postgres").start()
    try:
        postgres.create_database()
        os.environ.update({
            "DJANGO_SETTINGS_MODULE": "slabuddy.settings",
            "DATABASE_URL": postgres.url(),
            "CELERY_BROKER_URL": redis.url,
            "SLABUDDY_DATA_DIR": str(folder / "data"),
            "SLACK_BOT_TOKEN": "xoxb-outage",
            "SLACK_BOT_USER_ID": "UOUTAGEBOT",
            "DEBUG": "false",
            "LOG_LEVEL": "info",
        })
        import django

        django.setup()
        from django.core.management import call_command

        from ops.testing.outage import OutagePlan, outage_run

        call_command("migrate", verbosity=0)
        plan = OutagePlan(service=options.service, down_seconds=options.down, levels_per_second=options.rate,
                          before=options.before, after=options.after, lead=options.lead,
                          sweep_seconds=options.sweep)
        result = outage_run(plan, redis=redis, postgres=postgres, env=dict(os.environ), log_dir=logs)
    finally:
        redis.stop()
        postgres.stop()
        if not options.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result, indent=2), flush=True)
    if options.json:
        options.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
