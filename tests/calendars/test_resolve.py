"""Target resolution from the synced tables and the overrides: precedence, fall-through, stale guard."""

from datetime import timedelta

import pytest

from calendars.factories import (
    CalendarIntervalFactory,
    CalendarSourceFactory,
    EngineerFactory,
    RosterOverrideFactory,
)
from calendars.models import OverrideKind, Purpose
from calendars.resolve import embedded, on_shift, resolve_target, roster_now
from tests.support.calendar_files import utc

pytestmark = pytest.mark.django_db

NOW = utc(2026, 10, 26, 10)


@pytest.fixture
def calendars_(team, frozen):
    """Alice and Bob on shift now; Bob embedded in Auth. Both calendars freshly synced."""
    frozen(NOW)
    shifts = CalendarSourceFactory(name="Shifts", purpose=Purpose.SHIFTS, last_success_at=NOW)
    embedded_cal = CalendarSourceFactory(name="Embedded", purpose=Purpose.EMBEDDED, last_success_at=NOW)
    for who in ("alice", "bob"):
        CalendarIntervalFactory(
            source=shifts, engineer=team[who], starts_at=utc(2026, 10, 26, 8), ends_at=utc(2026, 10, 26, 16)
        )
    CalendarIntervalFactory(
        source=embedded_cal,
        engineer=team["bob"],
        product="Auth",
        starts_at=utc(2026, 10, 25, 23),
        ends_at=utc(2026, 10, 30, 23),
    )
    return shifts, embedded_cal


def _mentions(kind, at=NOW, **kwargs):
    return resolve_target(kind=kind, at=at, **kwargs).mentions


def test_no_shift_calendar_means_every_support_engineer(team):
    assert {e.name for e in on_shift(NOW)} == {"Alice Archer", "Bob Baker", "Carol Cruz", "Dave Dunn"}
    assert embedded(NOW) == {}
    assert resolve_target(kind="on_shift", at=NOW).warnings == []


def test_calendars_decide_the_ladder(team, calendars_, settings):
    settings.SLACK_SUPPORT_USERGROUP_ID = "SSUPPORT"
    assert _mentions("on_shift_not_embedded") == ["<@UALICE>"]
    assert _mentions("on_shift") == ["<@UALICE>", "<@UBOB>"]
    assert _mentions("user_group") == ["<!subteam^SSUPPORT>"]
    assert _mentions("head_of_success") == ["<@UHEAD>"]
    assert embedded(NOW) == {team["bob"].pk: "Auth"}
    # Intervals are half-open: 16:00 is the end of the shift.
    assert on_shift(utc(2026, 10, 26, 16)) == []
    assert [e.name for e in on_shift(utc(2026, 10, 26, 15, 59))] == ["Alice Archer", "Bob Baker"]


def test_overrides_beat_the_calendars(team, calendars_):
    RosterOverrideFactory(
        engineer=team["alice"], kind=OverrideKind.OFF_SHIFT, starts_at=NOW - timedelta(hours=1)
    )
    RosterOverrideFactory(
        engineer=team["dave"], kind=OverrideKind.ON_SHIFT, starts_at=NOW - timedelta(hours=1)
    )
    # The roster: Bob moves from Auth to Storage until further notice; Dave is embedded too.
    RosterOverrideFactory(
        engineer=team["bob"], kind=OverrideKind.EMBEDDED, product="Storage", starts_at=NOW, ends_at=None
    )
    assert [e.name for e in on_shift(NOW)] == ["Bob Baker", "Dave Dunn"]
    assert embedded(NOW) == {team["bob"].pk: "Storage"}
    assert _mentions("on_shift_not_embedded") == ["<@UDAVE>"]
    RosterOverrideFactory(engineer=team["bob"], kind=OverrideKind.NOT_EMBEDDED, starts_at=NOW)
    assert _mentions("on_shift_not_embedded") == ["<@UBOB>", "<@UDAVE>"]


def test_the_override_that_started_last_wins(team, calendars_):
    RosterOverrideFactory(
        engineer=team["alice"], kind=OverrideKind.OFF_SHIFT, starts_at=NOW - timedelta(days=1), ends_at=None
    )
    RosterOverrideFactory(
        engineer=team["alice"], kind=OverrideKind.ON_SHIFT, starts_at=NOW - timedelta(hours=1)
    )
    assert team["alice"] in on_shift(NOW)
    # Once the short "on shift" override ends, the long "off shift" one applies again.
    assert team["alice"] not in on_shift(NOW + timedelta(days=1, hours=1))


def test_overrides_also_apply_without_a_shift_calendar(team):
    RosterOverrideFactory(
        engineer=team["carol"], kind=OverrideKind.OFF_SHIFT, starts_at=NOW - timedelta(hours=1)
    )
    assert team["carol"] not in on_shift(NOW)


def test_inactive_and_non_support_engineers_are_never_on_shift(team, calendars_):
    team["alice"].active = False
    team["alice"].save()
    CalendarIntervalFactory(source=calendars_[0], engineer=team["hos"])
    assert [e.name for e in on_shift(NOW)] == ["Bob Baker"]


def test_inactive_sources_are_ignored(team, calendars_):
    shifts, embedded_cal = calendars_
    embedded_cal.active = False
    embedded_cal.save()
    assert embedded(NOW) == {}


def test_fall_through_names_each_empty_audience(team, calendars_, settings):
    settings.SLACK_SUPPORT_USERGROUP_ID = "SSUPPORT"
    # Alice embedded too: level 1 has nobody and falls through to everyone on shift.
    RosterOverrideFactory(
        engineer=team["alice"], kind=OverrideKind.EMBEDDED, product="Realtime", starts_at=NOW
    )
    level1 = resolve_target(kind="on_shift_not_embedded", at=NOW)
    assert (level1.kind, level1.mentions) == ("on_shift", ["<@UALICE>", "<@UBOB>"])
    assert level1.note == "Nobody resolved for support engineers on shift who are not embedded."
    # At night nobody is on shift: both shift levels fall through to the user group.
    night = resolve_target(kind="on_shift_not_embedded", at=utc(2026, 10, 26, 22))
    assert (night.kind, night.mentions, night.fell_through_from) == (
        "user_group",
        ["<!subteam^SSUPPORT>"],
        ["on_shift_not_embedded", "on_shift"],
    )
    assert "Nobody resolved for support engineers on shift." in night.note
    # Without a user group it reaches the head of success.
    settings.SLACK_SUPPORT_USERGROUP_ID = ""
    assert resolve_target(kind="on_shift", at=utc(2026, 10, 26, 22)).mentions == ["<@UHEAD>"]


def test_nobody_at_all_says_so(db, frozen):
    frozen(NOW)
    CalendarSourceFactory(purpose=Purpose.SHIFTS, last_success_at=NOW)
    nobody = resolve_target(kind="on_shift", at=NOW)
    assert nobody.kind == "" and nobody.mentions == []
    assert "check the roster" in nobody.note


def test_engineers_without_a_slack_id_are_not_mentioned(team, calendars_):
    no_slack = EngineerFactory(name="Zoe Quiet", slack_user_id="")
    CalendarIntervalFactory(source=calendars_[0], engineer=no_slack, starts_at=NOW - timedelta(hours=1))
    assert no_slack in on_shift(NOW)
    assert "<@None>" not in _mentions("on_shift")


def test_stale_calendars_add_a_warning(team, calendars_, frozen, settings):
    settings.CALENDAR_STALE_AFTER_MINUTES = 60
    settings.SLACK_SUPPORT_USERGROUP_ID = "SSUPPORT"
    shifts, embedded_cal = calendars_
    later = frozen(NOW + timedelta(minutes=59))
    assert resolve_target(kind="on_shift_not_embedded", at=NOW).warnings == []
    later.move_to(NOW + timedelta(minutes=61))
    level1 = resolve_target(kind="on_shift_not_embedded", at=NOW)
    assert len(level1.warnings) == 2  # both calendars it read
    assert all("the roster may be out of date" in w for w in level1.warnings)
    assert "“Shifts” last synced successfully 2026-10-26 10:00 UTC" in level1.note
    # Level 2 reads only the shift calendar; levels 3 and 4 read no calendar.
    embedded_cal.last_success_at = NOW + timedelta(minutes=61)
    embedded_cal.save()
    assert len(resolve_target(kind="on_shift", at=NOW).warnings) == 1
    assert resolve_target(kind="user_group", at=NOW).warnings == []
    assert resolve_target(kind="head_of_success", at=NOW).warnings == []


def test_a_source_that_never_synced_is_stale(team, frozen):
    frozen(NOW)
    CalendarSourceFactory(name="New shifts", purpose=Purpose.SHIFTS, last_success_at=None)
    resolution = resolve_target(kind="on_shift", at=NOW)
    assert "“New shifts” has never synced successfully" in resolution.note


def test_resolution_makes_no_network_call(team, calendars_, no_network, settings):
    settings.SLACK_SUPPORT_USERGROUP_ID = "SSUPPORT"
    for kind in ("on_shift_not_embedded", "on_shift", "user_group", "head_of_success"):
        assert resolve_target(kind=kind, at=NOW).mentions
    assert resolve_target(kind="engineer", engineer_id=team["carol"].pk, at=NOW).mentions == ["<@UCAROL>"]
    assert roster_now()


def test_roster_now_for_the_admin(team, calendars_):
    RosterOverrideFactory(
        engineer=team["dave"], kind=OverrideKind.ON_SHIFT, starts_at=NOW, ends_at=None, note="covering"
    )
    lines = {line.engineer.name: line for line in roster_now()}
    assert set(lines) == {"Alice Archer", "Bob Baker", "Carol Cruz", "Dave Dunn"}
    assert lines["Alice Archer"].summary == "on shift (Shifts)"
    assert lines["Bob Baker"].summary == "on shift (Shifts), embedded in Auth (Embedded)"
    assert lines["Carol Cruz"].summary == "off shift (shift calendar)"
    assert lines["Dave Dunn"].summary == "on shift (override: covering)"


def test_unknown_kind_is_an_error(db):
    with pytest.raises(ValueError, match="unknown target kind"):
        resolve_target(kind="everyone", at=NOW)
