"""What a tier of an ``sla_config`` file sets on a ``Tier``, and the hours it gives the clock.

One reading for the import (``ops/sla_config/importing.py`` writes these fields and finds or
creates the holiday calendar source) and the replay (``reports/replay``, which holds the tier in
memory and never writes): the hours a proposed tier replays with are built by the same code that
builds them for arming once the file is imported (``tickets.tier_hours.tier_open_hours``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from calendars.models import CalendarSource, Purpose, SourceKind
from escalation.sla_config_schema import HolidaysSpec, TierSpec
from tickets.hours import OpenHours, weekly_format
from tickets.models import Tier
from tickets.tier_hours import tier_open_hours


def tier_fields(spec: TierSpec) -> dict[str, Any]:
    """The ``Tier`` fields the file sets (the holiday calendar source apart). A tier without
    ``business_hours`` is open around the clock."""
    return {"name": spec.name, "time_zone": spec.time_zone, "description": spec.description,
            "business_hours": None if spec.business_hours is None else weekly_format(spec.business_hours),
            "holiday_country": spec.holidays.country, "holiday_subdivision": spec.holidays.subdivision}


def holiday_source_lookup(spec: HolidaysSpec) -> tuple[str, dict[str, str]] | None:
    """The kind and identifying field of the holiday calendar the file names, if any."""
    if spec.ical:
        return SourceKind.ICAL, {"ical_url": spec.ical}
    if spec.google_calendar:
        return SourceKind.GOOGLE, {"google_calendar_id": spec.google_calendar}
    return None


def holiday_source_find(spec: HolidaysSpec) -> CalendarSource | None:
    """The existing holiday calendar source the file names (None: none named, or not yet created)."""
    lookup = holiday_source_lookup(spec)
    if lookup is None:
        return None
    kind, fields = lookup
    return CalendarSource.objects.filter(purpose=Purpose.HOLIDAYS, kind=kind, **fields).first()


def proposed_open_hours(spec: TierSpec, *, around: datetime) -> OpenHours:
    """The hours a tier would have once the file is imported, without writing anything: its
    schedule, zone, country holidays, the file's dates and the dates already synced from the
    holiday calendar it names (a feed not synced yet adds none)."""
    source = holiday_source_find(spec.holidays)
    tier = Tier(**tier_fields(spec), holiday_calendar_id=source.pk if source else None)
    return tier_open_hours(tier, around=around, entered={e.day: e.name for e in spec.holidays.dates})
