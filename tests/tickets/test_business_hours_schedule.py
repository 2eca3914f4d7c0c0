"""Writing and reading a tier's weekly schedule (tickets/hours.py)."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.hours import HoursError, OpenHours, weekly_format, weekly_parse


def test_days_ranges_lists_and_intervals():
    weekly = weekly_parse({"mon-thu": ["08:00-12:00", "13:00-17:00"], "fri": "08:00-12:00",
                           "sat,sun": ["22:00-06:00"]})
    assert weekly[0] == ((480, 720), (780, 1020)) and weekly[4] == ((480, 720),)
    assert weekly[5] == weekly[6] == ((1320, 1800),)  # runs past midnight
    assert weekly_format(weekly) == {"mon-thu": ["08:00-12:00", "13:00-17:00"], "fri": ["08:00-12:00"],
                                     "sat-sun": ["22:00-06:00"]}
    assert weekly_parse({"fri-mon": ["00:00-24:00"]})[0] == ((0, 1440),)  # a range that wraps
    assert weekly_format(weekly_parse({"fri-mon": ["00:00-24:00"]})) == {
        "mon": ["00:00-24:00"], "fri-sun": ["00:00-24:00"]}


@pytest.mark.parametrize(("schedule", "message"), [
    ({"mon-fri": ["9-18"]}, 'mon-fri[0]: "9-18" is not an interval like 09:00-18:00'),
    ({"mon": ["09:00-09:00"]}, 'mon[0]: "09:00-09:00" is empty (for a whole day write 00:00-24:00)'),
    ({"mon": ["24:00-06:00"]}, 'mon[0]: "24:00-06:00" is not an interval of times between 00:00 and 24:00'),
    ({"mon": ["09:00-24:30"]}, 'mon[0]: "09:00-24:30" is not an interval of times'),
    ({"someday": ["09:00-18:00"]}, "someday: is not a day (mon..sun) or a range of days (mon-fri)"),
    ({"mon-fri": ["09:00-18:00"], "wed": ["10:00-11:00"]}, "wed: wed is given more than once"),
    ({"mon": {"from": "09:00"}}, "mon: must be a list of intervals"),
    ({"mon": []}, "has no open hours at all (leave it empty for around the clock)"),
    (["mon-fri 09:00-18:00"], "must be a mapping of days to intervals"),
])
def test_a_bad_schedule_names_the_key(schedule, message):
    with pytest.raises(HoursError) as refused:
        weekly_parse(schedule)
    assert message in str(refused.value)


# Up to a day long; a whole day is written 00:00-24:00 (an interval cannot end where it starts).
interval = st.one_of(
    st.tuples(st.integers(0, 1439), st.integers(1, 1439)).map(lambda p: (p[0], p[0] + p[1])),
    st.just((0, 1440)),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(interval, max_size=3).map(lambda x: tuple(sorted(x))), min_size=7, max_size=7))
def test_the_written_form_reads_back_to_the_same_schedule(days):
    weekly = tuple(days)
    if not any(weekly):
        return
    assert weekly_parse(weekly_format(weekly)) == weekly


def test_the_snapshot_form_round_trips():
    hours = weekly_parse({"mon-fri": ["09:00-18:00"]})
    snapshot = OpenHours("Europe/Berlin", hours, frozenset({date(2026, 12, 24)}))
    assert OpenHours.from_json(snapshot.as_json()) == snapshot
    assert OpenHours.from_json(OpenHours("UTC").as_json()) == OpenHours("UTC")
