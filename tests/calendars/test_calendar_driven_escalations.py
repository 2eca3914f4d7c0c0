"""Issue 5, "Done when": with a shift calendar (Google) and an embedded calendar (iCal) configured,
each level resolves exactly the people the SPEC's ladder names at that moment, across the end of
summer time (Europe, 25 October 2026), also while Google is down (the last good data is used and
the message warns that the roster may be out of date).

Google's calendar: Bob 09-17 Berlin on Fri 23 Oct (CEST); Alice 09-17 Berlin on Mon 26 and Tue 27
Oct (CET); Carol (by attendee email) 12-20 Berlin on Mon 26 Oct.
embedded.ics: Bob with Auth 09-13 Berlin, 19-23 Oct; Alice with Storage all day, Mon 26 to Fri 30 Oct.
"""

import pytest

from calendars import google
from calendars.factories import CalendarSourceFactory
from calendars.models import Purpose, SourceKind
from calendars.resolve import resolve_target
from calendars.sync import calendar_source_sync
from tests.support.calendar_files import fixture_bytes, utc
from tests.support.google_pages import ROTATION, RecordingHttp, error, page

pytestmark = pytest.mark.django_db

GROUP = ["<!subteam^SSUPPORT>"]
HEAD = ["<@UHEAD>"]

# moment (UTC) -> (level 1 mentions, level 1 fell through?, level 2 mentions)
LADDER_AT = {
    # Fri 10:00 CEST: Bob on shift but embedded with Auth until 13:00 -> level 1 widens to level 2's audience.
    utc(2026, 10, 23, 8): (["<@UBOB>"], True, ["<@UBOB>"]),
    # Fri 14:00 CEST: Bob on shift, no longer embedded.
    utc(2026, 10, 23, 12): (["<@UBOB>"], False, ["<@UBOB>"]),
    # Mon 08:30 CET: nobody yet (it would be 09:30 had summer time not ended) -> the user group.
    utc(2026, 10, 26, 7, 30): (GROUP, True, GROUP),
    # Mon 09:30 CET: Alice on shift, embedded with Storage all day -> level 1 widens to Alice.
    utc(2026, 10, 26, 8, 30): (["<@UALICE>"], True, ["<@UALICE>"]),
    # Mon 13:00 CET: Alice (embedded) and Carol on shift.
    utc(2026, 10, 26, 12): (["<@UCAROL>"], False, ["<@UALICE>", "<@UCAROL>"]),
    # Mon 17:30 CET: Alice has gone home; Carol covers until 20:00.
    utc(2026, 10, 26, 16, 30): (["<@UCAROL>"], False, ["<@UCAROL>"]),
}


@pytest.fixture
def configured(team, ical_server, frozen, settings, monkeypatch):
    settings.SLACK_SUPPORT_USERGROUP_ID = "SSUPPORT"
    settings.CALENDAR_STALE_AFTER_MINUTES = 60
    monkeypatch.setattr(google, "sleep", lambda seconds: None)
    ical_server.routes["/embedded.ics"] = (200, fixture_bytes("embedded.ics"))
    clock = frozen(utc(2026, 10, 23, 6))
    shifts = CalendarSourceFactory(
        name="Support shifts",
        kind=SourceKind.GOOGLE,
        purpose=Purpose.SHIFTS,
        google_calendar_id="support-shifts@group.calendar.google.com",
        ical_url="",
        last_success_at=None,
    )
    embedded_cal = CalendarSourceFactory(
        name="Embedded support",
        purpose=Purpose.EMBEDDED,
        ical_url=f"{ical_server.base_url}/embedded.ics",
        last_success_at=None,
    )
    assert calendar_source_sync(source=shifts, http=RecordingHttp([page(ROTATION)])).ok
    assert calendar_source_sync(source=embedded_cal).ok
    return clock, shifts, embedded_cal


@pytest.mark.parametrize("google_up", [True, False], ids=["google-up", "google-down"])
@pytest.mark.parametrize("moment", list(LADDER_AT), ids=lambda m: m.strftime("%a-%d-%H%M"))
def test_each_level_names_the_ladders_people(configured, moment, google_up):
    clock, shifts, embedded_cal = configured
    clock.move_to(moment)
    # The beat job runs just before the level fires: the iCal feed answers; Google may not.
    responses = [page(ROTATION)] if google_up else [error(503)] * google.MAX_ATTEMPTS
    assert calendar_source_sync(source=shifts, http=RecordingHttp(responses)).ok is google_up
    assert calendar_source_sync(source=embedded_cal).ok

    level1_mentions, level1_widened, level2_mentions = LADDER_AT[moment]
    level1 = resolve_target(kind="on_shift_not_embedded", at=moment)
    level2 = resolve_target(kind="on_shift", at=moment)
    level3 = resolve_target(kind="user_group", at=moment)
    level4 = resolve_target(kind="head_of_success", at=moment)
    assert level1.mentions == level1_mentions
    assert bool(level1.fell_through_from) is level1_widened
    assert level2.mentions == level2_mentions
    assert (level3.mentions, level4.mentions) == (GROUP, HEAD)
    if level1_widened:
        assert "Nobody resolved for support engineers on shift who are not embedded." in level1.note

    stale = "the roster may be out of date (calendar “Support shifts”"
    assert (stale in level1.note) is not google_up
    assert (stale in level2.note) is not google_up
    assert stale not in level3.note + level4.note
