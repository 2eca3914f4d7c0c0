"""The SLA report page and its CSV downloads, for staff. Thin: the figures are reports/figures.py."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from reports.charts import attainment_chart, engineers_chart, heatmap_charts, ttfr_chart
from reports.csv_rows import csv_lines, ticket_csv_lines
from reports.figures import FIGURE_COLUMNS, SECTIONS, columns_for, report_build, report_ticket_rows, rows_for
from reports.forms import ReportFilterForm

# Columns of each section, also when it has no rows (a CSV of nothing still has its header).
SECTION_COLUMNS = {
    "totals": ["tier", *FIGURE_COLUMNS],
    "weeks": ["tier", "week", *FIGURE_COLUMNS],
    "engineers": ["engineer", "slack_user_id", "pages", "outside_business_hours"],
    "heatmap": ["tier", "weekday", "hour", "tickets"],
    "ttfr_distribution": ["tier", "bucket", "tickets"],
    "levels": ["tier", "week", "level", "fired", "failed"],
}


@staff_member_required
def report_page(request: HttpRequest) -> HttpResponse:
    form = ReportFilterForm(request.GET or None)
    filters = form.filters()
    report = report_build(filters=filters)
    query = request.GET.urlencode()
    context = {
        **admin.site.each_context(request),
        "title": "SLA report",
        "form": form,
        "filters": filters,
        "report": report,
        "query": query,
        "charts": {
            "attainment": mark_safe(attainment_chart(report)),  # noqa: S308 (our SVG, every text escaped)
            "ttfr": mark_safe(ttfr_chart(report)),  # noqa: S308
            "engineers": mark_safe(engineers_chart(report)),  # noqa: S308
            "heatmaps": [(tier, mark_safe(svg)) for tier, svg in heatmap_charts(report)],  # noqa: S308
        },
    }
    return render(request, "reports/report.html", context)


@staff_member_required
def report_csv(request: HttpRequest, section: str) -> HttpResponse:
    filters = ReportFilterForm(request.GET or None).filters()
    name = f"sla-{section}-{filters.since}-{filters.until}.csv"
    if section == "tickets":
        response = StreamingHttpResponse(
            ticket_csv_lines(report_ticket_rows(filters=filters)), content_type="text/csv"
        )
    elif section in SECTIONS:
        rows = rows_for(report_build(filters=filters), section)
        columns = columns_for(rows) or SECTION_COLUMNS.get(section, [])
        response = StreamingHttpResponse(csv_lines(rows, columns), content_type="text/csv")
    else:
        raise Http404("no such CSV")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
