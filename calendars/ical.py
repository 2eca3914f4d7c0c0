"""iCal feed client: fetch over HTTPS within a total deadline, expand recurrences into occurrences.

recurring-ical-events applies RRULE, EXDATE, moved instances (RECURRENCE-ID)
and X-WR-TIMEZONE; this module turns each occurrence into aware UTC times.

Each series (the events sharing a UID) is expanded on its own, so one broken
series (an empty ``EXDATE;VALUE=DATE:`` line from a Google export, an event
with two DTSTART lines) is skipped and reported as ``SkippedSeries`` while the
rest of the feed is read: the sync keeps that series' last good intervals and
records a warning on the source.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from base.outbound_http import AddressRefused, DeadlineExceeded, HttpStatusError, OutboundHttpError, http_get
from calendars.events import CalendarFetchError, FetchedCalendar, FetchedEvent, SkippedSeries
from calendars.feed_address import address_allowed, https_url, ical_hop_check, ical_url_problem

MAX_BYTES = 20 * 1024 * 1024  # a roster calendar is far smaller; refuse to read a runaway feed


def ical_fetch(*, url: str, timeout: float) -> bytes:
    """The feed's bytes, read within ``timeout`` seconds in total.

    The scheme and address rules (calendars/feed_address.py) are checked here
    whatever the stored row says, for the URL and every redirect. Messages name
    the status or the reason, never the address (it may be secret) or the body.
    """
    problem = ical_url_problem(url, resolve=False)
    if problem:
        raise CalendarFetchError(f"iCal feed address refused: {problem}")
    try:
        answer = http_get(
            https_url(url),
            headers={"User-Agent": "SLA Buddy calendar sync", "Accept": "text/calendar, */*;q=0.5"},
            deadline_seconds=timeout,
            max_bytes=MAX_BYTES,
            url_check=ical_hop_check,
            address_allowed=address_allowed,
        )
    except DeadlineExceeded:
        raise CalendarFetchError(f"iCal feed did not answer within {timeout:g} s.") from None
    except HttpStatusError as exc:
        raise CalendarFetchError(f"iCal feed: {exc}") from None
    except AddressRefused as exc:
        raise CalendarFetchError(
            f"iCal feed address refused: {exc}; set CALENDAR_ALLOW_PRIVATE_ADDRESSES=true to read "
            "feeds inside your network"
        ) from None
    except OutboundHttpError as exc:
        if "larger than" in str(exc):
            raise CalendarFetchError(f"iCal feed is larger than {MAX_BYTES // (1024 * 1024)} MB.") from None
        raise CalendarFetchError(f"iCal feed {exc}") from None
    return answer.body


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


# --- time zones ----------------------------------------------------------------------


def calendar_time_zone(name: str) -> ZoneInfo:
    """An IANA name, or a Windows one ("Eastern Standard Time", from Outlook and Exchange) mapped
    to IANA by the Unicode CLDR table that icalendar ships and keeps current."""
    name = name.strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    if name in WINDOWS_TO_OLSON:
        return ZoneInfo(WINDOWS_TO_OLSON[name])
    raise CalendarFetchError(
        f"The feed's time zone (X-WR-TIMEZONE) {name[:64]!r} is neither an IANA time zone "
        "(Europe/Berlin) nor a Windows time zone name (W. Europe Standard Time)."
    )


# --- DURATION ------------------------------------------------------------------------


def _exact_end(start: date | datetime, duration: timedelta, tz: ZoneInfo) -> datetime:
    """RFC 5545 3.3.6: days and weeks are nominal (the same wall-clock time), hours, minutes and
    seconds exact. So an 8-hour shift starting 22:00 before a DST change lasts 8 real hours."""
    local = start if isinstance(start, datetime) and start.tzinfo else _aware(start, tz).astimezone(tz)
    nominal = local + timedelta(days=duration.days)  # aware arithmetic keeps the wall-clock time
    return nominal.astimezone(UTC) + timedelta(seconds=duration.seconds, microseconds=duration.microseconds)


def _source_component(occurrence, components: list, tz: ZoneInfo):
    """The VEVENT an occurrence came from: its own moved instance, else the series' main event."""
    recurrence_id = occurrence.get("RECURRENCE-ID")
    if recurrence_id is not None:
        at = _aware(recurrence_id.dt, tz)
        for component in components:
            own = component.get("RECURRENCE-ID")
            if own is not None and _aware(own.dt, tz) == at:
                return component
    return next((c for c in components if c.get("RECURRENCE-ID") is None), None)


def _duration_end(occurrence, components: list, tz: ZoneInfo) -> datetime | None:
    """The exact end when the event gives a DURATION with a time part; None to keep the library's."""
    source = _source_component(occurrence, components, tz)
    if source is None or source.get("DTEND") is not None or source.get("DURATION") is None:
        return None
    duration = source.get("DURATION").dt
    start = occurrence.start
    if not isinstance(duration, timedelta) or not isinstance(start, datetime):
        return None
    if not (duration.seconds or duration.microseconds):
        return None  # whole days: nominal, which is what the library computed
    return _exact_end(start, duration, tz)


# --- one occurrence --------------------------------------------------------------------


def ical_occurrence_event(occurrence, *, tz: ZoneInfo, components: list) -> FetchedEvent | None:
    """One expanded occurrence as a FetchedEvent; None for one that is cancelled or has no length."""
    if str(occurrence.get("STATUS", "")).upper() == "CANCELLED":
        return None
    try:
        start, end = occurrence.start, occurrence.end
    except (icalendar.InvalidCalendar, icalendar.IncompleteComponent):
        return None
    if not isinstance(start, datetime) and not isinstance(end, datetime) and end <= start:
        end = start + timedelta(days=1)  # all-day with DTEND = DTSTART (holiday exports): one day
    starts_at, ends_at = _aware(start, tz), _aware(end, tz)
    ends_at = _duration_end(occurrence, components, tz) or ends_at
    if ends_at <= starts_at:
        return None
    recurrence_id = occurrence.get("RECURRENCE-ID")
    instance = _aware(recurrence_id.dt, tz) if recurrence_id else starts_at
    return FetchedEvent(
        event_id=f"{occurrence.get('UID', '')}/{instance:%Y%m%dT%H%M%SZ}",
        title=str(occurrence.get("SUMMARY", "")),
        starts_at=starts_at,
        ends_at=ends_at,
        all_day=not isinstance(start, datetime),
        attendees=_emails(occurrence),
        time_zone=str(tz),
    )


# --- the feed, series by series ------------------------------------------------------------

SINGLE_PROPERTIES = ("UID", "DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "RRULE", "SUMMARY", "STATUS")


def _text(value) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


def _why_unreadable(components: list, exc: Exception) -> str:
    """What is wrong with the series, in words that never quote a broken value."""
    for component in components:
        for name in SINGLE_PROPERTIES:
            value = component.get(name)
            if isinstance(value, list) and len(value) > 1:
                return f"it has {len(value)} {name} lines (one is allowed)"
        for name, value in component.items():
            if isinstance(value, getattr(icalendar.prop, "vBroken", ())):
                return f"its {name} line cannot be read"
    if isinstance(exc, ZoneInfoNotFoundError):
        return "it names a time zone that is not known"
    return f"it cannot be read ({type(exc).__name__})"


def _by_uid(calendar) -> dict[str, list]:
    series: dict[str, list] = {}
    for component in calendar.walk("VEVENT"):
        series.setdefault(_text(component.get("UID")), []).append(component)
    return series


def _series_calendar(calendar, timezones: list, components: list, zone_name: str):
    """A calendar with the feed's properties and time zones and this one series."""
    single = icalendar.Calendar()
    for name, value in calendar.items():
        single[name] = value
    if zone_name:
        single["X-WR-TIMEZONE"] = zone_name  # the IANA name, also for a Windows one in the feed
    single.subcomponents = [*timezones, *components]
    return single


def ical_read(
    *, data: bytes, time_min: datetime, time_max: datetime, default_tz: str = "UTC"
) -> FetchedCalendar:
    """Every occurrence overlapping [time_min, time_max), cancelled ones left out; broken series skipped."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError:
        # Not quoted: the answer may be any page (the parser's message repeats its text).
        raise CalendarFetchError(
            "iCal feed is not a valid calendar (the answer is not iCalendar data)."
        ) from None
    named = _text(calendar.get("X-WR-TIMEZONE")).strip()
    tz = calendar_time_zone(named) if named else calendar_time_zone(default_tz)
    feed = FetchedCalendar()
    timezones = calendar.walk("VTIMEZONE")
    for uid, components in _by_uid(calendar).items():
        try:
            single = _series_calendar(calendar, timezones, components, tz.key if named else "")
            occurrences = recurring_ical_events.of(single).between(time_min, time_max)
            events = [ical_occurrence_event(o, tz=tz, components=components) for o in occurrences]
        except Exception as exc:  # noqa: BLE001 - any failure in one series must not lose the others
            summary = next((_text(c.get("SUMMARY")) for c in components if c.get("SUMMARY")), "")
            reason = _why_unreadable(components, exc)
            feed.skipped.append(SkippedSeries(uid=uid, summary=summary, reason=reason))
            continue
        feed.events.extend(event for event in events if event is not None)
    return feed


def ical_events(
    *, data: bytes, time_min: datetime, time_max: datetime, default_tz: str = "UTC"
) -> list[FetchedEvent]:
    """Every occurrence overlapping [time_min, time_max), cancelled ones left out (broken series too)."""
    return ical_read(data=data, time_min=time_min, time_max=time_max, default_tz=default_tz).events
