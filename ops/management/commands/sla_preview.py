"""When would a ticket's levels fire? The same clock code arming uses; nothing is written.

    python manage.py sla_preview --tier Teams --opened-at 2026-11-27T17:30
    python manage.py sla_preview --tier Enterprise --priority urgent --opened-at 2026-11-27T17:30+01:00

Prints JSON: {"tier", "policy", "clock", "breach_at", "levels": [{"level", "due_at", "notify"}]},
times in ISO 8601 in the tier's time zone. A time without an offset is read in the tier's zone.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from escalation.preview import PreviewError, tier_preview
from tickets.models import Priority, Tier


class Command(BaseCommand):
    help = "Preview when each level of a tier's policy would fire for a ticket opened at a given time."

    def add_arguments(self, parser):
        parser.add_argument("--tier", required=True, help="the tier's name")
        parser.add_argument("--priority", default="", choices=["", *Priority.values],
                            help="the ticket's priority (default: none, the tier's default policy)")
        parser.add_argument("--opened-at", required=True,
                            help="ISO 8601, e.g. 2026-11-27T17:30+01:00 (no offset: the tier's time zone)")

    def handle(self, *args, tier: str, priority: str, opened_at: str, **options):
        found = Tier.objects.filter(name=tier).first()
        if found is None:
            names = ", ".join(Tier.objects.order_by("name").values_list("name", flat=True)) or "none"
            raise CommandError(f"--tier: no tier named {tier!r} (tiers: {names})")
        try:
            moment = datetime.fromisoformat(opened_at)
        except ValueError:
            raise CommandError(f"--opened-at: {opened_at!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=found.zone)
        try:
            preview = tier_preview(tier=found, priority=priority, opened_at=moment)
        except PreviewError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(preview))
