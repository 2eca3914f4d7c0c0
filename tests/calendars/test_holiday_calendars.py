"""Holiday calendars: all-day events whose DTEND equals DTSTART, holiday sources synced into
dates, and a tier's closed days gathered from hand-entered dates, a country and a feed."""

from datetime import date, timedelta

import pytest

from calendars.factories import CalendarSourceFactory
from calendars.ical import ical_events
from calendars.models import CalendarInterval, HolidayDate, Purpose
from calendars.sync import calendar_source_sync
from tests.support.calendar_files import fixture_bytes, utc
from tickets.factories import TierFactory
from tickets.models import TierHoliday
from tickets.tier_hours import tier_holidays, tier_open_hours

pytestmark = pytest.mark.django_db


def test_an_all_day_event_whose_end_equals_its_start_is_one_day():
    events = ical_events(data=fixture_bytes("holidays.ics"), time_min=utc(2026, 9, 1),
                         time_max=utc(2027, 1, 31))
    by_title = {e.title: e for e in events}
    eve = by_title["Christmas Eve"]  # DTEND = DTSTART: real holiday exports look like this
    assert eve.all_day and (eve.starts_at, eve.ends_at) == (utc(2026, 12, 23, 23), utc(2026, 12, 24, 23))
    unity = by_title["Day of German Unity"]
    assert unity.ends_at - unity.starts_at == timedelta(days=1)
    new_year = by_title["New Year's Day"]  # no DTEND at all: one day, as before
    assert (new_year.starts_at, new_year.ends_at) == (utc(2026, 12, 31, 23), utc(2027, 1, 1, 23))


@pytest.fixture
def holiday_source(ical_server):
    ical_server.routes["/holidays.ics"] = (200, fixture_bytes("holidays.ics"))
    return CalendarSourceFactory(name="German holidays", purpose=Purpose.HOLIDAYS, time_zone="Europe/Berlin",
                                 ical_url=f"{ical_server.base_url}/holidays.ics")


def test_a_holiday_source_syncs_dates_for_the_year_ahead(holiday_source, ical_server, frozen):
    frozen(utc(2026, 9, 15, 12))
    result = calendar_source_sync(source=holiday_source)
    assert result.ok, result.error
    dates = dict(HolidayDate.objects.filter(source=holiday_source).values_list("date", "name"))
    assert dates == {
        date(2026, 10, 3): "Day of German Unity",
        date(2026, 11, 30): "Team offsite (afternoon)",  # a timed event closes the day it is on
        date(2026, 12, 24): "Christmas Eve",
        date(2026, 12, 25): "Christmas",
        date(2026, 12, 26): "Christmas",
        date(2027, 1, 1): "New Year's Day",
    }
    assert not CalendarInterval.objects.filter(source=holiday_source).exists()  # no roster rows
    holiday_source.refresh_from_db()
    assert holiday_source.last_success_at == utc(2026, 9, 15, 12) and holiday_source.last_event_count == 5
    # A second sync replaces the window: a date that left the feed is gone.
    feed = fixture_bytes("holidays.ics").replace(b"SUMMARY:Day of German Unity", b"SUMMARY:Unity")
    feed = feed.replace(b"DTSTART;VALUE=DATE:20261003\r\nDTEND;VALUE=DATE:20261003",
                        b"DTSTART;VALUE=DATE:20261005\r\nDTEND;VALUE=DATE:20261005")
    ical_server.routes["/holidays.ics"] = (200, feed)
    assert calendar_source_sync(source=holiday_source).ok
    dates = dict(HolidayDate.objects.filter(source=holiday_source).values_list("date", "name"))
    assert date(2026, 10, 3) not in dates and dates[date(2026, 10, 5)] == "Unity"


def test_a_failed_holiday_sync_keeps_the_last_good_dates(holiday_source, ical_server, frozen):
    frozen(utc(2026, 9, 15, 12))
    calendar_source_sync(source=holiday_source)
    ical_server.routes["/holidays.ics"] = (500, b"down")
    assert not calendar_source_sync(source=holiday_source).ok
    assert HolidayDate.objects.filter(source=holiday_source).count() == 6


def test_a_tier_is_closed_on_dates_from_the_admin_the_country_and_its_feed(holiday_source, frozen):
    frozen(utc(2026, 9, 15, 12))
    calendar_source_sync(source=holiday_source)
    tier = TierFactory(name="Teams DE", time_zone="Europe/Berlin",
                       business_hours={"mon-fri": ["09:00-18:00"]}, holiday_country="DE",
                       holiday_subdivision="BY", holiday_calendar=holiday_source)
    TierHoliday.objects.create(tier=tier, date=date(2026, 11, 27), name="Company day")
    closed = tier_holidays(tier, start=date(2026, 10, 1), end=date(2026, 12, 31))
    assert closed[date(2026, 11, 27)] == "Company day"  # the admin
    assert date(2026, 11, 1) in closed  # All Saints' Day: Bavaria, from the holidays package
    assert closed[date(2026, 12, 24)] == "Christmas Eve"  # the feed
    assert date(2026, 11, 30) in closed
    hours = tier_open_hours(tier, around=utc(2026, 11, 26, 12))
    assert {date(2026, 11, 27), date(2026, 12, 24), date(2027, 1, 6)} <= hours.holidays  # Epiphany in BY
    assert hours.weekly is not None and hours.time_zone == "Europe/Berlin"
    # An inactive feed no longer closes anything.
    holiday_source.active = False
    holiday_source.save()
    assert date(2026, 12, 24) not in tier_holidays(tier, start=date(2026, 12, 1), end=date(2026, 12, 31))
