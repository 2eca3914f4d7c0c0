"""Demo mode seeds a realistic past month (marked as demo data, never outside demo mode), written as
the engine would have left it: replaying it under the very same policies changes nothing."""

from datetime import UTC, datetime, timedelta

import pytest

from calendars.resolve import roster_at
from escalation.models import Escalation, SnoozeRequest, TicketCycle, TicketPause
from ops.demo.history import MARK, DemoOnly, demo_history_seed
from ops.demo.setup import demo_setup
from ops.sla_config.exporting import config_dump, config_export
from reports.replay.policy_file import policy_file_read
from reports.replay.running import replay_run
from tickets.models import Ticket, TicketEvent, TicketState

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@pytest.fixture
def seeded(settings):
    settings.DEMO_MODE = True
    demo_setup()
    count = demo_history_seed(now=NOW)
    return count


def test_the_past_month_is_never_seeded_outside_demo_mode(settings):
    settings.DEMO_MODE = False
    with pytest.raises(DemoOnly):
        demo_history_seed(now=NOW)
    assert not Ticket.objects.exists()


def test_the_past_month_is_marked_as_demo_data_and_seeded_once(seeded):
    tickets = Ticket.objects.all()
    assert seeded == tickets.count() >= 300
    assert all(t.text.startswith(MARK) for t in tickets)
    assert {t.channel.name for t in tickets} == {"demo-history-acme", "demo-history-globex"}
    assert not any(t.channel.active for t in tickets)  # nothing scans the demo's history channels
    notes = TicketEvent.objects.filter(kind="note", details__demo_history=True)
    assert notes.count() == seeded
    assert demo_history_seed(now=NOW + timedelta(hours=1)) == 0
    assert Ticket.objects.count() == seeded


def test_the_past_month_is_realistic(seeded):
    start = NOW - timedelta(days=30)
    tickets = Ticket.objects.all()
    assert min(t.opened_at for t in tickets) >= start and max(t.opened_at for t in tickets) < NOW
    assert {t.channel.tier.name for t in tickets} == {"Demo Enterprise", "Demo Teams"}
    assert {t.priority for t in tickets} == {"low", "normal", "high", "urgent"}
    states = {t.state for t in tickets}
    assert {TicketState.RESPONDED, TicketState.CLOSED, TicketState.ARMED} <= states
    assert tickets.filter(responded_at__isnull=True, closed_at__isnull=False).exists()  # closed, no reply
    assert TicketPause.objects.filter(resumed_via="customer").count() > 10
    assert SnoozeRequest.objects.filter(applied=True).count() > 10
    assert TicketCycle.objects.filter(number=2).count() > 10
    assert TicketCycle.objects.filter(reopened=True).exists()
    fired = Escalation.objects.filter(state="fired")
    assert {row.level for row in fired} == {1, 2, 3, 4}
    assert fired.filter(cycle=2).exists()
    paged = {p["name"] for row in fired for p in row.notified if p.get("slack_user_id")}
    assert {"Alice (demo)", "Dan (demo)", "Erin (demo)", "Carol (demo)"} <= paged
    # Every engineer a level mentioned was on shift (and not embedded, for level 1) at that moment.
    for row in fired.filter(target_kind="on_shift").exclude(notified=[])[:60]:
        on_shift = {line.engineer.slack_user_id for line in roster_at(row.fired_at) if line.on_shift}
        assert {p["slack_user_id"] for p in row.notified} == on_shift


def test_replaying_the_month_under_its_own_policies_equals_the_history(seeded):
    identical = policy_file_read(config_dump(config_export()))
    report = replay_run(since=NOW - timedelta(days=31), until=NOW, config=identical, now=NOW)
    assert report.tickets == seeded
    assert report.changed == []
    assert report.proposed.as_json() == report.actual.as_json()
    actual = report.actual.as_json()
    assert actual["breaches"] > 20 and actual["pages_outside_business_hours"] > 0
    assert 0.3 < actual["first_response_attainment"]["share"] < 0.95
