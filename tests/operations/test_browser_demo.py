"""Demo mode in a real browser: one ticket's whole lifecycle, and a message edited into a ticket.

open -> level 1 -> snooze -> waiting on the customer (the button on the bot's message) -> the
customer's reply resumes it -> answered -> the customer follows up -> next-response level 1 ->
answered, and the admin's ticket page shows its cycles and its pause; then a helpdesk message
without a Ticket ID is edited into a ticket and closed.

Runs what ``make run`` runs (web, worker, beat, stand-in Slack) and clicks through the demo page
like a person would. Screenshots are kept.
"""

from __future__ import annotations

import pytest

from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, skip_without_chromium
from tests.support.runall import embedded_run_only, runall_start

skip_without_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.slow, embedded_run_only]


def test_demo_ticket_lifecycle_and_an_edit(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    running = runall_start(tmp_path)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{running.url}/demo/")
            page.fill("#ticket-text", "Checkout is failing for all our users")
            page.click("#open-ticket")
            first = page.locator(".thread").first
            expect(first.locator("[data-testid=ticket-state]")).to_have_text("armed", timeout=15_000)
            thread = page.locator(f".thread[data-ts='{first.get_attribute('data-ts')}']")
            state = thread.locator("[data-testid=ticket-state]")

            # Level 1 names Alice (on shift, not embedded), not Bob (embedded).
            level_1 = thread.locator(".msg.bot", has_text="Level 1 escalation")
            expect(level_1).to_have_count(1, timeout=40_000)
            expect(level_1).to_contain_text("@Alice (demo)")
            expect(level_1).not_to_contain_text("Bob")

            thread.locator("button.mention").click()
            expect(thread.locator(".msg.bot", has_text="Snoozed for")).to_have_count(1, timeout=20_000)

            # Waiting on the customer, from the button on the escalation message itself.
            level_1.locator("button.msg-button[data-action=waiting]").click()
            expect(state).to_have_text("waiting", timeout=20_000)
            expect(level_1.locator("[data-testid=state-line]")).to_contain_text("Waiting on customer since",
                                                                                timeout=20_000)
            expect(level_1.locator("button.msg-button")).to_have_text(["Resume", "Close"])
            expect(thread.locator(".levels")).to_contain_text("L2 paused")
            page.screenshot(path=str(ARTIFACTS / "demo-waiting-on-customer.png"), full_page=True)

            thread.locator("button.customer").click()  # the customer's reply resumes the clock
            expect(state).to_have_text("armed", timeout=20_000)
            expect(level_1.locator("[data-testid=state-line]")).to_contain_text("Resumed", timeout=20_000)

            thread.locator("button.reply").click()
            expect(state).to_have_text("responded", timeout=20_000)
            expect(level_1.locator("[data-testid=state-line]")).to_contain_text("Answered by @Alice (demo)",
                                                                                timeout=20_000)
            expect(level_1.locator("button.msg-button")).to_have_count(0)

            thread.locator("button.customer").click()  # a follow-up: a next-response cycle
            expect(state).to_have_text("armed", timeout=20_000)
            expect(thread.locator(".levels")).to_contain_text("next #1 L1")
            escalations = thread.locator(".msg.bot", has_text="Level 1 escalation")
            expect(escalations).to_have_count(2, timeout=40_000)  # the next-response level 1
            thread.locator("button.reply").click()
            expect(state).to_have_text("responded", timeout=20_000)
            expect(escalations.nth(1).locator("[data-testid=state-line]")).to_contain_text(
                "Answered by @Alice (demo)", timeout=20_000)
            page.screenshot(path=str(ARTIFACTS / "demo-ticket-lifecycle.png"), full_page=True)

            # The admin's ticket page shows both cycles and the pause.
            admin = browser.new_page(viewport={"width": 1400, "height": 1000})
            admin.goto(running.url + thread.locator("a", has_text="timeline").get_attribute("href"))
            admin.fill("#id_username", "admin")
            admin.fill("#id_password", (tmp_path / "admin_password").read_text().strip())
            admin.click("input[type=submit]")
            expect(admin.locator("#cycles-group")).to_contain_text("Next response", timeout=15_000)
            expect(admin.locator("#cycles-group tbody tr.has_original")).to_have_count(2)
            expect(admin.locator("#pauses-group")).to_contain_text("customer")
            timeline = admin.locator("#sb-timeline")
            expect(timeline).to_contain_text("Next-response cycle 2: the customer wrote again")
            expect(timeline).to_contain_text("Resumed by UDEMOCUST1")
            admin.screenshot(path=str(ARTIFACTS / "admin-ticket-cycles-and-pauses.png"), full_page=True)
            admin.close()

            # A helpdesk message without a Ticket ID is not a ticket, until it is edited into one.
            page.click("#helpdesk-post")
            helpdesk = page.locator(".thread", has_text="New request from Acme Corp").first
            expect(helpdesk).to_contain_text("not a ticket (yet)", timeout=15_000)
            helpdesk.locator("button.edit").click()
            expect(helpdesk.locator("[data-testid=ticket-state]")).to_have_text("armed", timeout=20_000)
            expect(helpdesk).to_contain_text("(edited)")
            helpdesk.locator("button.close").click()
            expect(helpdesk.locator("[data-testid=ticket-state]")).to_have_text("closed", timeout=20_000)
            page.screenshot(path=str(ARTIFACTS / "demo-edited-and-closed.png"), full_page=True)
            browser.close()
    finally:
        assert running.stop() == 0, running.log()
