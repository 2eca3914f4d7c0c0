"""The report page, its CSVs and ``sla_report``: the CSVs parse, their rows add up to the figures, and
the page and the command show what reports/figures.py computes."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest
import time_machine
from django.core.management import call_command

from reports.figures import ReportFilters, report_build
from tests.support.report_month import NOW, SINCE, UNTIL, month_build

pytestmark = pytest.mark.django_db
QUERY = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}


@pytest.fixture
def staff_client(client, django_user_model):
    django_user_model.objects.create_superuser("lead", "lead@example.com", "pw-report-1")
    client.login(username="lead", password="pw-report-1")
    return client


@pytest.fixture
def month(db):
    return month_build()


def _csv(client, section: str, **query) -> list[dict]:
    response = client.get(f"/admin/reports/sla/{section}.csv", {**QUERY, **query})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@time_machine.travel(NOW, tick=False)
def test_csv_rows_add_up_to_the_figures(staff_client, month):
    report = report_build(filters=ReportFilters(since=SINCE, until=UNTIL), now=NOW)
    totals = {row["tier"]: row for row in report.totals}

    tickets = _csv(staff_client, "tickets")
    assert Counter(r["tier"] for r in tickets) == {t: row["opened"] for t, row in totals.items()}
    for tier, row in totals.items():
        mine = [r for r in tickets if r["tier"] == tier]
        assert sum(r["breached"] == "True" for r in mine) == row["breached"]
        assert sum(int(r["levels_fired"]) for r in mine) == row["levels_fired"]
        assert sum(bool(r["closed_without_reply_at"]) for r in mine) == row["closed_without_reply"]
        answered = [r for r in mine if r["first_response_at"]]
        assert sum(r["first_response_at"] <= r["breach_at"] for r in answered) == row["met"]
    g1 = next(r for r in tickets if r["helpdesk_ticket_id"] == "G1")
    assert (g1["opened_at"], g1["breach_at"], g1["first_response_at"], g1["response_path"], g1["cycles"]) == (
        "2026-10-05T08:00:00+00:00",
        "2026-10-05T09:00:00+00:00",
        "2026-10-05T08:30:00+00:00",
        "slack_thread",
        "2",
    )

    weeks = _csv(staff_client, "weeks")
    for tier, row in totals.items():
        mine = [r for r in weeks if r["tier"] == tier]
        for column in (
            "opened",
            "answered",
            "met",
            "closed_without_reply",
            "still_open",
            "breached",
            "next_cycles",
            "levels_fired",
            "levels_failed",
            "snoozes",
            "pauses",
        ):
            assert sum(int(r[column]) for r in mine) == row[column], (tier, column)

    levels = _csv(staff_client, "levels")
    for tier, row in totals.items():
        assert sum(int(r["fired"]) for r in levels if r["tier"] == tier) == row["levels_fired"]
        assert sum(int(r["failed"]) for r in levels if r["tier"] == tier) == row["levels_failed"]

    heatmap = _csv(staff_client, "heatmap")
    ttfr = _csv(staff_client, "ttfr_distribution")
    for tier, row in totals.items():
        assert sum(int(r["tickets"]) for r in heatmap if r["tier"] == tier) == row["opened"]
        answered = sum(1 for r in tickets if r["tier"] == tier and r["first_response_at"])
        assert sum(int(r["tickets"]) for r in ttfr if r["tier"] == tier) == answered

    engineers = _csv(staff_client, "engineers")
    assert [(r["engineer"], int(r["pages"]), int(r["outside_business_hours"])) for r in engineers] == [
        ("Alice", 3, 0),
        ("Bob", 3, 1),
    ]
    assert _csv(staff_client, "totals")[0]["attainment"] == str(totals["Gold"]["attainment"])


def test_csv_of_an_empty_range_has_its_header(staff_client, month):
    response = staff_client.get(
        "/admin/reports/sla/engineers.csv", {"since": "2020-01-01", "until": "2020-01-31"}
    )
    assert (
        b"".join(response.streaming_content).decode().strip()
        == "engineer,slack_user_id,pages,outside_business_hours"
    )
    empty = {"since": "2020-01-01", "until": "2020-01-31"}
    response = staff_client.get("/admin/reports/sla/weeks.csv", empty)
    header = b"".join(response.streaming_content).decode()
    assert header.startswith("tier,week,opened,answered,met,attainment,")
    assert staff_client.get("/admin/reports/sla/nothing.csv").status_code == 404


def test_report_page_shows_figures_charts_and_csv_links(staff_client, month):
    response = staff_client.get("/admin/reports/sla/", QUERY)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") >= 5  # attainment, TTFR, engineers, one heatmap per tier
    assert "First-response attainment per week" in html and "Arrivals, Gold" in html
    assert "/admin/reports/sla/tickets.csv?since=2026-10-05&amp;until=2026-11-01" in html
    assert "<script" not in html.split('id="sb-report"')[1]  # nothing to load: the charts are SVG
    report = response.context["report"]
    assert [r["tier"] for r in report.totals] == ["Gold", "Silver"]


def test_report_page_is_for_staff_only(client, month):
    response = client.get("/admin/reports/sla/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get("/admin/reports/sla/weeks.csv").status_code == 302


def test_admin_index_links_the_report(staff_client):
    html = staff_client.get("/admin/").content.decode()
    assert 'href="/admin/reports/sla/"' in html


def test_command_prints_the_same_figures(month, capsys):
    with time_machine.travel(NOW, tick=False):
        call_command("sla_report", "--since", str(SINCE), "--until", str(UNTIL), "--format", "json")
        expected = report_build(filters=ReportFilters(since=SINCE, until=UNTIL), now=NOW).as_dict()
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(expected))

    call_command(
        "sla_report", "--since", str(SINCE), "--until", str(UNTIL), "--tier", "Silver", "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["tier"] for r in rows} == {"Silver"} and sum(int(r["opened"]) for r in rows) == 5

    call_command(
        "sla_report", "--since", str(SINCE), "--until", str(UNTIL), "--format", "csv", "--section", "tickets"
    )
    assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) == 12
