"""Hours of operation as data: a weekly schedule in a tier's time zone, plus holidays. Pure.

The schedule is written as people (and ``sla_config`` files) write it::

    {"mon-fri": ["09:00-18:00"], "sat": ["10:00-14:00"]}

Keys are days (``mon`` .. ``sun``), ranges (``mon-fri``, ``fri-mon``) or lists
(``mon,wed``); each value is a list of ``HH:MM-HH:MM`` intervals in local
time. An interval whose end is not after its start runs past midnight
(``22:00-06:00`` opens on the named day and closes the next morning);
``24:00`` ends a day. Days that are not named are closed. No schedule at all
(``None``) means around the clock. A holiday closes its whole local calendar
day, 00:00-24:00, including the morning part of a night interval that began
the evening before.

The arithmetic over these hours lives in the engine (``escalation/clock.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60

# (start, end) in minutes after the local midnight of the day it opens; end may pass 1440
# (the interval runs past midnight), and end > start always.
Interval = tuple[int, int]
# Seven entries, Monday first.
Weekly = tuple[tuple[Interval, ...], ...]

_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class HoursError(ValueError):
    """A schedule that cannot be read. ``key`` is where (``mon-fri[0]``), ``message`` what is wrong."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message


def _quoted(value: object) -> str:
    return '"' + str(value).replace('"', '\\"') + '"'


def _days_of(key: str) -> list[int]:
    """'mon-fri' -> [0..4]; 'fri-mon' -> [4, 5, 6, 0]; 'mon,wed' -> [0, 2]."""
    days: list[int] = []
    for part in str(key).lower().split(","):
        part = part.strip()
        ends = [p.strip() for p in part.split("-")]
        if len(ends) > 2 or any(e not in DAYS for e in ends):
            raise HoursError(str(key), "is not a day (mon..sun) or a range of days (mon-fri)")
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        span = (last - first) % 7
        days.extend((first + i) % 7 for i in range(span + 1))
    return days


def interval_parse(text: object) -> Interval:
    """'09:00-18:00' -> (540, 1080); '22:00-06:00' -> (1320, 1800). Raises ValueError."""
    match = _TIME.match(str(text)) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{_quoted(text)} is not an interval like 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ValueError(f"{_quoted(text)} is not an interval of times between 00:00 and 24:00")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end == start:
        raise ValueError(f"{_quoted(text)} is empty (for a whole day write 00:00-24:00)")
    if end < start:
        end += MINUTES_PER_DAY  # runs past midnight
    return start, end


def weekly_parse(schedule: Mapping[str, object]) -> Weekly:
    """Read a schedule mapping; raises HoursError naming the bad key."""
    if not isinstance(schedule, Mapping):
        raise HoursError("", "must be a mapping of days to intervals, like {mon-fri: [09:00-18:00]}")
    days: list[list[Interval] | None] = [None] * 7
    for key, value in schedule.items():
        indexes = _days_of(str(key))
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list):
            raise HoursError(str(key), "must be a list of intervals like [09:00-18:00]")
        intervals = []
        for position, item in enumerate(values):
            try:
                intervals.append(interval_parse(item))
            except ValueError as exc:
                raise HoursError(f"{key}[{position}]", str(exc)) from None
        for index in indexes:
            if days[index] is not None:
                raise HoursError(str(key), f"{DAYS[index]} is given more than once")
            days[index] = sorted(intervals)
    if not any(days):
        raise HoursError("", "has no open hours at all (leave it empty for around the clock)")
    return tuple(tuple(day or ()) for day in days)


def _time_text(minutes: int) -> str:
    if minutes == MINUTES_PER_DAY:
        return "24:00"
    minutes %= MINUTES_PER_DAY
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def interval_text(interval: Interval) -> str:
    start, end = interval
    return f"{_time_text(start)}-{_time_text(end)}"


def weekly_format(weekly: Weekly) -> dict[str, list[str]]:
    """The canonical written form: consecutive days with the same hours grouped (mon-fri)."""
    out: dict[str, list[str]] = {}
    index = 0
    while index < 7:
        last = index
        while last + 1 < 7 and weekly[last + 1] == weekly[index]:
            last += 1
        if weekly[index]:
            key = DAYS[index] if last == index else f"{DAYS[index]}-{DAYS[last]}"
            out[key] = [interval_text(i) for i in weekly[index]]
        index = last + 1
    return out


def weekly_normalise(schedule: Mapping[str, object] | None) -> dict[str, list[str]] | None:
    """Validate and rewrite a schedule in its canonical form (None stays None: around the clock)."""
    if schedule is None:
        return None
    return weekly_format(weekly_parse(schedule))


def zone_check(name: str) -> ZoneInfo:
    """The IANA zone, or ValueError with a message for people."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{_quoted(name)} is not an IANA time zone (like Europe/Berlin)") from None


@dataclass(frozen=True)
class OpenHours:
    """When a tier is open: its zone, its weekly schedule (None: around the clock) and holidays.

    ``holidays`` holds the closed dates the caller gathered for the period it cares
    about (``tickets.tier_hours.tier_open_hours`` gathers about a year ahead).
    """

    time_zone: str
    weekly: Weekly | None = None
    holidays: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def around_the_clock(self) -> bool:
        return self.weekly is None and not self.holidays

    def as_json(self) -> dict:
        """The form a ticket's snapshot stores (TicketSla.hours)."""
        return {
            "time_zone": self.time_zone,
            "business_hours": None if self.weekly is None else weekly_format(self.weekly),
            "holidays": sorted(day.isoformat() for day in self.holidays),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> OpenHours:
        schedule = data.get("business_hours")
        return cls(
            time_zone=str(data.get("time_zone") or "UTC"),
            weekly=None if schedule is None else weekly_parse(schedule),
            holidays=frozenset(date.fromisoformat(d) for d in data.get("holidays") or ()),
        )


def dates_parse(values: Iterable[object]) -> list[date]:
    """ISO dates (or date objects, as YAML reads them); ValueError naming the bad one."""
    found = []
    for value in values:
        if isinstance(value, date):
            found.append(value)
            continue
        try:
            found.append(date.fromisoformat(str(value)))
        except ValueError:
            raise ValueError(f"{_quoted(value)} is not a date like 2026-12-24") from None
    return found
