"""Calendar reads have a total deadline (CALENDAR_TIMEOUT_SECONDS), not only a per-read socket
timeout: against a server that drips its answer one byte a second, the iCal fetch and the Google
Calendar listing give up at the deadline, say so, and the sync keeps the last good data."""

from __future__ import annotations

import pytest

from calendars.events import CalendarFetchError
from calendars.factories import CalendarIntervalFactory, CalendarSourceFactory
from calendars.google import DeadlineHttp, google_events_list
from calendars.ical import ical_fetch
from calendars.models import CalendarInterval
from calendars.sync import calendar_source_sync
from tests.support.calendar_files import utc
from tests.support.drip_server import DripServer

DEADLINE = 2  # seconds; a byte comes every second, so no single read ever times out
CALENDAR = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
GOOGLE_PAGE = b'{"kind": "calendar#events", "items": []}'


@pytest.fixture
def deadline(settings):
    settings.CALENDAR_TIMEOUT_SECONDS = DEADLINE
    settings.CALENDAR_ALLOW_HTTP = settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = True  # a local feed


def test_a_dripping_ical_feed_is_given_up_at_the_deadline(deadline):
    with DripServer(CALENDAR, content_type="text/calendar") as server:
        with pytest.raises(CalendarFetchError, match=f"did not answer within {DEADLINE} s"):
            ical_fetch(url=f"{server.base_url}/shifts.ics", timeout=DEADLINE)
        assert server.bytes_sent < len(CALENDAR)


@pytest.mark.django_db
def test_the_sync_of_a_dripping_feed_fails_and_keeps_the_last_good_data(deadline, frozen):
    frozen(utc(2026, 10, 23, 12))
    with DripServer(CALENDAR, content_type="text/calendar", drip_headers=True) as server:
        source = CalendarSourceFactory(ical_url=f"{server.base_url}/shifts.ics")
        kept = CalendarIntervalFactory(source=source, starts_at=utc(2026, 10, 23, 8),
                                       ends_at=utc(2026, 10, 23, 16))
        result = calendar_source_sync(source=source)
        assert not result.ok and "did not answer" in result.error
        assert list(CalendarInterval.objects.filter(source=source)) == [kept]


def test_a_dripping_google_calendar_is_given_up_at_the_deadline(deadline, settings, monkeypatch):
    monkeypatch.setattr("calendars.google.sleep", lambda seconds: None)  # no back-off waits here
    with DripServer(GOOGLE_PAGE) as server:
        settings.GOOGLE_CALENDAR_API_ENDPOINT = f"{server.base_url}/"
        with pytest.raises(CalendarFetchError, match=f"did not answer within {DEADLINE} s"):
            google_events_list(calendar_id="team@example.com", time_min=utc(2026, 10, 23),
                               time_max=utc(2026, 10, 30), http=DeadlineHttp(timeout=DEADLINE))
        assert server.bytes_sent < len(GOOGLE_PAGE)
        assert len(server.requests) == 1  # a deadline is not retried
