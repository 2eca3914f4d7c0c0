"""A feed with a series the parser has to skip (Google's empty `EXDATE;VALUE=DATE:` line) is a
partial sync, never a clean success: that series keeps its last good intervals, the rest is
replaced, and a warning naming it stays on the source (admin, check_deployment) until a clean sync."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from calendars.factories import CalendarSourceFactory
from calendars.models import CalendarInterval
from calendars.sync import calendar_source_sync
from tests.support.calendar_files import fixture_bytes, utc

pytestmark = pytest.mark.django_db

BOB_UID = "0a9d3n1v5l8r7kq2m4h6t1b3c9@google.com"


@pytest.fixture
def rota(ical_server, team):
    ical_server.routes["/rota.ics"] = (200, fixture_bytes("google_rota.ics"))
    return CalendarSourceFactory(name="Support rota", ical_url=f"{ical_server.base_url}/rota.ics")


def rows_of(source, name):
    return sorted(CalendarInterval.objects.filter(source=source, engineer__name=name)
                  .values_list("starts_at", "ends_at", "synced_at"))


def broken_export(*, alice_becomes: str = "Alice") -> bytes:
    text = fixture_bytes("google_rota_empty_exdate.ics").decode()
    return text.replace("SUMMARY:Shift: Alice", f"SUMMARY:Shift: {alice_becomes}").encode()


def test_a_skipped_series_keeps_its_last_good_intervals(rota, ical_server, frozen):
    clock = frozen(utc(2026, 10, 23, 12))
    first = calendar_source_sync(source=rota)
    assert first.ok and not first.partial
    bob_before = rows_of(rota, "Bob Baker")
    assert bob_before  # the all-day series, as the last good export had it

    clock.move_to(utc(2026, 10, 23, 12, 5))
    ical_server.routes["/rota.ics"] = (200, broken_export(alice_becomes="Dave"))
    result = calendar_source_sync(source=rota)
    assert result.ok and result.partial  # never a clean success
    [warning] = result.warnings
    assert BOB_UID in warning and "Shift: Bob" in warning and "EXDATE" in warning
    assert rows_of(rota, "Bob Baker") == bob_before  # kept, not deleted
    assert rows_of(rota, "Dave Dunn") and not rows_of(rota, "Alice Archer")  # the rest was replaced
    rota.refresh_from_db()
    assert BOB_UID in rota.sync_warnings and rota.last_error == ""


def test_the_warning_is_cleared_by_a_clean_sync(rota, ical_server, frozen):
    frozen(utc(2026, 10, 23, 12))
    ical_server.routes["/rota.ics"] = (200, broken_export())
    assert calendar_source_sync(source=rota).partial
    ical_server.routes["/rota.ics"] = (200, fixture_bytes("google_rota.ics"))
    result = calendar_source_sync(source=rota)
    assert result.ok and not result.partial and result.warnings == []
    rota.refresh_from_db()
    assert rota.sync_warnings == ""


def test_the_admin_shows_the_warning(rota, ical_server, frozen, staff_client):
    frozen(utc(2026, 10, 23, 12))
    ical_server.routes["/rota.ics"] = (200, broken_export())
    calendar_source_sync(source=rota)
    changelist = staff_client.get(reverse("admin:calendars_calendarsource_changelist")).content.decode()
    assert BOB_UID in changelist and "Support rota" in changelist
    page = staff_client.get(reverse("admin:calendars_calendarsource_change", args=[rota.pk])).content.decode()
    assert BOB_UID in page
    response = staff_client.post(reverse("admin:calendars_calendarsource_changelist"),
                                 {"action": "sync_now", "_selected_action": [rota.pk]}, follow=True)
    assert "skipped" in response.content.decode() and BOB_UID in response.content.decode()


def test_check_deployment_reports_the_warning(rota, ical_server, frozen, settings):
    frozen(utc(2026, 10, 23, 12))
    ical_server.routes["/rota.ics"] = (200, broken_export())
    calendar_source_sync(source=rota)
    out = StringIO()
    try:
        call_command("check_deployment", "--offline", stdout=out)
    except SystemExit:
        pass
    warnings = [line for line in out.getvalue().splitlines() if line.startswith("WARNING")]
    assert [line for line in warnings if "Support rota" in line and BOB_UID in line]
