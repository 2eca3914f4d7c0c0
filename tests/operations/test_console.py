"""The admin as the team's console: timeline, next level, breached filter, roster columns."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from calendars.factories import EngineerFactory
from escalation.models import Escalation, TicketSla
from ops.console import breached_q
from tickets.factories import TicketFactory, WatchedChannelFactory
from tickets.models import Ticket, Tier
from tickets.timeline import timeline_record

pytestmark = pytest.mark.django_db


def _level(ticket, level, state, due_in_minutes, **extra):
    return Escalation.objects.create(
        ticket=ticket,
        level=level,
        target_kind="on_shift",
        state=state,
        due_at=datetime.now(UTC) + timedelta(minutes=due_in_minutes),
        **extra,
    )


@pytest.fixture
def story():
    channel = WatchedChannelFactory(
        name="support-acme", tier=Tier.objects.get_or_create(name="Enterprise")[0]
    )
    opened = datetime.now(UTC) - timedelta(minutes=45)
    ticket = TicketFactory(channel=channel, opened_at=opened, helpdesk_ticket_id="4242")
    timeline_record(ticket=ticket, kind="opened", at=opened, actor="UCUSTOMER", details={"via": "events"})
    TicketSla.objects.create(ticket=ticket, policy_name="Enterprise default", armed_at=opened,
                             breach_at=opened + timedelta(minutes=10))
    # The shapes escalation.services writes: level -> due time (ISO), and the snooze's new due times.
    timeline_record(
        ticket=ticket,
        kind="armed",
        at=opened,
        details={
            "policy": "Enterprise default",
            "levels": {"1": (opened + timedelta(minutes=10)).isoformat(), "2": "2026-03-29T01:30:00+00:00"},
        },
    )
    _level(
        ticket,
        1,
        "fired",
        -35,
        notified=[{"name": "Alice", "slack_user_id": "UALICE"}],
        fired_at=opened + timedelta(minutes=10),
    )
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
        details={"minutes": 30, "due_times": {"2": "2026-03-29T02:00:00+00:00"}},
    )
    _level(ticket, 2, "pending", 5, target_ref="")
    return ticket


def test_ticket_page_shows_the_timeline_in_order_and_the_next_level(staff_client, story):
    page = staff_client.get(reverse("admin:tickets_ticket_change", args=[story.pk])).content.decode()
    timeline = page[page.index('id="sb-timeline"') :]
    order = [
        timeline.index(text)
        for text in (
            "Ticket opened in #support-acme",
            "Armed with Enterprise default: level 1 due ",
            "Level 1 posted in the thread, notified Alice",
            "Snoozed by UBOB for 30 min; now level 2 due 02:00 UTC",
        )
    ]
    assert order == sorted(order)
    assert "level 2 due 01:30 UTC" in timeline
    assert re.search(r"Level 2 due \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in \d+ min", page)
    assert "Every support engineer on shift" in page
    assert "Armed (awaiting a response) — breached" in page
    assert re.search(r"\d\d:\d\d:\d\d UTC: breached 35 min ago", page)

    Ticket.objects.filter(pk=story.pk).update(
        state="responded", responded_at=datetime.now(UTC), response_path="slack_thread", responded_by="UCAROL"
    )
    Escalation.objects.filter(ticket=story, state="pending").update(state="cancelled")
    timeline_record(
        ticket=story, kind="responded", at=datetime.now(UTC), actor="UCAROL", details={"path": "slack_thread"}
    )
    page = staff_client.get(reverse("admin:tickets_ticket_change", args=[story.pk])).content.decode()
    assert "Responded (Reply in the Slack thread) by UCAROL" in page
    assert "none: responded" in page


def _armed(helpdesk_id: str, *, breach_in_minutes: float | None, **fields):
    """A ticket whose first-response target is ``breach_in_minutes`` from now (None: no policy)."""
    ticket = TicketFactory(helpdesk_ticket_id=helpdesk_id, **fields)
    if breach_in_minutes is not None:
        now = datetime.now(UTC)
        TicketSla.objects.create(ticket=ticket, policy_name="p", armed_at=now,
                                 breach_at=now + timedelta(minutes=breach_in_minutes))
    return ticket


def test_breached_means_the_breach_time_passed_before_the_response(staff_client):
    now = datetime.now(UTC)
    _armed("overdue", breach_in_minutes=-1)
    _armed("waiting", breach_in_minutes=10)
    # A level that fired before the target is not a breach (outside_hours steps, early levels).
    early = _armed("early-level", breach_in_minutes=30)
    _level(early, 1, "fired", -5)
    _armed("in-time", breach_in_minutes=-10, state="responded", responded_at=now - timedelta(minutes=20))
    _armed("late", breach_in_minutes=-10, state="responded", responded_at=now - timedelta(minutes=5))
    _armed("no-policy", breach_in_minutes=None, state="no_policy")

    breached = set(Ticket.objects.filter(breached_q()).values_list("helpdesk_ticket_id", flat=True))
    assert breached == {"overdue", "late"}
    url = reverse("admin:tickets_ticket_changelist")
    yes = staff_client.get(url + "?breached=yes").content.decode()
    no = staff_client.get(url + "?breached=no").content.decode()
    assert "Ticket #late" in yes and "Ticket #overdue" in yes and "Ticket #waiting" not in yes
    for within in ("waiting", "in-time", "early-level", "no-policy"):
        assert f"Ticket #{within}" in no
    assert "Ticket #late" not in no
    late = Ticket.objects.get(helpdesk_ticket_id="late")
    page = staff_client.get(reverse("admin:tickets_ticket_change", args=[late.pk])).content.decode()
    assert re.search(r"Missed: answered (4 min 59|5 min 00) s after the target", page)
    tier = late.channel.tier
    by_tier = staff_client.get(url + f"?channel__tier__id__exact={tier.pk}&state__exact=armed")
    assert by_tier.status_code == 200


def test_engineers_list_shows_who_is_on_shift_and_embedded_now(staff_client, monkeypatch):
    alice = EngineerFactory(name="Alice")
    EngineerFactory(name="Zed Inactive", active=False)
    import calendars.roster_columns

    monkeypatch.setattr(calendars.roster_columns, "embedded", lambda at: {alice.pk: "Storage"})
    page = staff_client.get(reverse("admin:calendars_engineer_changelist")).content.decode()
    assert "on shift now" in page.lower() and "embedded now" in page.lower()
    alice_row = page[page.index(">Alice<") :].split("</tr>")[0]
    zed_row = page[page.index(">Zed Inactive<") :].split("</tr>")[0]
    assert "Storage" in alice_row
    assert 'alt="True"' in alice_row.split("Storage")[0][-400:] or "icon-yes" in alice_row
    assert "icon-no" in zed_row
