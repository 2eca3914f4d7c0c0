"""The report's figures on a hand-built month (tests/support/report_month.py), worked out by hand:
business and calendar clocks, a close without reply, a pause, next-response cycles, and the weeks
in which Berlin and New York leave summer time."""

from __future__ import annotations

import pytest

from reports.figures import ReportFilters, percentile, report_build
from tests.support.report_month import NOW, SINCE, UNTIL, month_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def month(db):
    return month_build()


def _by(rows, **match):
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


def test_percentile_interpolates_like_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([10.0], 0.9) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([0.0, 10.0, 20.0, 30.0, 40.0], 0.9) == pytest.approx(36.0)


def test_totals_per_tier(month):
    report = report_build(filters=ReportFilters(since=SINCE, until=UNTIL), now=NOW)
    gold = _by(report.totals, tier="Gold")
    # G1..G7; answered with a target G1 G2 G3 G5 G6, in time G1 G2 G6 (G6's breach moved by its pause)
    assert (gold["opened"], gold["answered"], gold["met"], gold["attainment"]) == (7, 5, 3, 0.6)
    assert (gold["closed_without_reply"], gold["still_open"], gold["breached"]) == (1, 1, 3)
    # wall: 1800 (G1), 7200 (G3), 87600 (G6), 233100 (G2: Fri 16:30 -> Mon 09:15), 239400 (G5: over the
    # DST change, 66.5 h); p90 = 233100 + 0.6 * 6300
    assert (gold["ttfr_wall_p50_s"], gold["ttfr_wall_p90_s"]) == (87600, 236880)
    # business clock (Mon-Fri 09-17 Berlin): G1 1800, G2 30+15 min = 2700, G5 1 h + 30 min = 5400,
    # G3 7200, G6 Tue 10:00-17:00 + Wed 09:00-10:20 = 30000; p90 = 7200 + 0.6 * 22800
    assert (gold["ttfr_clock_p50_s"], gold["ttfr_clock_p90_s"]) == (5400, 20880)
    assert (gold["next_cycles"], gold["next_answered"], gold["next_met"], gold["next_attainment"]) == (
        2,
        2,
        1,
        0.5,
    )
    assert (gold["levels_fired"], gold["levels_failed"], gold["snoozes"], gold["pauses"]) == (4, 0, 0, 1)

    silver = _by(report.totals, tier="Silver")  # S6 opened after the range
    assert (silver["opened"], silver["answered"], silver["met"], silver["attainment"]) == (5, 5, 4, 0.8)
    assert (silver["closed_without_reply"], silver["still_open"], silver["breached"]) == (0, 0, 1)
    # calendar clock: both times are the wall time: 1800 1800 1800 3600 18000
    assert (silver["ttfr_wall_p50_s"], silver["ttfr_wall_p90_s"]) == (1800, 12240)
    assert (silver["ttfr_clock_p50_s"], silver["ttfr_clock_p90_s"]) == (1800, 12240)
    assert (silver["levels_fired"], silver["levels_failed"], silver["snoozes"], silver["pauses"]) == (
        1,
        1,
        2,
        0,
    )


def test_weeks_start_on_monday_in_the_tiers_time_zone(month):
    report = report_build(filters=ReportFilters(since=SINCE, until=UNTIL), now=NOW)
    gold = {r["week"]: r for r in report.weeks if r["tier"] == "Gold"}
    assert sorted(gold) == ["2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26"]
    assert (gold["2026-10-05"]["opened"], gold["2026-10-05"]["attainment"]) == (2, 1.0)
    assert gold["2026-10-05"]["ttfr_wall_p50_s"] == (1800 + 233100) / 2
    assert gold["2026-10-05"]["ttfr_clock_p50_s"] == (1800 + 2700) / 2
    assert gold["2026-10-05"]["next_attainment"] == 1.0
    assert (
        gold["2026-10-12"]["opened"],
        gold["2026-10-12"]["answered"],
        gold["2026-10-12"]["attainment"],
    ) == (2, 1, 0.0)
    assert gold["2026-10-12"]["closed_without_reply"] == 1 and gold["2026-10-12"]["next_attainment"] == 0.0
    dst = gold["2026-10-19"]  # G5, answered on the Monday after the change
    assert (dst["opened"], dst["met"], dst["ttfr_wall_p50_s"], dst["ttfr_clock_p50_s"]) == (
        1,
        0,
        239400,
        5400,
    )
    last = gold["2026-10-26"]
    assert (last["opened"], last["attainment"], last["still_open"], last["pauses"]) == (2, 1.0, 1, 1)

    silver = {r["week"]: r for r in report.weeks if r["tier"] == "Silver"}
    # S2 opened 02:00 UTC on Wednesday 10-07: Tuesday evening in New York, still the week of 10-05
    assert {w: r["opened"] for w, r in silver.items()} == {"2026-10-05": 2, "2026-10-12": 1, "2026-10-26": 2}
    assert silver["2026-10-05"]["attainment"] == 0.5


def test_levels_per_level(month):
    report = report_build(filters=ReportFilters(since=SINCE, until=UNTIL), now=NOW)
    gold = {(r["week"], r["level"]): (r["fired"], r["failed"]) for r in report.levels if r["tier"] == "Gold"}
    assert gold == {
        ("2026-10-12", 1): (1, 0),
        ("2026-10-12", 2): (1, 0),
        ("2026-10-19", 1): (1, 0),
        ("2026-10-26", 1): (1, 0),
        ("2026-10-26", 2): (0, 0),
    }
    silver = {(r["level"]): (r["fired"], r["failed"]) for r in report.levels if r["tier"] == "Silver"}
    assert silver == {1: (1, 0), 2: (0, 1)}


def test_pages_per_engineer_and_outside_business_hours(month):
    report = report_build(filters=ReportFilters(since=SINCE, until=UNTIL), now=NOW)
    # Alice: G3 L1, G3 L2, G7 L1 (all in Gold's hours). Bob: G3 L2, G5 L1 (Friday 20:00 in Berlin:
    # outside), S2 L1 (Silver has no business hours: never outside).
    assert report.engineers == [
        {"engineer": "Alice", "slack_user_id": "UALICE", "pages": 3, "outside_business_hours": 0},
        {"engineer": "Bob", "slack_user_id": "UBOB", "pages": 3, "outside_business_hours": 1},
    ]


def test_arrivals_heatmap_in_the_tiers_time_zone(month):
    report = report_build(filters=ReportFilters(since=SINCE, until=UNTIL), now=NOW)
    gold = {(r["weekday"], r["hour"]): r["tickets"] for r in report.heatmap if r["tier"] == "Gold"}
    assert gold == {
        ("Mon", 10): 1,
        ("Fri", 16): 2,
        ("Mon", 9): 1,
        ("Tue", 9): 1,
        ("Tue", 10): 1,
        ("Thu", 9): 1,
    }
    silver = {(r["weekday"], r["hour"]): r["tickets"] for r in report.heatmap if r["tier"] == "Silver"}
    # 01:30 twice on the night New York leaves summer time
    assert silver == {("Tue", 10): 1, ("Tue", 22): 1, ("Wed", 6): 1, ("Sun", 1): 2}


def test_ttfr_distribution(month):
    report = report_build(filters=ReportFilters(since=SINCE, until=UNTIL), now=NOW)
    silver = {r["bucket"]: r["tickets"] for r in report.ttfr_distribution if r["tier"] == "Silver"}
    assert silver == {
        "0m-10m": 0,
        "10m-30m": 0,
        "30m-1h": 3,
        "1h-2h": 1,
        "2h-4h": 0,
        "4h-8h": 1,
        "8h-24h": 0,
        ">24h": 0,
    }


def test_filters_by_tier_priority_and_channel(month):
    only_gold = report_build(filters=ReportFilters(since=SINCE, until=UNTIL, tier="Gold"), now=NOW)
    assert [r["tier"] for r in only_gold.totals] == ["Gold"]
    urgent = report_build(filters=ReportFilters(since=SINCE, until=UNTIL, priority="urgent"), now=NOW)
    assert [(r["tier"], r["opened"], r["met"]) for r in urgent.totals] == [("Silver", 1, 1)]
    channel = report_build(
        filters=ReportFilters(since=SINCE, until=UNTIL, channel="#support-silver"), now=NOW
    )
    assert [(r["tier"], r["opened"]) for r in channel.totals] == [("Silver", 5)]
    one_week = report_build(filters=ReportFilters(since=SINCE, until=SINCE.replace(day=11)), now=NOW)
    assert {r["tier"]: r["opened"] for r in one_week.totals} == {"Gold": 2, "Silver": 2}


def test_breached_is_the_admin_filters_and_metrics_definition(month):
    from escalation.breach import breached_q
    from tickets.models import Ticket

    report = report_build(filters=ReportFilters(since=SINCE, until=UNTIL), now=NOW)
    for row in report.totals:
        in_range = Ticket.objects.filter(channel__tier__name=row["tier"]).exclude(helpdesk_ticket_id="S6")
        assert row["breached"] == in_range.filter(breached_q(NOW)).count()
