"""The replay page (staff only): a proposed policy file in, actual versus proposed out. It reads;
it never writes a ticket, a level or a Slack message (reports/replay/running.py)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from reports.replay.forms import ReplayForm
from reports.replay.running import replay_run

CHANGED_SHOWN = 200


def _rows(report) -> list[dict]:
    """The figures side by side, for the table."""
    actual, proposed = report.actual.as_json(), report.proposed.as_json()
    rows = []
    levels = sorted({*actual["levels_fired"], *proposed["levels_fired"]}, key=int)
    for level in levels:
        rows.append({"label": f"Level {level} fired", "actual": actual["levels_fired"].get(level, 0),
                     "proposed": proposed["levels_fired"].get(level, 0)})
    later = sorted({*actual["next_response_levels_fired"], *proposed["next_response_levels_fired"]}, key=int)
    for level in later:
        rows.append({"label": f"Next-response level {level} fired",
                     "actual": actual["next_response_levels_fired"].get(level, 0),
                     "proposed": proposed["next_response_levels_fired"].get(level, 0)})
    rows.append({"label": "First-response breaches", "actual": actual["breaches"],
                 "proposed": proposed["breaches"]})
    rows.append({"label": "Next-response breaches", "actual": actual["next_response_breaches"],
                 "proposed": proposed["next_response_breaches"]})

    def share(side):
        value = side["first_response_attainment"]["share"]
        return "–" if value is None else f"{value:.1%}"

    rows.append({"label": "First-response attainment", "actual": share(actual), "proposed": share(proposed)})
    rows.append({"label": "Pages outside business hours", "actual": actual["pages_outside_business_hours"],
                 "proposed": proposed["pages_outside_business_hours"]})
    return rows


def _people(report) -> list[dict]:
    actual, proposed = report.actual.as_json(), report.proposed.as_json()
    names = sorted({*actual["pages_per_engineer"], *proposed["pages_per_engineer"]})
    empty = {"pages": 0, "outside_business_hours": 0}
    return [{"name": name, "actual": actual["pages_per_engineer"].get(name, empty),
             "proposed": proposed["pages_per_engineer"].get(name, empty)} for name in names]


@staff_member_required
def replay_page(request: HttpRequest) -> HttpResponse:
    form = ReplayForm(request.POST or None, request.FILES or None, initial=ReplayForm.last_month())
    report = None
    if request.method == "POST" and form.is_valid():
        since, until = form.range()
        report = replay_run(since=since, until=until, config=form.config,
                            tier=form.cleaned_data.get("tier") or None)
    context = {
        **admin.site.each_context(request),
        "title": "Replay: what would a proposed policy have done?",
        "form": form,
        "report": report,
        "rows": _rows(report) if report else [],
        "people": _people(report) if report else [],
        "changed": report.as_json()["changed"][:CHANGED_SHOWN] if report else [],
        "changed_total": len(report.changed) if report else 0,
        "changed_shown": CHANGED_SHOWN,
    }
    return render(request, "reports/replay.html", context)
