"""The roster of a past stretch, read once (RosterHistory, for replays), answers every moment of it as
the live resolution does at that moment: shift intervals, embedded intervals, overrides (open-ended,
long, overlapping), the latest override winning, half-open ends."""

from datetime import timedelta

import pytest

from calendars.factories import CalendarIntervalFactory, CalendarSourceFactory, RosterOverrideFactory
from calendars.models import OverrideKind, Purpose
from calendars.resolve import RosterHistory, resolve_target, roster_at
from calendars.targets import TargetKind
from tests.support.calendar_files import utc

pytestmark = pytest.mark.django_db

START = utc(2026, 10, 1)
END = utc(2026, 10, 22)


@pytest.fixture
def month(team):
    shifts = CalendarSourceFactory(name="Shifts", purpose=Purpose.SHIFTS, last_success_at=START)
    embedded = CalendarSourceFactory(name="Embedded", purpose=Purpose.EMBEDDED, last_success_at=START)
    day = START
    while day < END:
        CalendarIntervalFactory(source=shifts, engineer=team["alice"], starts_at=day + timedelta(hours=8),
                                ends_at=day + timedelta(hours=16))
        CalendarIntervalFactory(source=shifts, engineer=team["bob"], starts_at=day + timedelta(hours=14),
                                ends_at=day + timedelta(hours=23))
        day += timedelta(days=1)
    # Long (more than a week) and short embedded stints, an open-ended override, overlapping ones.
    CalendarIntervalFactory(source=embedded, engineer=team["bob"], product="Auth", starts_at=START,
                            ends_at=START + timedelta(days=12))
    CalendarIntervalFactory(source=embedded, engineer=team["alice"], product="Storage",
                            starts_at=utc(2026, 10, 9, 9), ends_at=utc(2026, 10, 9, 13))
    RosterOverrideFactory(engineer=team["carol"], kind=OverrideKind.ON_SHIFT, starts_at=utc(2026, 10, 5),
                          ends_at=None)
    RosterOverrideFactory(engineer=team["alice"], kind=OverrideKind.OFF_SHIFT, starts_at=utc(2026, 10, 7, 10),
                          ends_at=utc(2026, 10, 8, 10))
    RosterOverrideFactory(engineer=team["alice"], kind=OverrideKind.ON_SHIFT, starts_at=utc(2026, 10, 7, 12),
                          ends_at=utc(2026, 10, 7, 13))
    RosterOverrideFactory(engineer=team["bob"], kind=OverrideKind.NOT_EMBEDDED, starts_at=utc(2026, 10, 3),
                          ends_at=utc(2026, 10, 4))


def _line(line):
    return (line.engineer.pk, line.on_shift, line.embedded_in)


def test_every_moment_of_the_stretch_answers_as_the_live_roster(month, settings):
    settings.SLACK_SUPPORT_USERGROUP_ID = "SSUPPORT"
    history = RosterHistory(since=START, until=END)
    at = START
    seen = set()
    while at < END:
        live = [_line(line) for line in roster_at(at)]
        assert [_line(line) for line in history.lines(at)] == live, at
        seen.add(tuple(live))
        for kind in (TargetKind.ON_SHIFT_NOT_EMBEDDED, TargetKind.ON_SHIFT, TargetKind.HEAD_OF_SUCCESS):
            replayed = resolve_target(kind=kind, at=at, history=history)
            now = resolve_target(kind=kind, at=at)
            assert (replayed.mentions, replayed.fell_through_from) == (now.mentions, now.fell_through_from)
            assert replayed.warnings == []  # staleness is about now, not about the past
        at += timedelta(minutes=173)  # not a divisor of a day: every hour of the day comes up
    assert len(seen) > 8  # the roster really changed over the stretch
