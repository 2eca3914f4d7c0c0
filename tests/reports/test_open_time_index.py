"""The report's index of open stretches gives the engine's ``open_time_between`` for any two moments
(business hours with a night interval, holidays, and both of Berlin's DST changes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.clock import open_time_between
from reports.open_time import OpenTimeIndex
from tickets.hours import OpenHours, weekly_parse

HOURS = OpenHours(
    time_zone="Europe/Berlin",
    weekly=weekly_parse({"mon-fri": ["09:00-12:30", "13:15-18:00"], "sat": ["22:00-02:00"]}),
    holidays=frozenset({date(2026, 10, 3), date(2026, 12, 25)}),
)
START = datetime(2026, 3, 20, tzinfo=UTC)
END = datetime(2027, 1, 10, tzinfo=UTC)
INDEX = OpenTimeIndex(HOURS, start=START, end=END)
moments = st.integers(min_value=0, max_value=int((END - START).total_seconds())).map(
    lambda s: START + timedelta(seconds=s)
)


@settings(max_examples=300, deadline=None)
@given(a=moments, b=moments)
def test_index_equals_open_time_between(a, b):
    a, b = min(a, b), max(a, b)
    expected = open_time_between(HOURS, a, b).total_seconds()
    assert INDEX.timestamps_between(a.timestamp(), b.timestamp()) == pytest.approx(expected, abs=1e-3)
    assert INDEX.timestamps_between(b.timestamp(), a.timestamp()) == pytest.approx(-expected, abs=1e-3)
    assert INDEX.seconds_between(a, b) == pytest.approx(
        open_time_between(HOURS, a, b).total_seconds(), abs=1e-3
    )


def test_index_over_the_dst_changes():
    # Friday 17:00 -> Monday 10:00 local over each weekend the clocks change: Friday 17:00-18:00,
    # Saturday night 22:00-02:00 (4 h: it ends as the clocks change), Monday 09:00-10:00 = 6 h
    spring = (datetime(2026, 3, 27, 16, 0, tzinfo=UTC), datetime(2026, 3, 30, 8, 0, tzinfo=UTC))
    autumn = (datetime(2026, 10, 23, 15, 0, tzinfo=UTC), datetime(2026, 10, 26, 9, 0, tzinfo=UTC))
    for friday, monday in (spring, autumn):
        assert INDEX.seconds_between(friday, monday) == pytest.approx(6 * 3600)


def test_outside_its_span_is_refused():
    with pytest.raises(ValueError):
        INDEX.seconds_between(START - timedelta(seconds=1), START)
