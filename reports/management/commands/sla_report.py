"""``manage.py sla_report --since DATE --until DATE [--tier T] --format json|csv``: the report's figures,
computed by reports/figures.py exactly as the report page shows them."""

from __future__ import annotations

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from reports.csv_rows import csv_lines, ticket_csv_lines
from reports.figures import SECTIONS, ReportFilters, columns_for, report_build, report_ticket_rows, rows_for


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date like 2026-10-01") from None


class Command(BaseCommand):
    help = "Print the SLA report's figures for tickets opened in a date range, as JSON or CSV."

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", required=True, help="First day (YYYY-MM-DD), in each tier's time zone."
        )
        parser.add_argument("--until", required=True, help="Last day, inclusive (YYYY-MM-DD).")
        parser.add_argument("--tier", default="", help="Only this tier (its name).")
        parser.add_argument("--priority", default="", help="Only tickets of this priority.")
        parser.add_argument("--channel", default="", help="Only this channel (C… id or #name).")
        parser.add_argument("--format", choices=("json", "csv"), default="json")
        parser.add_argument(
            "--section",
            choices=(*SECTIONS, "tickets"),
            default="weeks",
            help="CSV only: which rows (default: weeks; 'tickets': one row per ticket). JSON has every "
            "section except the tickets.",
        )

    def handle(self, *args, **options):
        try:
            filters = ReportFilters(
                since=_date(options["since"]),
                until=_date(options["until"]),
                tier=options["tier"],
                priority=options["priority"],
                channel=options["channel"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["format"] == "json":
            self.stdout.write(json.dumps(report_build(filters=filters).as_dict(), indent=2))
            return
        if options["section"] == "tickets":
            lines = ticket_csv_lines(report_ticket_rows(filters=filters))
        else:
            rows = rows_for(report_build(filters=filters), options["section"])
            lines = csv_lines(rows, columns_for(rows))
        for chunk in lines:
            self.stdout.write(chunk, ending="")
