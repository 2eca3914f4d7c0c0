"""A ticket's journey to a pager and back, through the signed Slack endpoints, the fake Slack
and the local PagerDuty stand-in: the seeded Enterprise ladder gains a page step for high and
urgent tickets; an urgent ticket pages PagerDuty exactly once (also when the first attempt times
out after PagerDuty accepted it) and the incident is resolved when an engineer answers in the
thread; a normal-priority ticket pages nobody."""

from __future__ import annotations

from datetime import timedelta

import pytest

from base.fake_pager import PAGERDUTY
from base.pages import PageProvider
from calendars.factories import EngineerFactory
from calendars.models import Role
from calendars.targets import TargetKind
from escalation.models import Escalation, EscalationStep, SlaPolicy
from escalation.outcomes import FireOutcome
from escalation.tasks import pages_resolve_pending_job
from tests.support.engine import fire
from tests.support.slack_requests import deliver, now_ts
from tickets.factories import WatchedChannelFactory
from tickets.models import ResponseMode, Ticket, TicketState, Tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def enterprise(client, slack_secrets, fake_slack, fake_pager):
    """The seeded Enterprise ladder plus level 5: page PagerDuty after 55 min, high and urgent only."""
    tier = Tier.objects.get(name="Enterprise")
    policy = SlaPolicy.objects.get(tier=tier, priority="")
    step = EscalationStep(policy=policy, level=5, delay=timedelta(minutes=55), target_kind=TargetKind.PAGE,
                          page_provider=PageProvider.PAGERDUTY, page_priorities=["high", "urgent"])
    step.full_clean()  # what the admin would check: the routing key is configured
    step.save()
    EngineerFactory(name="Alice", slack_user_id="UALICE")
    EngineerFactory(name="Hana", slack_user_id="UHANA", role=Role.HEAD_OF_SUCCESS)
    return WatchedChannelFactory(slack_channel_id="CENTERPR1", name="support-bigcorp", tier=tier,
                                 response_mode=ResponseMode.SLACK_THREAD)


def open_ticket(client, fake_slack, priority: str) -> Ticket:
    ts = now_ts(minutes_ago=1)
    text = f"*Ticket ID*: 9001\n*Ticket priority*: {priority}\n*Type*: Incident"
    fake_slack.add_message("CENTERPR1", text, ts=ts, bot_id="BZENDESK", subtype="bot_message")
    deliver(client, {"type": "message", "subtype": "bot_message", "bot_id": "BZENDESK",
                     "channel": "CENTERPR1", "text": text, "ts": ts, "event_ts": ts})
    return Ticket.objects.get(channel__slack_channel_id="CENTERPR1", slack_ts=ts)


def fire_all(ticket) -> dict[int, str]:
    outcomes = {}
    for row in Escalation.objects.filter(ticket=ticket).order_by("level"):
        outcomes[row.level] = fire(row, at=row.due_at)
    return outcomes


def engineer_replies(client, ticket) -> None:
    ts = now_ts()
    deliver(client, {"type": "message", "channel": "CENTERPR1", "user": "UALICE", "text": "On it!",
                     "ts": ts, "thread_ts": ticket.slack_ts, "event_ts": ts})


def test_an_urgent_ticket_pages_pagerduty_once_and_the_answer_resolves_it(
    client, enterprise, fake_slack, fake_pager, settings
):
    settings.PAGE_TIMEOUT_SECONDS = 0.5
    ticket = open_ticket(client, fake_slack, "Urgent")
    assert ticket.priority == "urgent"
    fake_pager.accept_then_stall(PAGERDUTY, seconds=1.5)  # accepted, but the answer comes too late
    assert fire_all(ticket) == {1: FireOutcome.FIRED, 2: FireOutcome.FIRED, 3: FireOutcome.FIRED,
                                4: FireOutcome.FIRED, 5: FireOutcome.RETRY}
    page_level = Escalation.objects.get(ticket=ticket, level=5)
    assert fire(page_level, at=page_level.not_before) == FireOutcome.FIRED  # the retry

    [incident] = fake_pager.incidents(PAGERDUTY)  # one incident for both attempts
    assert incident.status == "triggered" and incident.key.endswith(f"{ticket.slack_ts}:level:5")
    paged = [m["text"] for m in fake_slack.posts(thread_ts=ticket.slack_ts) if "Level 5" in m["text"]]
    assert len(paged) == 1 and "paged PagerDuty: incident" in paged[0]

    engineer_replies(client, ticket)
    ticket.refresh_from_db()
    assert ticket.state == TicketState.RESPONDED
    assert pages_resolve_pending_job() == {"sent": 1, "waiting": 0, "skipped": 0, "failed": 0}
    [incident] = fake_pager.incidents(PAGERDUTY)
    assert incident.status == "resolved"
    actions = [r.body["event_action"] for r in fake_pager.requests(PAGERDUTY)]
    assert actions == ["trigger", "trigger", "resolve"]


def test_a_normal_priority_ticket_does_not_page(client, enterprise, fake_slack, fake_pager):
    ticket = open_ticket(client, fake_slack, "Normal")
    assert ticket.priority == "normal"
    assert fire_all(ticket) == {level: FireOutcome.FIRED for level in (1, 2, 3, 4)}
    engineer_replies(client, ticket)
    pages_resolve_pending_job()
    assert fake_pager.requests() == []
