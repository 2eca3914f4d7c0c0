"""A tier's hours of operation gathered from the database: schedule, hand-entered dates,
country holidays (the ``holidays`` package) and a synced holiday calendar."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays

from calendars.models import HolidayDate
from tickets.hours import OpenHours, weekly_parse
from tickets.models import Tier, TierHoliday

# Holidays are gathered for this stretch around a moment: enough for any ladder, snooze or pause.
HOLIDAYS_BACK = timedelta(days=7)
HOLIDAYS_AHEAD = timedelta(days=400)


@lru_cache(maxsize=256)
def country_holidays(country: str, subdivision: str, year: int) -> dict[date, str]:
    """One year of a country's (or subdivision's) public holidays. Cached: they do not change."""
    found = holidays.country_holidays(country, subdiv=subdivision or None, years=[year])
    return dict(found.items())


def tier_holidays(tier: Tier, *, start: date, end: date,
                  entered: Mapping[date, str] | None = None) -> dict[date, str]:
    """Every closed date of the tier in [start, end], with a name, from all three sources.

    ``entered`` stands for the tier's hand-entered dates (``TierHoliday``) when they are not its
    rows: a tier of a proposed ``sla_config`` file, held in memory by a replay."""
    found: dict[date, str] = {}
    if tier.holiday_country:
        for year in range(start.year, end.year + 1):
            for day, name in country_holidays(tier.holiday_country, tier.holiday_subdivision, year).items():
                if start <= day <= end:
                    found[day] = name
    if tier.holiday_calendar_id:
        for day, name in HolidayDate.objects.filter(
            source_id=tier.holiday_calendar_id, source__active=True, date__range=(start, end)
        ).values_list("date", "name"):
            found.setdefault(day, name)
    if entered is None:
        entered = dict(TierHoliday.objects.filter(tier=tier, date__range=(start, end)).values_list(
            "date", "name")) if tier.pk else {}
    for day, name in entered.items():
        if start <= day <= end:
            found[day] = name or found.get(day, "")
    return found


def open_hours_build(tier: Tier, *, closed: Iterable[date]) -> OpenHours:
    """The clock's input from a tier's fields and its closed dates (pure)."""
    return OpenHours(
        time_zone=str(tier.zone),
        weekly=None if tier.business_hours is None else weekly_parse(tier.business_hours),
        holidays=frozenset(closed),
    )


def tier_open_hours(tier: Tier, *, around: datetime, entered: Mapping[date, str] | None = None) -> OpenHours:
    """The tier's hours as the clock needs them, with the holidays from a week before
    ``around`` to about a year after it (``entered``: see ``tier_holidays``)."""
    local = around.astimezone(tier.zone).date()
    closed = tier_holidays(tier, start=local - HOLIDAYS_BACK, end=local + HOLIDAYS_AHEAD, entered=entered)
    return open_hours_build(tier, closed=closed)
