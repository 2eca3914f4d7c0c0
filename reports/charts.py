"""The report's charts, drawn from a Report's rows by reports/svg.py (inline SVG, nothing loaded)."""

from __future__ import annotations

from reports.figures import WEEKDAYS, Report, ttfr_bucket_labels
from reports.svg import Series, bar_chart, hbar_chart, heatmap, line_chart

MAX_ENGINEERS = 20


def attainment_chart(report: Report) -> str:
    weeks = sorted({row["week"] for row in report.weeks})
    tiers = sorted({row["tier"] for row in report.weeks})
    by = {(row["tier"], row["week"]): row["attainment"] for row in report.weeks}
    series = [
        Series(tier, [None if by.get((tier, w)) is None else by[(tier, w)] * 100 for w in weeks])
        for tier in tiers
    ]
    return line_chart(
        title="First-response attainment per week", labels=weeks, series=series, max_value=100, unit="%"
    )


def ttfr_chart(report: Report) -> str:
    labels = ttfr_bucket_labels()
    tiers = sorted({row["tier"] for row in report.ttfr_distribution})
    by = {(row["tier"], row["bucket"]): row["tickets"] for row in report.ttfr_distribution}
    series = [Series(tier, [by.get((tier, label), 0) for label in labels]) for tier in tiers]
    return bar_chart(title="Time to first response (wall time), tickets", labels=labels, series=series)


def engineers_chart(report: Report) -> str:
    rows = report.engineers[:MAX_ENGINEERS]
    return hbar_chart(
        title="Pages per engineer",
        labels=[r["engineer"] for r in rows],
        values=[r["pages"] for r in rows],
        second=[r["outside_business_hours"] for r in rows],
        names=("pages", "outside business hours"),
    )


def heatmap_charts(report: Report) -> list[tuple[str, str]]:
    """(tier, SVG) per tier: tickets opened by weekday and hour in the tier's time zone."""
    charts = []
    for tier in sorted({row["tier"] for row in report.heatmap}):
        grid = [[0] * 24 for _ in WEEKDAYS]
        for row in report.heatmap:
            if row["tier"] == tier:
                grid[WEEKDAYS.index(row["weekday"])][row["hour"]] = row["tickets"]
        charts.append(
            (
                tier,
                heatmap(
                    title=f"Arrivals, {tier} (weekday x hour, tier time zone)",
                    rows=WEEKDAYS,
                    columns=[f"{h:02d}" for h in range(24)],
                    counts=grid,
                ),
            )
        )
    return charts
