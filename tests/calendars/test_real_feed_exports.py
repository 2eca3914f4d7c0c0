"""Real-shaped exports that broke the sync: DURATION across a DST change, Windows time-zone names
from Outlook/Exchange, and one malformed event (two DTSTART lines) in an otherwise good feed."""

from __future__ import annotations

import pytest

from calendars.events import CalendarFetchError
from calendars.factories import CalendarSourceFactory
from calendars.ical import ical_events, ical_read
from calendars.models import CalendarInterval
from calendars.sync import calendar_source_sync
from tests.support.calendar_files import fixture_bytes, utc


def spans(name, start, end, **kwargs):
    events = ical_events(data=fixture_bytes(name), time_min=start, time_max=end, **kwargs)
    found: dict[str, list] = {}
    for event in events:
        found.setdefault(event.title, []).append((event.starts_at, event.ends_at))
    return {title: sorted(times) for title, times in found.items()}


# -- DURATION ------------------------------------------------------------------------------------


def test_an_hour_duration_is_exact_across_the_dst_change():
    found = spans("night_shifts_duration.ics", utc(2026, 3, 20), utc(2026, 4, 5))
    # 22:00 CET on 28 March is 21:00Z; eight real hours later is 05:00Z (07:00 CEST), not 04:00Z.
    assert found["Shift: Alice (night)"] == [(utc(2026, 3, 28, 21), utc(2026, 3, 29, 5))]


def test_a_recurring_duration_is_exact_for_every_night():
    bob = spans("night_shifts_duration.ics", utc(2026, 3, 20), utc(2026, 4, 5))["Shift: Bob (night)"]
    assert [end - start for start, end in bob] == [bob[0][1] - bob[0][0]] * 5
    assert bob[0][1] - bob[0][0] == utc(2026, 1, 1, 7, 30) - utc(2026, 1, 1)
    # The night across the change still starts at 23:00 local (22:00Z) and lasts 7 h 30 min.
    assert (utc(2026, 3, 28, 22), utc(2026, 3, 29, 5, 30)) in bob
    assert (utc(2026, 3, 29, 21), utc(2026, 3, 30, 4, 30)) in bob  # 23:00 CEST


def test_whole_days_in_a_duration_stay_nominal():
    """P1DT2H: the same wall-clock time the next day, then two exact hours."""
    found = spans("night_shifts_duration.ics", utc(2026, 3, 20), utc(2026, 4, 5))
    # 09:00 CET (08:00Z) + 1 day = 09:00 CEST (07:00Z), + 2 h = 09:00Z.
    assert found["Shift: Carol (weekend)"] == [(utc(2026, 3, 28, 8), utc(2026, 3, 29, 9))]


# -- Windows time zones ----------------------------------------------------------------------------


def test_a_windows_time_zone_name_is_mapped_to_iana():
    found = spans("outlook_windows_timezone.ics", utc(2026, 10, 25), utc(2026, 11, 4))
    carol = found["Shift: Carol"]
    # 09:00 in New York: EDT (UTC-4) before 1 November, EST (UTC-5) after.
    assert (utc(2026, 10, 26, 13), utc(2026, 10, 26, 21)) in carol
    assert (utc(2026, 11, 2, 14), utc(2026, 11, 2, 22)) in carol
    # A floating event is read in X-WR-TIMEZONE, "Eastern Standard Time" = America/New_York.
    assert found["Shift: Dave"] == [(utc(2026, 10, 27, 13), utc(2026, 10, 27, 21))]


def test_an_unknown_time_zone_name_is_a_clear_error():
    data = fixture_bytes("outlook_windows_timezone.ics").replace(
        b"X-WR-TIMEZONE:Eastern Standard Time", b"X-WR-TIMEZONE:Mars Standard Time")
    with pytest.raises(CalendarFetchError) as excinfo:
        ical_events(data=data, time_min=utc(2026, 10, 25), time_max=utc(2026, 11, 4))
    message = str(excinfo.value)
    assert "X-WR-TIMEZONE" in message and "Mars Standard Time" in message and "Windows" in message


# -- one malformed event ------------------------------------------------------------------------------


def test_an_event_with_two_dtstart_lines_is_skipped_and_named():
    feed = ical_read(data=fixture_bytes("two_dtstart_lines.ics"), time_min=utc(2026, 10, 25),
                     time_max=utc(2026, 11, 1))
    assert sorted(e.title for e in feed.events) == ["Shift: Alice", "Shift: Carol"]
    [skipped] = feed.skipped
    assert (skipped.uid, skipped.summary) == ("shift-4412@rota.example.org", "Shift: Bob")
    assert "DTSTART" in skipped.reason
    assert "shift-4412@rota.example.org" in skipped.describe() and "Shift: Bob" in skipped.describe()


@pytest.mark.django_db
def test_the_sync_keeps_the_rest_of_a_feed_with_a_malformed_event(team, ical_server, frozen):
    frozen(utc(2026, 10, 25, 12))
    ical_server.routes["/rota.ics"] = (200, fixture_bytes("two_dtstart_lines.ics"))
    source = CalendarSourceFactory(ical_url=f"{ical_server.base_url}/rota.ics")
    result = calendar_source_sync(source=source)
    assert result.ok and result.partial
    assert [w for w in result.warnings if "shift-4412@rota.example.org" in w and "Shift: Bob" in w]
    names = set(CalendarInterval.objects.filter(source=source).values_list("engineer__name", flat=True))
    assert names == {"Alice Archer", "Carol Cruz"}
