"""Open time of many (start, end) pairs on one business clock, by bisection over its open stretches.

The stretches come from the engine's clock (``escalation.clock.open_stretches``: the code arming and
``open_time_between`` use), computed once for the whole span of a report; each pair is then two
binary searches instead of a walk through the hours."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime

from escalation.clock import open_stretches
from tickets.hours import OpenHours


class OpenTimeIndex:
    def __init__(self, hours: OpenHours, *, start: datetime, end: datetime):
        self.start, self.end = start, end
        # epoch seconds of the span (a microsecond of slack: floats from the database round)
        self._low, self._high = start.timestamp() - 1e-6, end.timestamp() + 1e-6
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._before: list[float] = []  # open seconds before each stretch
        total = 0.0
        for a, b in open_stretches(hours, start, end):
            self._starts.append(a.timestamp())
            self._ends.append(b.timestamp())
            self._before.append(total)
            total += b.timestamp() - a.timestamp()

    def _open_until(self, at: float) -> float:
        i = bisect_right(self._starts, at) - 1
        if i < 0:
            return 0.0
        return self._before[i] + min(at, self._ends[i]) - self._starts[i]

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Open seconds in [start, end); both must lie within the index's [start, end]."""
        if not (self.start <= start <= self.end and self.start <= end <= self.end):
            raise ValueError("outside the span of the index")
        return self._open_until(end.timestamp()) - self._open_until(start.timestamp())

    def timestamps_between(self, start: float, end: float) -> float:
        """``seconds_between`` for epoch seconds (negative when ``end`` is before ``start``)."""
        if not (self._low <= min(start, end) and max(start, end) <= self._high):
            raise ValueError("outside the span of the index")
        return self._open_until(end) - self._open_until(start)
