"""Print the /readyz checks as JSON; exit 1 when one fails.

Used by docker-compose health checks, e.g. ``manage.py readiness --only beat``.
"""

import json

from django.core.management.base import BaseCommand

from ops.health import readiness


class Command(BaseCommand):
    help = "Run the readiness checks (database, broker, beat, calendars); exit 1 if one fails."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only",
            action="append",
            choices=["database", "broker", "beat", "calendars"],
            help="Run only this check (repeatable).",
        )

    def handle(self, *args, only=None, **options):
        ok, checks = readiness(only=only)
        self.stdout.write(json.dumps({"status": "ok" if ok else "unavailable", "checks": checks}))
        if not ok:
            raise SystemExit(1)
