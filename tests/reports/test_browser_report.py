"""The SLA report page in a real browser (Playwright + Debian's Chromium), with a screenshot in the
artifacts dir: reached from the admin index, filtered, its charts drawn without any network."""

from __future__ import annotations

import pytest

from tests.support.browser import ARTIFACTS, admin_logged_in, chromium_launched, skip_without_chromium

skip_without_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def month_and_lead(transactional_db, django_user_model):
    from tests.support.report_month import month_build

    django_user_model.objects.create_superuser("lead", "lead@example.com", "browser-test-pw-1")
    return month_build()


@pytest.fixture
def browser():
    """Requested after the fixtures that write rows (see chromium_launched)."""
    with chromium_launched() as launched:
        yield launched


def test_report_page_from_the_admin_index(live_server, month_and_lead, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None)
    admin_logged_in(page, live_server.url, username="lead", password="browser-test-pw-1")

    page.click("#sla-report-link")
    page.wait_for_selector("#sb-report")
    page.fill("#id_since", "2026-10-05")
    page.fill("#id_until", "2026-11-01")
    page.click("#sb-report input[type=submit]")
    page.wait_for_selector("#sb-totals")

    totals = [r.inner_text() for r in page.locator("#sb-totals tbody tr").all()]
    assert len(totals) == 2 and totals[0].startswith("Gold") and "60%" in totals[0], totals
    assert "80%" in totals[1]
    assert page.locator("#sb-weeks tbody tr").count() == 7  # Gold 4 weeks, Silver 3
    charts = page.locator("svg.sb-chart")
    assert charts.count() == 5
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 80
    assert page.locator("#sb-chart-attainment polyline").count() == 2  # one line per tier
    assert page.locator("#sb-chart-engineers rect").count() >= 3  # Alice, Bob, Bob's outside-hours part
    assert page.inner_text("#sb-engineers").count("UBOB") == 1
    href = page.get_attribute("#sb-csv-tickets", "href")
    assert href.startswith("/admin/reports/sla/tickets.csv?") and "since=2026-10-05" in href
    assert outside == []  # nothing loaded from anywhere else

    shot = ARTIFACTS / "sla-report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
