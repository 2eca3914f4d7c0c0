"""Synced shifts stay as history after they end (replays resolve past levels against them) until
CALENDAR_HISTORY_RETENTION_DAYS have passed; the sync window is never pruned."""

from datetime import timedelta

import pytest

from calendars.factories import CalendarIntervalFactory, CalendarSourceFactory
from calendars.models import CalendarInterval, Purpose
from calendars.sync import calendar_source_sync
from tests.support.calendar_files import fixture_bytes, utc

pytestmark = pytest.mark.django_db

NOW = utc(2026, 10, 23, 12)


@pytest.fixture
def shift_source(ical_server):
    ical_server.routes["/shifts.ics"] = (200, fixture_bytes("shifts.ics"))
    return CalendarSourceFactory(
        name="Support shifts", purpose=Purpose.SHIFTS, ical_url=f"{ical_server.base_url}/shifts.ics"
    )


def _old(source, *, ended_days_ago: float, title: str):
    end = NOW - timedelta(days=ended_days_ago)
    return CalendarIntervalFactory(source=source, purpose=Purpose.SHIFTS, title=title, event_id=title,
                                   starts_at=end - timedelta(hours=8), ends_at=end)


def test_a_sync_keeps_past_shifts_within_the_retention_and_prunes_older_ones(team, shift_source, frozen):
    kept = _old(shift_source, ended_days_ago=399, title="last year's shift")
    month = _old(shift_source, ended_days_ago=30, title="last month's shift")
    gone = _old(shift_source, ended_days_ago=401, title="older than the retention")
    other = CalendarSourceFactory(name="Other shifts", purpose=Purpose.SHIFTS,
                                  ical_url="https://example.com/x.ics")
    untouched = _old(other, ended_days_ago=500, title="another source's old shift")
    frozen(NOW)
    assert calendar_source_sync(source=shift_source).ok
    titles = set(CalendarInterval.objects.values_list("title", flat=True))
    assert {kept.title, month.title, untouched.title} <= titles
    assert gone.title not in titles
    assert CalendarInterval.objects.filter(source=shift_source, ends_at__gt=NOW - timedelta(days=1)).exists()


def test_a_short_retention_prunes_history_but_never_the_sync_window(team, shift_source, frozen, settings):
    settings.CALENDAR_HISTORY_RETENTION_DAYS = 2
    recent = _old(shift_source, ended_days_ago=1.5, title="a day and a half ago")
    older = _old(shift_source, ended_days_ago=3, title="three days ago")
    frozen(NOW)
    assert calendar_source_sync(source=shift_source).ok
    assert CalendarInterval.objects.filter(pk=recent.pk).exists()
    assert not CalendarInterval.objects.filter(pk=older.pk).exists()
    settings.CALENDAR_HISTORY_RETENTION_DAYS = 0  # even nothing kept as history keeps the window
    assert calendar_source_sync(source=shift_source).ok
    assert not CalendarInterval.objects.filter(pk=recent.pk).exists()
    window = CalendarInterval.objects.filter(source=shift_source)
    assert window.exists() and min(r.ends_at for r in window) > NOW - timedelta(days=1)
