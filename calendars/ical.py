"""iCal feed client: fetch over HTTP with a short timeout, expand recurrences into occurrences.

recurring-ical-events applies RRULE, EXDATE, moved instances (RECURRENCE-ID)
and X-WR-TIMEZONE; this module turns each occurrence into aware UTC times.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from calendars.events import CalendarFetchError, FetchedEvent

MAX_BYTES = 20 * 1024 * 1024  # a roster calendar is far smaller; refuse to read a runaway feed


def ical_fetch(*, url: str, timeout: float) -> bytes:
    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    request = urllib.request.Request(url, headers={"User-Agent": "SLA Buddy calendar sync"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked in the model)
            data = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        # The message names the status only: a secret iCal address must not end up in the admin or logs.
        raise CalendarFetchError(f"iCal feed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CalendarFetchError(f"iCal feed unreachable: {reason}") from None
    if len(data) > MAX_BYTES:
        raise CalendarFetchError(f"iCal feed is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    return data


def _aware(value: date | datetime, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        # Floating times (no TZID) are read in the calendar's time zone.
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
    return datetime.combine(value, dtime(), tzinfo=tz).astimezone(UTC)


def _emails(component) -> list[str]:
    attendees = component.get("ATTENDEE") or []
    if not isinstance(attendees, list):
        attendees = [attendees]
    emails = []
    for attendee in attendees:
        if str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper() == "DECLINED":
            continue
        address = str(attendee)
        if address.lower().startswith("mailto:"):
            address = address[len("mailto:") :]
        if "@" in address:
            emails.append(address.strip().lower())
    return emails


def ical_events(
    *, data: bytes, time_min: datetime, time_max: datetime, default_tz: str = "UTC"
) -> list[FetchedEvent]:
    """Every occurrence overlapping [time_min, time_max), cancelled ones left out."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise CalendarFetchError(f"iCal feed is not a valid calendar: {exc}") from None
    tz = ZoneInfo(str(calendar.get("X-WR-TIMEZONE") or default_tz))
    events = []
    for occurrence in recurring_ical_events.of(calendar, skip_bad_series=True).between(time_min, time_max):
        if str(occurrence.get("STATUS", "")).upper() == "CANCELLED":
            continue
        try:
            start, end = occurrence.start, occurrence.end
        except (icalendar.InvalidCalendar, icalendar.IncompleteComponent):
            continue
        if not isinstance(start, datetime) and not isinstance(end, datetime) and end <= start:
            end = start + timedelta(days=1)  # all-day with DTEND = DTSTART (holiday exports): one day
        starts_at, ends_at = _aware(start, tz), _aware(end, tz)
        if ends_at <= starts_at:
            continue
        recurrence_id = occurrence.get("RECURRENCE-ID")
        instance = _aware(recurrence_id.dt, tz) if recurrence_id else starts_at
        events.append(
            FetchedEvent(
                event_id=f"{occurrence.get('UID', '')}/{instance:%Y%m%dT%H%M%SZ}",
                title=str(occurrence.get("SUMMARY", "")),
                starts_at=starts_at,
                ends_at=ends_at,
                all_day=not isinstance(start, datetime),
                attendees=_emails(occurrence),
                time_zone=str(tz),
            )
        )
    return events
