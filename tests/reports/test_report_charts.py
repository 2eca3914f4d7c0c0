"""The report's SVG charts: axes a reader can trust."""

import re

from reports.svg import Series, bar_chart


def _tick_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end">([^<]*)</text>', svg)


def test_a_chart_of_counts_has_whole_ticks_that_reach_the_tallest_bar():
    svg = bar_chart(title="Tickets", labels=["a", "b"], series=[Series("Gold", [3, 1])])
    assert _tick_labels(svg) == ["0", "1", "2", "3", "4"]


def test_a_chart_of_fractions_keeps_its_own_top():
    svg = bar_chart(title="Hours", labels=["a"], series=[Series("Gold", [2.5])], unit=" h")
    assert _tick_labels(svg)[-1] == "2.5 h"
