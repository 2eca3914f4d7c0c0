"""Policy as code: export the configuration to YAML, or import a YAML file.

    python manage.py sla_config export [FILE]            # FILE or standard output
    python manage.py sla_config import FILE [--dry-run]  # FILE or - for standard input

The format is documented in README.md ("Policy as code") and checked by
escalation/sla_config_schema.py. A bad file is refused as a whole and nothing is written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from escalation.sla_config_schema import ConfigInvalid, config_read
from ops.sla_config.exporting import config_dump, config_export
from ops.sla_config.importing import config_apply, known_references


class Command(BaseCommand):
    help = "Export the SLA configuration (tiers, hours, holidays, policies, channels, engineers) as YAML, " \
        "or import it."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="export|import")
        export = actions.add_parser("export", help="write the configuration as YAML")
        export.add_argument("file", nargs="?", default="-",
                            help="where to write it (default: standard output)")
        imports = actions.add_parser("import", help="make the database match a YAML file")
        imports.add_argument("file", help="the YAML file (- for standard input)")
        imports.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")

    def handle(self, *args, action: str, file: str, dry_run: bool = False, **options):
        if action == "export":
            text = config_dump(config_export())
            if file == "-":
                self.stdout.write(text, ending="")
            else:
                Path(file).write_text(text, encoding="utf-8")
                self.stderr.write(f"Wrote {file}.")
            return
        try:
            raw = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}") from None
        try:
            document = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise CommandError(f"{file} is not valid YAML, nothing was written: {exc}") from None
        tiers, engineers = known_references()
        try:
            config = config_read(document, known_tiers=tiers, known_engineers=engineers)
        except ConfigInvalid as invalid:
            lines = "\n".join(f"  {error}" for error in invalid.errors)
            raise CommandError(f"{file} was refused, nothing was written:\n{lines}") from None
        try:
            changes = config_apply(config, dry_run=dry_run)
        except IntegrityError as exc:  # e.g. an engineer's Slack id already belongs to another engineer
            raise CommandError(f"{file} conflicts with the database, nothing was written: {exc}") from None
        if not changes:
            self.stdout.write("No changes: the database already matches the file.")
        else:
            self.stdout.write("Would change (dry run, nothing written):" if dry_run else "Changed:")
            for line in changes:
                self.stdout.write(f"  {line}")
        if config.warnings:
            self.stdout.write("Note, on this server:")
            for line in config.warnings:
                self.stdout.write(f"  {line}")
