"""What the calendar clients (google.py, ical.py) hand to the sync: occurrences with aware UTC times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class CalendarFetchError(Exception):
    """A calendar could not be read; the last good data stays in place."""


@dataclass
class FetchedEvent:
    """One occurrence as read from a calendar."""

    event_id: str
    title: str
    starts_at: datetime
    ends_at: datetime
    all_day: bool = False
    attendees: list[str] = field(default_factory=list)  # lower-case emails of non-declining attendees
    time_zone: str = ""  # the zone all-day and floating times were read in (holiday dates use it)


@dataclass(frozen=True)
class SkippedSeries:
    """A series (the events sharing one UID) a client could not read; the sync keeps its last good
    intervals and records a warning on the source."""

    uid: str
    summary: str
    reason: str

    def describe(self) -> str:
        return f"Skipped event UID {self.uid[:200]!r} ({self.summary[:100] or 'no summary'}): {self.reason}"


@dataclass
class FetchedCalendar:
    """What one read of a calendar gave: the occurrences, and the series it had to skip."""

    events: list[FetchedEvent] = field(default_factory=list)
    skipped: list[SkippedSeries] = field(default_factory=list)
