"""The admin console in a real browser: Playwright driving Debian's Chromium.

The browser is never downloaded: it is /usr/bin/chromium (``apt-get install
chromium``; .ci/run installs it). Screenshots go to ``SLABUDDY_ARTIFACTS_DIR``
(default ./artifacts/, git-ignored) and are kept as test artifacts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.browser import ARTIFACTS, admin_logged_in, chromium_launched, skip_without_chromium

skip_without_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def browser():
    """Requested after the fixtures that write rows (see chromium_launched)."""
    with chromium_launched() as launched:
        yield launched


@pytest.fixture
def ticket_with_history(transactional_db, django_user_model):
    from escalation.models import Escalation, TicketSla
    from tickets.factories import TicketFactory, WatchedChannelFactory
    from tickets.models import Tier
    from tickets.timeline import timeline_record

    django_user_model.objects.create_superuser("lead", "lead@example.com", "browser-test-pw-1")
    tier, _ = Tier.objects.get_or_create(name="Enterprise")
    channel = WatchedChannelFactory(name="support-acme", tier=tier)
    opened = datetime.now(UTC) - timedelta(minutes=40)
    ticket = TicketFactory(
        channel=channel,
        opened_at=opened,
        helpdesk_ticket_id="7001",
        state="responded",
        responded_at=opened + timedelta(minutes=25),
        response_path="slack_thread",
        responded_by="UCAROL",
    )
    TicketSla.objects.create(ticket=ticket, policy_name="Enterprise default", armed_at=opened,
                             breach_at=opened + timedelta(minutes=10))
    Escalation.objects.create(
        ticket=ticket,
        level=1,
        target_kind="on_shift_not_embedded",
        state="fired",
        due_at=opened + timedelta(minutes=10),
        fired_at=opened + timedelta(minutes=10),
        notified=[{"name": "Alice", "slack_user_id": "UALICE"}],
    )
    Escalation.objects.create(
        ticket=ticket,
        level=2,
        target_kind="on_shift",
        state="cancelled",
        due_at=opened + timedelta(minutes=50),
    )
    timeline_record(ticket=ticket, kind="opened", at=opened, actor="UCUSTOMER")
    timeline_record(
        ticket=ticket,
        kind="level_fired",
        at=opened + timedelta(minutes=10),
        level=1,
        details={"notified": [{"name": "Alice", "slack_user_id": "UALICE"}]},
    )
    timeline_record(
        ticket=ticket,
        kind="snoozed",
        at=opened + timedelta(minutes=12),
        actor="UBOB",
        details={"minutes": 30},
    )
    timeline_record(
        ticket=ticket,
        kind="responded",
        at=opened + timedelta(minutes=25),
        actor="UCAROL",
        details={"path": "slack_thread"},
    )
    return ticket


def test_admin_login_open_a_ticket_and_read_its_timeline(live_server, ticket_with_history, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    admin_logged_in(page, live_server.url, username="lead", password="browser-test-pw-1")

    page.goto(f"{live_server.url}/admin/tickets/ticket/?breached=yes")
    page.click("text=Ticket #7001")
    page.wait_for_selector("#sb-timeline")

    rows = [r.inner_text() for r in page.locator("#sb-timeline tbody tr").all()]
    assert len(rows) == 4, rows
    assert "Ticket opened in #support-acme" in rows[0]
    assert "Level 1 posted in the thread, notified Alice" in rows[1]
    assert "Snoozed by UBOB for 30 min" in rows[2]
    assert "Responded (Reply in the Slack thread) by UCAROL" in rows[3]
    body = page.inner_text("body")
    assert "none: responded" in body
    assert "Responded after 25 min — breached" in body

    shot = ARTIFACTS / "admin-ticket-timeline.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
