"""iCal sources synced over real HTTP from a local server; the window is replaced atomically."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from calendars.factories import CalendarIntervalFactory, CalendarSourceFactory
from calendars.models import CalendarInterval, CalendarSource, Purpose, SourceKind, UnmatchedEvent
from calendars.sync import calendar_source_sync, calendar_sources_sync
from calendars.tasks import calendars_sync_all
from tests.support.calendar_files import fixture_bytes, utc

pytestmark = pytest.mark.django_db


@pytest.fixture
def shift_source(ical_server):
    ical_server.routes["/shifts.ics"] = (200, fixture_bytes("shifts.ics"))
    return CalendarSourceFactory(
        name="Support shifts", purpose=Purpose.SHIFTS, ical_url=f"{ical_server.base_url}/shifts.ics"
    )


def _rows(source):
    return sorted(
        CalendarInterval.objects.filter(source=source).values_list("event_id", "engineer__name", "starts_at")
    )


def test_ical_sync_reads_one_day_back_to_seven_days_ahead(team, shift_source, frozen):
    frozen(utc(2026, 10, 23, 12))
    result = calendar_source_sync(source=shift_source)
    assert result.ok, result.error
    rows = CalendarInterval.objects.filter(source=shift_source)
    assert min(r.ends_at for r in rows) > utc(2026, 10, 22, 12)
    assert max(r.starts_at for r in rows) < utc(2026, 10, 30, 12)
    by_title = {(r.title, r.starts_at): r for r in rows}
    assert by_title[("Shift: Bob", utc(2026, 10, 23, 7))].engineer == team["bob"]
    assert by_title[("Shift: Alice", utc(2026, 10, 26, 8))].engineer == team["alice"]
    assert by_title[("Weekend cover", utc(2026, 10, 24, 13))].engineer == team["carol"]
    shift_source.refresh_from_db()
    assert shift_source.last_success_at == utc(2026, 10, 23, 12)
    assert shift_source.last_event_count == rows.count()


def test_unmatched_events_are_listed_in_the_admin(team, shift_source, frozen, staff_client):
    frozen(utc(2026, 10, 20, 6))
    calendar_source_sync(source=shift_source)
    [zed] = UnmatchedEvent.objects.all()
    assert (zed.title, zed.unmatched_name) == ("Shift: Zed", "Zed")
    shift_source.refresh_from_db()
    assert shift_source.last_unmatched_count == 1
    page = staff_client.get(reverse("admin:calendars_unmatchedevent_changelist")).content.decode()
    assert "Shift: Zed" in page and "Shift: Alice" not in page
    sources = staff_client.get(reverse("admin:calendars_calendarsource_changelist")).content.decode()
    link = reverse("admin:calendars_unmatchedevent_changelist") + f"?source__id__exact={shift_source.pk}"
    assert link in sources


def test_resync_replaces_the_window_and_keeps_history(team, shift_source, ical_server, frozen):
    clock = frozen(utc(2026, 10, 20, 6))
    calendar_source_sync(source=shift_source)
    first = _rows(shift_source)
    calendar_source_sync(source=shift_source)
    assert _rows(shift_source) == first  # no duplicates

    # Three days later, with Bob's rotation deleted from the calendar.
    clock.move_to(utc(2026, 10, 23, 6))
    ics = fixture_bytes("shifts.ics").decode().replace("SUMMARY:Shift: Bob\r\n", "SUMMARY:Shift: Dave\r\n")
    ical_server.routes["/shifts.ics"] = (200, ics.encode())
    calendar_source_sync(source=shift_source)
    rows = CalendarInterval.objects.filter(source=shift_source)
    # Before the new window (ending before 22 Oct 06:00) the old rows stay as history.
    assert rows.filter(engineer=team["bob"], ends_at__lte=utc(2026, 10, 22, 6)).exists()
    assert not rows.filter(engineer=team["bob"], ends_at__gt=utc(2026, 10, 22, 6)).exists()
    assert rows.filter(engineer=team["dave"], starts_at=utc(2026, 10, 23, 7)).exists()


@pytest.mark.parametrize(
    "route",
    [(500, b"oops"), (404, b"gone"), (200, b"<html>not a calendar</html>")],
    ids=["http-500", "http-404", "not-ical"],
)
def test_a_failed_sync_keeps_the_last_good_data(team, shift_source, ical_server, frozen, route):
    clock = frozen(utc(2026, 10, 23, 12))
    calendar_source_sync(source=shift_source)
    good = _rows(shift_source)
    clock.move_to(utc(2026, 10, 23, 12, 5))
    ical_server.routes["/shifts.ics"] = route
    result = calendar_source_sync(source=shift_source)
    assert not result.ok
    assert _rows(shift_source) == good
    shift_source.refresh_from_db()
    assert shift_source.last_success_at == utc(2026, 10, 23, 12)
    assert shift_source.last_error_at == utc(2026, 10, 23, 12, 5)
    assert shift_source.last_error
    assert ical_server.base_url not in shift_source.last_error  # a secret iCal address stays secret


def test_unreachable_feed_is_an_error(team, frozen, settings):
    settings.CALENDAR_ALLOW_HTTP = settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = True
    source = CalendarSourceFactory(ical_url="http://127.0.0.1:9/never.ics", last_success_at=None)
    result = calendar_source_sync(source=source)
    assert not result.ok and "unreachable" in result.error


def test_sync_all_and_the_beat_task(team, shift_source, ical_server, frozen, settings):
    frozen(utc(2026, 10, 23, 12))
    ical_server.routes["/embedded.ics"] = (200, fixture_bytes("embedded.ics"))
    embedded = CalendarSourceFactory(
        purpose=Purpose.EMBEDDED,
        ical_url="webcal://127.0.0.1:1/x",
        active=False,  # inactive: skipped
    )
    results = calendar_sources_sync()
    assert set(results) == {shift_source.pk}
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from slabuddy.celery import app

    app.conf.task_always_eager = True
    try:
        assert calendars_sync_all() == 1
    finally:
        app.conf.task_always_eager = False
    assert CalendarSource.objects.get(pk=embedded.pk).last_attempt_at is None


def test_source_validation():
    source = CalendarSource(
        name="x", kind=SourceKind.ICAL, purpose=Purpose.SHIFTS, ical_url="ftp://x", time_zone="Mars/Base"
    )
    with pytest.raises(ValidationError) as excinfo:
        source.full_clean()
    assert set(excinfo.value.message_dict) == {"ical_url", "time_zone"}
    google = CalendarSource(
        name="g", kind=SourceKind.GOOGLE, purpose=Purpose.SHIFTS, title_patterns="Shift: {who}"
    )
    with pytest.raises(ValidationError) as excinfo:
        google.full_clean()
    assert set(excinfo.value.message_dict) == {"google_calendar_id", "title_patterns"}


def test_admin_sync_now_action(team, shift_source, staff_client, frozen):
    frozen(utc(2026, 10, 23, 12))
    url = reverse("admin:calendars_calendarsource_changelist")
    form = {"action": "sync_now", "_selected_action": [shift_source.pk]}
    response = staff_client.post(url, form, follow=True)
    assert "Support shifts: " in response.content.decode()
    assert CalendarInterval.objects.filter(source=shift_source).exists()


def test_admin_shows_stale_sources(team, staff_client, frozen, settings):
    settings.CALENDAR_STALE_AFTER_MINUTES = 60
    frozen(utc(2026, 10, 23, 12))
    CalendarSourceFactory(name="Fresh shifts", last_success_at=utc(2026, 10, 23, 11, 30))
    CalendarSourceFactory(
        name="Old shifts", last_success_at=utc(2026, 10, 23, 10), last_error="iCal feed: HTTP 500 Oops"
    )
    CalendarIntervalFactory()
    page = staff_client.get(reverse("admin:calendars_calendarsource_changelist")).content.decode()
    assert "Calendar “Old shifts” has not synced successfully in the last 60 minutes" in page
    assert "iCal feed: HTTP 500 Oops" in page
    assert "“Fresh shifts” has not synced" not in page
    overrides = staff_client.get(reverse("admin:calendars_rosteroverride_changelist")).content.decode()
    assert "“Old shifts” has not synced" in overrides
    engineers = staff_client.get(reverse("admin:calendars_engineer_changelist")).content.decode()
    assert "“Old shifts” has not synced" in engineers
