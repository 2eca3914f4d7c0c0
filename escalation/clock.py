"""The SLA clock: how a policy counts time. Pure, typed functions; no database.

A *calendar* clock counts every second (24/7). A *business* clock counts only
the tier's open time (``tickets.hours.OpenHours``): its weekly schedule in its
own time zone, minus holidays.

The arithmetic is exact across daylight-saving changes because it never adds
wall-clock durations. A moment is open when its *local wall time* falls in the
schedule of its local date (``open_at``); the open stretches are found in UTC
by splitting time where the zone's UTC offset changes and, within each piece
(where local time = UTC + a constant offset), intersecting with the schedule.
So a 09:00-18:00 day is 9 hours of open time on the day the clocks change,
opening at 09:00 local time; an opening inside the spring-forward gap happens
when the clocks jump past it; a night interval over the autumn fall-back hour
is open both times the clocks show it.

Used by arming, snoozes and the preview alike (``escalation/planning.py``):
there is no second implementation. Instants are handled as integer
microseconds since the epoch, so no naive datetime is ever built.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from django.db import models

from tickets.hours import MINUTES_PER_DAY, OpenHours, Weekly

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_US = 1_000_000
_MINUTE = 60 * _US
_DAY = 24 * 60 * _MINUTE
_ONE_US = timedelta(microseconds=1)
# A business clock that finds no open time for this long gives up (an empty schedule,
# or every day a holiday) instead of searching for ever.
SEARCH_DAYS = 3 * 366


class ClockKind(models.TextChoices):
    CALENDAR = "calendar", "Calendar (24/7)"
    BUSINESS = "business", "Business hours (the tier's hours, minus holidays)"


class ClockError(ValueError):
    """The hours have no open time to count (within SEARCH_DAYS)."""


def _us(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("the clock needs aware datetimes")
    return (at - _EPOCH) // _ONE_US


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _offset(zone: ZoneInfo, us: int) -> int:
    return _at(us).astimezone(zone).utcoffset() // _ONE_US


def _pieces(zone: ZoneInfo, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Split [start, end) where the zone's UTC offset changes: (from, to, offset) pieces."""
    while start < end:
        first = _offset(zone, start)
        if _offset(zone, end - 1) == first:
            yield start, end, first
            return
        low, high = start, end - 1  # offset(low) == first != offset(high)
        while high - low > 1:
            middle = (low + high) // 2
            if _offset(zone, middle) == first:
                low = middle
            else:
                high = middle
        yield start, high, first
        start = high


@lru_cache(maxsize=512)
def _day_ranges(weekly: Weekly | None, weekday: int) -> tuple[tuple[int, int], ...]:
    """Open wall-time ranges of a (non-holiday) local day, in microseconds after its midnight:
    the day's own intervals (cut at midnight) and the morning part of the previous day's
    intervals that run past midnight. Merged and sorted."""
    if weekly is None:
        return ((0, _DAY),)
    ranges = [(start, min(end, MINUTES_PER_DAY)) for start, end in weekly[weekday]]
    ranges += [(0, end - MINUTES_PER_DAY) for _, end in weekly[(weekday - 1) % 7] if end > MINUTES_PER_DAY]
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((start * _MINUTE, end * _MINUTE) for start, end in merged)


def _local_date(wall_us: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + wall_us // _DAY)


def _segments(hours: OpenHours, start: int, until: int | None) -> Iterator[tuple[int, int]]:
    """Open stretches [a, b) in UTC microseconds, in order, from ``start`` on (clipped to it),
    touching stretches joined within a day's chunk. Stops at ``until``; without one, raises
    ClockError after SEARCH_DAYS of closed time."""
    zone = hours.zone
    chunk = start
    pending: tuple[int, int] | None = None
    last_open = start
    while until is None or chunk < until:
        chunk_end = chunk + _DAY if until is None else min(chunk + _DAY, until)
        for piece_start, piece_end, offset in _pieces(zone, chunk, chunk_end):
            wall_start, wall_end = piece_start + offset, piece_end + offset
            for day in range(wall_start // _DAY, (wall_end - 1) // _DAY + 1):
                local = _local_date(day * _DAY)
                if local in hours.holidays:
                    continue
                for low, high in _day_ranges(hours.weekly, local.weekday()):
                    a = max(day * _DAY + low, wall_start) - offset
                    b = min(day * _DAY + high, wall_end) - offset
                    if a >= b:
                        continue
                    last_open = b
                    if pending is not None and a <= pending[1]:
                        pending = (pending[0], max(pending[1], b))
                        continue
                    if pending is not None:
                        yield pending
                    pending = (a, b)
        chunk = chunk_end
        if pending is not None:
            yield pending  # at most a day long: callers get open time as it comes
            pending = None
        if until is None and chunk - last_open > SEARCH_DAYS * _DAY:
            raise ClockError(f"no open time within {SEARCH_DAYS} days: check the business hours and holidays")


def open_at(hours: OpenHours, at: datetime) -> bool:
    """Whether ``at`` is within the hours (the reference definition, by local wall time)."""
    local = at.astimezone(hours.zone)
    if local.date() in hours.holidays:
        return False
    minute = local.hour * 60 + local.minute
    if hours.weekly is None:
        return True
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    if any(start <= minute < end for start, end in hours.weekly[today]):
        return True
    return any(minute < end - MINUTES_PER_DAY for _, end in hours.weekly[yesterday])


def open_time_add(hours: OpenHours, start: datetime, amount: timedelta) -> datetime:
    """The moment when ``amount`` of open time has passed since ``start``. Outside the hours,
    counting starts at the next opening; an amount of zero gives that opening (or ``start``
    itself when open). The result is UTC."""
    remaining = amount // _ONE_US
    if remaining < 0:
        raise ValueError("the clock adds no negative time")
    for a, b in _segments(hours, _us(start), None):
        if remaining <= b - a:
            return _at(a + remaining)
        remaining -= b - a
    raise ClockError("no open time")  # unreachable: _segments raises first


def open_time_between(hours: OpenHours, start: datetime, end: datetime) -> timedelta:
    """Open time in [start, end); negative when ``end`` is before ``start``."""
    if end < start:
        return -open_time_between(hours, end, start)
    total = sum(b - a for a, b in _segments(hours, _us(start), _us(end)))
    return timedelta(microseconds=total)


def open_stretches(hours: OpenHours, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The open stretches [a, b) within [start, end), in order: what ``open_time_between`` sums
    (reports measure many tickets against one list instead of walking the hours for each)."""
    return [(_at(a), _at(b)) for a, b in _segments(hours, _us(start), _us(end))]


def next_opening(hours: OpenHours, at: datetime) -> datetime:
    return open_time_add(hours, at, timedelta(0))


class Clock(Protocol):
    """How a policy counts time: add open time to a moment, measure it between two."""

    kind: str

    def add(self, start: datetime, amount: timedelta) -> datetime: ...

    def between(self, start: datetime, end: datetime) -> timedelta: ...


@dataclass(frozen=True)
class CalendarClock:
    kind: str = ClockKind.CALENDAR

    def add(self, start: datetime, amount: timedelta) -> datetime:
        return (start + amount).astimezone(UTC)

    def between(self, start: datetime, end: datetime) -> timedelta:
        return end - start


@dataclass(frozen=True)
class BusinessClock:
    hours: OpenHours
    kind: str = ClockKind.BUSINESS

    def add(self, start: datetime, amount: timedelta) -> datetime:
        return open_time_add(self.hours, start, amount)

    def between(self, start: datetime, end: datetime) -> timedelta:
        return open_time_between(self.hours, start, end)


CALENDAR = CalendarClock()


def clock_for(*, kind: str, hours: OpenHours | None) -> Clock:
    """The clock of a policy; a business clock over hours that are always open is the calendar."""
    if kind == ClockKind.BUSINESS and hours is not None and not hours.around_the_clock:
        return BusinessClock(hours)
    return CALENDAR

