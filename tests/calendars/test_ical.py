"""The .ics fixtures: a two-week rotation across the end of daylight saving time (Europe on
25 October 2026, the US on 1 November), an EXDATE, a cancelled and a moved instance, and
all-day and floating embedded assignments."""

from calendars.ical import ical_events
from tests.support.calendar_files import fixture_bytes, utc

WINDOW = (utc(2026, 10, 18), utc(2026, 11, 3))


def _by_title(name):
    events = ical_events(data=fixture_bytes(name), time_min=WINDOW[0], time_max=WINDOW[1])
    found: dict[str, list] = {}
    for event in events:
        found.setdefault(event.title, []).append((event.starts_at, event.ends_at))
    return found, events


def test_weekly_rotation_keeps_local_time_across_the_dst_change():
    found, _ = _by_title("shifts.ics")
    # Bob's week, summer time (CEST, UTC+2): 09:00 local is 07:00 UTC.
    assert (utc(2026, 10, 19, 7), utc(2026, 10, 19, 15)) in found["Shift: Bob"]
    # Alice's week after the change (CET, UTC+1): 09:00 local is 08:00 UTC.
    assert (utc(2026, 10, 26, 8), utc(2026, 10, 26, 16)) in found["Shift: Alice"]
    assert all(start.hour == 8 for start, _ in found["Shift: Alice"])


def test_exdate_cancelled_and_moved_instances():
    found, _ = _by_title("shifts.ics")
    alice_days = [start.date().isoformat() for start, _ in found["Shift: Alice"]]
    assert "2026-10-27" not in alice_days  # EXDATE
    assert alice_days == ["2026-10-26", "2026-10-28", "2026-10-29", "2026-10-30"]
    bob_days = [start.date().isoformat() for start, _ in found["Shift: Bob"]]
    assert "2026-10-22" not in bob_days  # STATUS:CANCELLED instance
    assert "2026-10-21" not in bob_days  # moved: it has its own title now
    assert found["Shift: Bob (late)"] == [(utc(2026, 10, 21, 10), utc(2026, 10, 21, 18))]


def test_us_time_zone_and_attendees():
    found, events = _by_title("shifts.ics")
    weekend = found["Weekend cover"]
    # 09:00 in New York: EDT (UTC-4) before 1 November, EST (UTC-5) from it.
    assert (utc(2026, 10, 31, 13), utc(2026, 10, 31, 21)) in weekend
    assert (utc(2026, 11, 1, 14), utc(2026, 11, 1, 22)) in weekend
    cover = next(e for e in events if e.title == "Weekend cover")
    assert cover.attendees == ["carol@example.com"]  # lower-cased; Dave declined


def test_all_day_and_floating_events_use_the_calendar_time_zone():
    found, events = _by_title("embedded.ics")
    # All-day Monday to Friday in Berlin: from Sunday 23:00 UTC (CET) to Friday 23:00 UTC.
    assert found["Embedded: Alice (Storage)"] == [(utc(2026, 10, 25, 23), utc(2026, 10, 30, 23))]
    assert next(e for e in events if e.title.startswith("Embedded: Alice")).all_day
    # Floating 09:00-13:00 read in X-WR-TIMEZONE (Europe/Berlin, still summer time).
    assert found["Embedded: Bob (Auth)"][0] == (utc(2026, 10, 19, 7), utc(2026, 10, 19, 11))
    # An all-day event without DTEND lasts one day.
    assert found["Embedded: Mallory (Edge Functions)"] == [(utc(2026, 10, 19, 22), utc(2026, 10, 20, 22))]


def test_event_ids_are_stable_per_instance():
    _, events = _by_title("shifts.ics")
    ids = [e.event_id for e in events]
    assert len(ids) == len(set(ids))
    assert "bob-rotation@slabuddy.test/20261021T070000Z" in ids  # the moved instance keeps its RECURRENCE-ID
