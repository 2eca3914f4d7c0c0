"""The replay page in a real browser (Playwright driving Debian's Chromium): from the admin index to
a stricter ladder replayed beside what the engine did, and a bad file's problems by key.
Screenshots go to SLABUDDY_ARTIFACTS_DIR (default ./artifacts/)."""

from __future__ import annotations

import pytest

from ops.sla_config.exporting import config_dump, config_export
from tests.reports.conftest import END
from tests.support.browser import ARTIFACTS, admin_logged_in, chromium_launched, skip_without_chromium
from tests.support.times import T0

skip_without_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def lead(transactional_db, django_user_model):
    django_user_model.objects.create_superuser("lead", "lead@example.com", "browser-test-pw-1")


@pytest.fixture
def stricter(history):
    document = config_export()
    for tier in document["tiers"]:
        for policy in tier["policies"]:
            for step in policy["steps"]:
                step["after"] = "3m"
    return config_dump(document)


@pytest.fixture
def browser():
    """Requested after the fixtures that write rows (see chromium_launched)."""
    with chromium_launched() as launched:
        yield launched


def test_replay_a_stricter_ladder_from_the_admin_index(live_server, lead, stricter, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    admin_logged_in(page, live_server.url, username="lead", password="browser-test-pw-1")
    page.click("#replay-link")
    page.wait_for_selector("#replay-form")

    page.fill("#id_since", T0.date().isoformat())
    page.fill("#id_until", END.date().isoformat())
    page.fill("#id_policy_text", "tiers:\n  - name: Enterprise test\n    policies: [{priority: '', steps: "
              "[{level: 1, after: soon, notify: on_shift}]}]\n")
    page.click("input[type=submit]")
    page.wait_for_selector("#file-errors")
    assert 'tiers[0].policies[0].steps[0].after: "soon" is not a duration' in page.inner_text("#file-errors")
    page.screenshot(path=str(ARTIFACTS / "replay-bad-file.png"), full_page=True)

    page.fill("#id_policy_text", "")
    page.click("#load-current")
    page.wait_for_function("document.getElementById('id_policy_text').value.includes('Enterprise test')")
    assert "after: 10m" in page.input_value("#id_policy_text")  # today's ladder, to edit
    page.fill("#id_policy_text", stricter)
    page.click("input[type=submit]")
    page.wait_for_selector("#replay-result")
    assert "7 tickets replayed" in page.inner_text("#replay-result")
    figures = {row.locator("td").nth(0).inner_text(): (row.locator("td").nth(1).inner_text(),
                                                        row.locator("td").nth(2).inner_text())
               for row in page.locator("#replay-figures tbody tr").all()}
    assert figures["Level 1 fired"] == ("6", "7")  # the ticket answered after 3 min is paged too
    assert figures["Level 4 fired"][0] == "0" and int(figures["Level 4 fired"][1]) > 0
    assert page.locator("#replay-changed tbody tr").count() >= 5
    shot = ARTIFACTS / "replay-stricter-ladder.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
