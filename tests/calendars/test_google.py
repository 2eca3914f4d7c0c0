from urllib.parse import parse_qs, urlsplit

import pytest

from calendars import google
from calendars.events import CalendarFetchError
from calendars.factories import CalendarSourceFactory
from calendars.google import google_events_list
from calendars.models import CalendarInterval, MatchedBy, SourceKind
from calendars.sync import calendar_source_sync
from tests.support.calendar_files import utc
from tests.support.google_pages import ROTATION, RecordingHttp, error, page

WINDOW = {"time_min": utc(2026, 10, 22), "time_max": utc(2026, 10, 30)}


@pytest.fixture
def slept(monkeypatch):
    delays = []
    monkeypatch.setattr(google, "sleep", delays.append)
    return delays


def _list(http, **kwargs):
    return google_events_list(calendar_id="support@group.calendar.google.com", http=http, **WINDOW, **kwargs)


def test_pages_are_followed_with_page_token(settings, slept):
    settings.GOOGLE_CALENDAR_API_ENDPOINT = "http://calendar.test:8080/"
    http = RecordingHttp([page(ROTATION[:2], next_token="p2"), page(ROTATION[2:])])
    events = _list(http)
    assert [e.event_id for e in events] == [e["id"] for e in ROTATION]
    first, second = (urlsplit(uri) for uri in http.uris)
    assert first.netloc == "calendar.test:8080"
    assert first.path == "/calendar/v3/calendars/support%40group.calendar.google.com/events"
    query = parse_qs(first.query)
    assert query["singleEvents"] == ["true"]
    assert query["timeMin"] == ["2026-10-22T00:00:00+00:00"]
    assert query["timeMax"] == ["2026-10-30T00:00:00+00:00"]
    assert "pageToken" not in query
    assert parse_qs(second.query)["pageToken"] == ["p2"]
    assert slept == []


def test_times_attendees_and_all_day_events(slept):
    all_day = {
        "id": "embedded",
        "summary": "Embedded: Alice (Storage)",
        "start": {"date": "2026-10-26"},
        "end": {"date": "2026-10-27"},
    }
    cancelled = {**ROTATION[0], "id": "gone", "status": "cancelled"}
    events = _list(RecordingHttp([page([*ROTATION, all_day, cancelled])]))
    by_id = {e.event_id: e for e in events}
    assert "gone" not in by_id
    assert (by_id["bob_20261023"].starts_at, by_id["bob_20261023"].ends_at) == (
        utc(2026, 10, 23, 7),
        utc(2026, 10, 23, 15),
    )
    assert by_id["alice_20261026"].starts_at == utc(2026, 10, 26, 8)  # after the DST change
    assert by_id["carol_20261026"].attendees == ["carol@example.com"]
    # All-day: midnight to midnight in the calendar's time zone (Europe/Berlin, CET).
    embedded = by_id["embedded"]
    assert (embedded.starts_at, embedded.ends_at, embedded.all_day) == (
        utc(2026, 10, 25, 23),
        utc(2026, 10, 26, 23),
        True,
    )


def test_429_then_success_is_retried_after_retry_after(slept):
    http = RecordingHttp([error(429, "rateLimitExceeded", **{"retry-after": "3"}), page(ROTATION)])
    assert len(_list(http)) == len(ROTATION)
    assert slept == [3]


def test_5xx_is_retried_with_backoff_then_given_up(slept):
    http = RecordingHttp([error(503), error(500), page(ROTATION)])
    assert len(_list(http)) == len(ROTATION)
    assert slept == [1, 2]
    with pytest.raises(CalendarFetchError, match="HTTP 500"):
        _list(RecordingHttp([error(500)] * google.MAX_ATTEMPTS))


def test_403_rate_limit_is_retried_but_403_forbidden_is_not(slept):
    assert _list(RecordingHttp([error(403, "userRateLimitExceeded"), page([])])) == []
    with pytest.raises(CalendarFetchError, match="HTTP 403"):
        _list(RecordingHttp([error(403, "forbidden")]))
    assert slept == [1]


def test_410_gone_starts_the_listing_over(slept):
    http = RecordingHttp(
        [page(ROTATION[:2], next_token="old"), error(410, "fullSyncRequired"), page(ROTATION)]
    )
    events = _list(http)
    assert [e.event_id for e in events] == [e["id"] for e in ROTATION]  # nothing twice
    assert "pageToken" not in parse_qs(urlsplit(http.uris[2]).query)


def test_410_forever_is_an_error(slept):
    with pytest.raises(CalendarFetchError, match="410"):
        _list(RecordingHttp([error(410)] * (google.MAX_RESTARTS + 1)))


@pytest.mark.django_db
def test_sync_stores_matches_and_a_500_keeps_the_last_good_data(team, slept, frozen):
    frozen(utc(2026, 10, 24, 12))
    source = CalendarSourceFactory(
        kind=SourceKind.GOOGLE, ical_url="", google_calendar_id="support", last_success_at=None
    )
    result = calendar_source_sync(source=source, http=RecordingHttp([page(ROTATION)]))
    assert (result.ok, result.events, result.unmatched) == (True, 4, 0)
    rows = {r.event_id: r for r in CalendarInterval.objects.filter(source=source)}
    assert rows["alice_20261026"].engineer == team["alice"]
    carol = rows["carol_20261026"]
    assert (carol.engineer, carol.matched_by) == (team["carol"], MatchedBy.EMAIL)
    fields = ("event_id", "engineer_id", "starts_at", "ends_at")
    good = sorted(CalendarInterval.objects.values_list(*fields))

    failed = calendar_source_sync(source=source, http=RecordingHttp([error(500)] * google.MAX_ATTEMPTS))
    assert not failed.ok and "500" in failed.error
    assert sorted(CalendarInterval.objects.values_list(*fields)) == good
    source.refresh_from_db()
    assert source.last_success_at == utc(2026, 10, 24, 12)
    assert source.last_error_at == utc(2026, 10, 24, 12) and "500" in source.last_error


@pytest.mark.django_db
def test_missing_credentials_are_reported_on_the_source(settings, team):
    settings.GOOGLE_CREDENTIALS_FILE = ""
    source = CalendarSourceFactory(kind=SourceKind.GOOGLE, google_calendar_id="support", last_success_at=None)
    result = calendar_source_sync(source=source)
    assert not result.ok
    source.refresh_from_db()
    assert "GOOGLE_CREDENTIALS_FILE" in source.last_error
