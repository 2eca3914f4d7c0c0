"""Replay past tickets under a proposed policy file ("what if"), actual versus proposed.

    python manage.py sla_replay --since 2026-10-01 --until 2026-11-01 --policy-file proposed.yaml \\
        [--tier Enterprise] [--format json|text]

The file is in the format of ``sla_config`` (README.md, "Policy as code"); tiers it does not name
keep their current policies. Nothing is written and nothing is sent. The JSON is described in
README.md ("Replay").
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reports.replay.policy_file import PolicyFileInvalid, policy_file_read
from reports.replay.running import replay_run


def _day(value: str) -> datetime:
    """A date (the start of that day, UTC) or an ISO time with its offset."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    if parsed.tzinfo is None:
        raise CommandError(f"{value!r} needs a UTC offset (or give a plain date)")
    return parsed


class Command(BaseCommand):
    help = "Replay the tickets opened in a range under a proposed policy file; print actual versus proposed."

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="first day (YYYY-MM-DD, UTC) or ISO time")
        parser.add_argument("--until", required=True, help="day after the last (YYYY-MM-DD, UTC) or ISO time")
        parser.add_argument("--policy-file", required=True,
                            help="proposed policies (sla_config YAML; - for standard input)")
        parser.add_argument("--tier", default=None, help="only tickets of this tier")
        parser.add_argument("--format", choices=["json", "text"], default="json")

    def handle(self, *args, since: str, until: str, policy_file: str, tier: str | None, format: str,
               **options):
        start, end = _day(since), _day(until)
        if end <= start:
            raise CommandError("--until must be after --since")
        try:
            text = sys.stdin.read() if policy_file == "-" else Path(policy_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {policy_file}: {exc.strerror or exc}") from None
        try:
            config = policy_file_read(text)
        except PolicyFileInvalid as invalid:
            lines = "\n".join(f"  {error}" for error in invalid.errors)
            raise CommandError(f"{policy_file} was refused:\n{lines}") from None
        report = replay_run(since=start, until=end, config=config, tier=tier)
        data = report.as_json()
        if format == "json":
            self.stdout.write(json.dumps(data, indent=2))
            return
        for side in ("actual", "proposed"):
            figures = data[side]
            self.stdout.write(f"{side}: levels fired {figures['levels_fired']}, "
                              f"breaches {figures['breaches']}, "
                              f"attainment {figures['first_response_attainment']['share']}, "
                              f"pages outside business hours {figures['pages_outside_business_hours']}")
        self.stdout.write(f"{data['tickets']} tickets replayed, {len(data['changed'])} would change.")
