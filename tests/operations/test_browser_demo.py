"""Demo mode in a real browser: a ticket goes opened -> level 1 -> snooze -> response.

Runs what ``make run`` runs (web, worker, beat, stand-in Slack) and clicks
through the demo page like a person would. A screenshot is kept.
"""

from __future__ import annotations

import pytest

from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, skip_without_chromium
from tests.support.runall import runall_start

skip_without_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_demo_ticket_through_level_1_snooze_and_response(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    running = runall_start(tmp_path)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{running.url}/demo/")
            page.fill("#ticket-text", "Checkout is failing for all our users")
            page.click("#open-ticket")
            thread = page.locator(".thread").first
            expect(thread.locator("[data-testid=ticket-state]")).to_have_text("armed", timeout=15_000)
            # Level 1 names Alice (on shift, not embedded), not Bob (embedded).
            level_1 = thread.locator(".msg.bot", has_text="Level 1 escalation")
            expect(level_1).to_have_count(1, timeout=40_000)
            expect(level_1).to_contain_text("@Alice (demo)")
            expect(level_1).not_to_contain_text("Bob")

            thread.locator("button.mention").click()
            expect(thread.locator(".msg.bot", has_text="Snoozed")).to_have_count(1, timeout=20_000)

            thread.locator("button.reply").click()
            expect(thread.locator("[data-testid=ticket-state]")).to_have_text("responded", timeout=20_000)
            expect(thread.locator(".levels")).to_contain_text("L2 cancelled")
            page.screenshot(path=str(ARTIFACTS / "demo-ticket-flow.png"), full_page=True)
            browser.close()
    finally:
        assert running.stop() == 0, running.log()
