"""The business clock (escalation/clock.py): exact open-time arithmetic over schedules, zones,
daylight-saving changes and holidays, checked against a minute-by-minute reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from escalation.clock import (
    CALENDAR,
    BusinessClock,
    ClockError,
    clock_for,
    next_opening,
    open_at,
    open_time_add,
    open_time_between,
)
from tickets.hours import OpenHours, weekly_parse

BERLIN = ZoneInfo("Europe/Berlin")
MINUTE = timedelta(minutes=1)
ZONES = ("Europe/Berlin", "America/Chicago", "Australia/Lord_Howe", "Asia/Kolkata", "UTC")
# Daylight-saving changes in 2026 (both directions), and a quiet week.
CHANGE_DATES = {
    "Europe/Berlin": (date(2026, 3, 29), date(2026, 10, 25)),
    "America/Chicago": (date(2026, 3, 8), date(2026, 11, 1)),
    "Australia/Lord_Howe": (date(2026, 4, 5), date(2026, 10, 4)),  # a 30-minute shift
    "Asia/Kolkata": (date(2026, 6, 10),),
    "UTC": (date(2026, 2, 2),),
}
NINE_TO_SIX = weekly_parse({"mon-fri": ["09:00-18:00"]})


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


# --- the reference: one minute at a time, by local wall time ------------------------------


def reference_open(hours: OpenHours, at: datetime) -> bool:
    """Whether the minute starting at ``at`` is open, written independently of the clock."""
    local = at.astimezone(ZoneInfo(hours.time_zone))
    if local.date() in hours.holidays:
        return False
    if hours.weekly is None:
        return True
    minute = local.hour * 60 + local.minute
    for start, end in hours.weekly[local.weekday()]:
        if start <= minute < min(end, 1440):
            return True
    for _, end in hours.weekly[(local.weekday() + 6) % 7]:
        if end > 1440 and minute < end - 1440:
            return True
    return False


def reference_add(hours: OpenHours, start: datetime, minutes: int, *, limit_days: int = 12):
    at = start
    counted = 0
    for _ in range(limit_days * 1440):
        if reference_open(hours, at):
            if minutes == 0:
                return at
            counted += 1
            if counted == minutes:
                return at + MINUTE
        at += MINUTE
    return None  # too far for the reference


def reference_between(hours: OpenHours, start: datetime, end: datetime) -> timedelta:
    total, at = 0, start
    while at < end:
        total += reference_open(hours, at)
        at += MINUTE
    return total * MINUTE


# --- strategies -------------------------------------------------------------------------------


@st.composite
def schedules(draw):
    """A weekly schedule: per day none, one or two intervals on the half hour (so that openings
    and closings fall into DST gaps and repeated hours), possibly running past midnight."""
    days = []
    for _ in range(7):
        intervals = []
        for _ in range(draw(st.integers(0, 2))):
            start = draw(st.integers(0, 47)) * 30
            length = draw(st.integers(1, 48)) * 30
            intervals.append((start, start + length))
        days.append(tuple(sorted(intervals)))
    assume(any(days))
    return tuple(days)


@st.composite
def situations(draw):
    zone = draw(st.sampled_from(ZONES))
    around = draw(st.sampled_from(CHANGE_DATES[zone]))
    weekly = draw(st.one_of(st.none(), schedules()))
    window = [around + timedelta(days=d) for d in range(-3, 6)]
    holidays = frozenset(draw(st.lists(st.sampled_from(window), max_size=2)))
    hours = OpenHours(time_zone=zone, weekly=weekly, holidays=holidays)
    offset_minutes = draw(st.integers(-2 * 1440, 1 * 1440))
    start = datetime(around.year, around.month, around.day, tzinfo=UTC) + offset_minutes * MINUTE
    return hours, start


EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EXAMPLES
@given(situations(), st.integers(0, 1800))
def test_adding_open_time_agrees_with_the_minute_by_minute_reference(situation, minutes):
    hours, start = situation
    expected = reference_add(hours, start, minutes)
    assume(expected is not None)
    assert open_time_add(hours, start, minutes * MINUTE) == expected


@EXAMPLES
@given(situations(), st.integers(0, 3 * 1440))
def test_open_time_between_agrees_with_the_reference(situation, span):
    hours, start = situation
    end = start + span * MINUTE
    assert open_time_between(hours, start, end) == reference_between(hours, start, end)
    assert open_time_between(hours, end, start) == -reference_between(hours, start, end)


@EXAMPLES
@given(situations(), st.integers(0, 2000), st.integers(0, 2000))
def test_adding_is_monotonic_and_additive(situation, a, b):
    hours, start = situation
    first = open_time_add(hours, start, a * MINUTE)
    both = open_time_add(hours, start, (a + b) * MINUTE)
    assert first <= both  # more open time never ends earlier
    assert open_time_add(hours, first, b * MINUTE) == both  # adding in two steps = in one
    assert open_time_between(hours, start, first) == a * MINUTE
    later_start = open_time_add(hours, start + 7 * MINUTE, a * MINUTE)
    assert later_start >= first  # a later start never finishes earlier


@EXAMPLES
@given(situations(), st.integers(0, 2000))
def test_a_due_time_never_lands_outside_open_hours(situation, minutes):
    hours, start = situation
    due = open_time_add(hours, start, minutes * MINUTE)
    if minutes == 0:
        assert open_at(hours, due)  # the next opening (or the start, if open)
        assert due == next_opening(hours, start)
    else:
        assert open_at(hours, due - timedelta(microseconds=1))  # the last counted moment was open
    assert due >= start


def test_friday_evening_ticket_counts_from_monday_morning():
    hours = OpenHours("Europe/Berlin", NINE_TO_SIX)
    opened = berlin(2026, 11, 27, 17, 30)  # Friday
    due = [open_time_add(hours, opened, timedelta(hours=h)).astimezone(BERLIN) for h in (1, 3, 6, 12)]
    assert due == [berlin(2026, 11, 30, 9, 30), berlin(2026, 11, 30, 11, 30),
                   berlin(2026, 11, 30, 14, 30), berlin(2026, 12, 1, 11, 30)]
    with_holiday = OpenHours("Europe/Berlin", NINE_TO_SIX, frozenset({date(2026, 11, 30)}))
    moved = [open_time_add(with_holiday, opened, timedelta(hours=h)) for h in (1, 3, 6, 12)]
    assert moved == [d + timedelta(days=1) for d in due]


def test_a_ticket_opened_during_a_holiday_starts_counting_after_it():
    hours = OpenHours("Europe/Berlin", NINE_TO_SIX, frozenset({date(2026, 12, 24), date(2026, 12, 25)}))
    opened = berlin(2026, 12, 24, 10, 0)  # Thursday, Christmas Eve
    assert open_time_add(hours, opened, timedelta(hours=1)) == berlin(2026, 12, 28, 10, 0)
    assert open_time_between(hours, opened, berlin(2026, 12, 28, 9, 0)) == timedelta(0)


def test_a_schedule_across_midnight():
    hours = OpenHours("Europe/Berlin", weekly_parse({"mon-fri": ["22:00-06:00"]}))
    friday_night = berlin(2026, 11, 27, 23, 0)
    assert open_time_add(hours, friday_night, timedelta(hours=1)) == berlin(2026, 11, 28, 0, 0)
    assert open_time_add(hours, friday_night, timedelta(hours=7)) == berlin(2026, 11, 28, 6, 0)
    # Saturday 06:00 closes Friday's night; Saturday and Sunday nights are closed.
    assert open_time_add(hours, friday_night, timedelta(hours=8)) == berlin(2026, 11, 30, 23, 0)
    assert open_at(hours, berlin(2026, 11, 28, 5, 0)) and not open_at(hours, berlin(2026, 11, 28, 23, 0))
    # A holiday closes its whole day, also the morning part of the night before it.
    holiday = OpenHours("Europe/Berlin", hours.weekly, frozenset({date(2026, 11, 28)}))
    assert open_time_add(holiday, friday_night, timedelta(hours=1)) == berlin(2026, 11, 28, 0, 0)
    assert open_time_add(holiday, friday_night, timedelta(hours=2)) == berlin(2026, 11, 30, 23, 0)


@pytest.mark.parametrize(("day", "hours_open"), [(date(2026, 3, 29), 9), (date(2026, 10, 25), 9)])
def test_a_nine_to_six_day_is_nine_hours_when_the_clocks_change(day, hours_open):
    every_day = OpenHours("Europe/Berlin", weekly_parse({"mon-sun": ["09:00-18:00"]}))
    midnight = datetime(day.year, day.month, day.day, tzinfo=BERLIN)
    assert open_time_between(every_day, midnight, midnight + timedelta(days=1)) == timedelta(hours=hours_open)
    assert next_opening(every_day, midnight) == datetime(day.year, day.month, day.day, 9, tzinfo=BERLIN)
    assert open_time_add(every_day, midnight, timedelta(hours=9)) == datetime(
        day.year, day.month, day.day, 18, tzinfo=BERLIN)


def test_night_hours_over_a_clock_change_count_the_hours_that_really_pass():
    nights = OpenHours("Europe/Berlin", weekly_parse({"mon-sun": ["22:00-06:00"]}))
    # Spring forward (02:00 -> 03:00): the night is 7 hours; fall back (03:00 -> 02:00): 9 hours.
    assert open_time_between(nights, berlin(2026, 3, 28, 12), berlin(2026, 3, 29, 12)) == timedelta(hours=7)
    assert open_time_between(nights, berlin(2026, 10, 24, 12), berlin(2026, 10, 25, 12)) == timedelta(hours=9)


def test_lord_howe_half_hour_change_and_an_opening_inside_the_gap():
    zone = ZoneInfo("Australia/Lord_Howe")  # 2026-10-04 02:00 -> 02:30
    hours = OpenHours("Australia/Lord_Howe", weekly_parse({"sun": ["02:15-04:00"]}))
    day = datetime(2026, 10, 4, tzinfo=zone)
    # 02:15 does not exist that night: the interval opens when the clocks jump to 02:30.
    assert next_opening(hours, day).astimezone(zone) == datetime(2026, 10, 4, 2, 30, tzinfo=zone)
    assert open_time_between(hours, day, day + timedelta(days=1)) == timedelta(minutes=90)


def test_calendar_clock_and_empty_hours():
    start = berlin(2026, 11, 27, 17, 30)
    assert CALENDAR.add(start, timedelta(hours=12)) == start + timedelta(hours=12)
    assert clock_for(kind="business", hours=OpenHours("UTC")) is CALENDAR  # around the clock
    assert clock_for(kind="calendar", hours=OpenHours("UTC", NINE_TO_SIX)) is CALENDAR
    assert isinstance(clock_for(kind="business", hours=OpenHours("UTC", NINE_TO_SIX)), BusinessClock)
    closed = frozenset(date(2026, 1, 1) + timedelta(days=d) for d in range(1200))
    every_day_closed = OpenHours("UTC", None, closed)
    with pytest.raises(ClockError, match="no open time"):
        open_time_add(every_day_closed, datetime(2026, 1, 1, tzinfo=UTC), MINUTE)
    with pytest.raises(ValueError, match="aware"):
        open_time_add(every_day_closed, datetime(2026, 1, 1), MINUTE)  # noqa: DTZ001 - the refusal under test
