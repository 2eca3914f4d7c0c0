"""Holiday calendars: the closed days read from a holiday source's events.

A source whose purpose is *holidays* is synced like the others (calendars/sync.py)
but over a longer window, and its events become dates (``HolidayDate``), not
engineer intervals: an all-day event closes each date it covers (DTEND = DTSTART
counts as one day), a timed event closes each local date it touches.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from base.timezones import zone_or_utc
from calendars.events import FetchedEvent
from calendars.models import CalendarSource, HolidayDate

WINDOW_BACK = timedelta(days=31)
WINDOW_AHEAD = timedelta(days=400)


def holiday_window(now: datetime) -> tuple[datetime, datetime]:
    return now - WINDOW_BACK, now + WINDOW_AHEAD


def holiday_dates(events: Iterable[FetchedEvent], *, default_tz: str) -> dict[date, str]:
    """Closed local dates -> the holiday's name (several on one day are joined)."""
    found: dict[date, list[str]] = {}
    for event in events:
        zone = zone_or_utc(event.time_zone or default_tz)
        first = event.starts_at.astimezone(zone).date()
        last_moment = event.ends_at.astimezone(zone)
        # An all-day event ends at the midnight after its last day; a timed one on the date it ends.
        last = (last_moment - timedelta(microseconds=1)).date() if event.all_day else last_moment.date()
        day = first
        while day <= max(first, last):
            names = found.setdefault(day, [])
            if event.title and event.title not in names:
                names.append(event.title)
            day += timedelta(days=1)
    return {day: " / ".join(names)[:500] for day, names in found.items()}


def holiday_dates_replace(
    *, source: CalendarSource, dates: dict[date, str], time_min: datetime, time_max: datetime, now: datetime
) -> None:
    """Replace the source's dates inside the synced window (call inside the sync's transaction)."""
    zone = zone_or_utc(source.time_zone)
    start, end = time_min.astimezone(zone).date(), time_max.astimezone(zone).date()
    HolidayDate.objects.filter(source=source, date__range=(start, end)).delete()
    HolidayDate.objects.bulk_create(
        HolidayDate(source=source, date=day, name=name, synced_at=now)
        for day, name in sorted(dates.items())
        if start <= day <= end
    )
