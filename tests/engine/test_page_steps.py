"""A level that pages outside Slack: exactly one incident per ticket and level (also when an
attempt times out after the pager accepted it), said in the thread, left out for priorities it
is not for, resolved when the ticket is answered. Time frozen; the pager and Slack are real HTTP
stand-ins."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from base.fake_pager import ONCALL, PAGERDUTY
from base.models import OutboxMessage, OutboxStatus
from base.pages import PageProvider
from escalation import tasks
from escalation.arming import ticket_arm
from escalation.disarming import ticket_mark_responded
from escalation.firing import escalation_claim, escalation_deliver_claimed
from escalation.models import EscalationStep
from escalation.outcomes import FireOutcome
from escalation.paging import (
    RESOLVE_TASK,
    page_level_event,
    page_level_record,
    pages_resolve_pending,
    ticket_pages_resolve,
)
from escalation.sweeping import escalations_sweep
from escalation.transitions import EscalationState
from ops.schedules import default_schedules
from tests.support.engine import fire, rows
from tests.support.pager import pages
from tests.support.times import T0
from tickets.models import ResponsePath, TicketEvent, TicketEventKind

pytestmark = pytest.mark.django_db


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


def armed(make, priority="urgent"):
    ticket = make(priority)
    ticket_arm(ticket=ticket, now=T0)
    return ticket


def level(ticket, n):
    return next(r for r in rows(ticket) if r.level == n)


def bot_posts(fake_slack, ticket):
    return [m["text"] for m in fake_slack.posts(channel=ticket.channel.slack_channel_id,
                                                 thread_ts=ticket.slack_ts)]


def answer(ticket, minutes=40):
    return ticket_mark_responded(ticket=ticket, path=ResponsePath.SLACK_THREAD, actor="UALICE",
                                 at=at(minutes))


def test_an_urgent_ticket_reaching_the_page_step_triggers_one_pagerduty_incident(
    paging_ticket, fake_pager, fake_slack
):
    ticket = armed(paging_ticket)
    assert [r.level for r in rows(ticket)] == [1, 2, 3, 4]
    for n, minutes in ((1, 10), (2, 20)):
        assert fire(level(ticket, n), at=at(minutes)) == FireOutcome.FIRED
    assert fake_pager.requests() == []  # Slack levels page nobody
    assert fire(level(ticket, 3), at=at(35)) == FireOutcome.FIRED

    [request] = fake_pager.requests(PAGERDUTY)
    dedup = f"slabuddy:CPAGING01:{ticket.slack_ts}:level:3"
    assert (request.body["event_action"], request.body["dedup_key"]) == ("trigger", dedup)
    assert request.body["payload"]["severity"] == "critical"
    assert "#4711" in request.body["payload"]["summary"]
    thread_link = f"https://fake.slack.example/archives/CPAGING01/p{ticket.slack_ts.replace('.', '')}"
    assert thread_link in {link["href"] for link in request.body["links"]}
    [incident] = fake_pager.incidents(PAGERDUTY)
    assert incident.status == "triggered"

    paged = [t for t in bot_posts(fake_slack, ticket) if "Level 3" in t]
    assert len(paged) == 1 and f"paged PagerDuty: incident `{dedup}`" in paged[0]
    row = level(ticket, 3)
    assert row.state == EscalationState.FIRED
    assert row.notified == [
        {"name": f"PagerDuty (incident {dedup})", "pager": "pagerduty", "reference": dedup}]
    fired = TicketEvent.objects.get(ticket=ticket, kind=TicketEventKind.LEVEL_FIRED, level=3)
    assert fired.details["paged"] == "pagerduty" and fired.details["reference"] == dedup


def test_a_page_accepted_but_timed_out_is_retried_into_the_same_incident(
    paging_ticket, fake_pager, fake_slack, settings
):
    settings.PAGE_TIMEOUT_SECONDS = 0.5
    ticket = armed(paging_ticket)
    fake_pager.accept_then_stall(PAGERDUTY, seconds=1.5)
    assert fire(level(ticket, 3), at=at(35)) == FireOutcome.RETRY
    row = level(ticket, 3)
    assert row.state == EscalationState.PENDING and row.not_before > at(35)
    assert len(fake_pager.incidents(PAGERDUTY)) == 1  # PagerDuty had accepted the first attempt
    assert not any("Level 3" in t for t in bot_posts(fake_slack, ticket))

    assert fire(level(ticket, 3), at=at(36)) == FireOutcome.FIRED
    sent = fake_pager.requests(PAGERDUTY)
    assert len(sent) == 2 and sent[0].body["dedup_key"] == sent[1].body["dedup_key"]
    [incident] = fake_pager.incidents(PAGERDUTY)  # exactly one: the dedup key made the retry safe
    assert incident.events == 2
    assert len([t for t in bot_posts(fake_slack, ticket) if "Level 3" in t]) == 1
    assert fire(level(ticket, 3), at=at(37)) == FireOutcome.STALE  # and it never pages again
    assert len(fake_pager.requests(PAGERDUTY)) == 2


def test_the_incident_is_resolved_when_the_ticket_is_answered(
    paging_ticket, fake_pager, fake_slack, django_capture_on_commit_callbacks
):
    ticket = armed(paging_ticket)
    fire(level(ticket, 3), at=at(35))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert answer(ticket)
    # the revoke of level 4's task, the resolve task, and the update of level 3's message ("Answered by …")
    assert len(callbacks) == 3
    [resolve_row] = [m for m in pages() if m.key.endswith(":resolve")]
    assert resolve_row.status == OutboxStatus.NEW  # written down with the response, sent after commit

    with time_machine.travel(at(40), tick=False):
        result = ticket_pages_resolve(ticket_id=ticket.pk)
    assert (result.sent, result.waiting) == (1, 0)
    resolve = fake_pager.requests(PAGERDUTY)[-1].body
    dedup = level(ticket, 3).notified[0]["reference"]
    assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", dedup)
    [incident] = fake_pager.incidents(PAGERDUTY)
    assert incident.status == "resolved"
    note = TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.NOTE).last()
    assert "Resolved the PagerDuty incident" in note.details["note"]
    assert ticket_pages_resolve(ticket_id=ticket.pk).sent == 0  # once
    assert len(fake_pager.requests(PAGERDUTY)) == 2


def test_a_normal_priority_ticket_is_armed_without_the_page_step_and_pages_nobody(
    paging_ticket, fake_pager, fake_slack
):
    ticket = armed(paging_ticket, priority="normal")
    assert [r.level for r in rows(ticket)] == [1, 2, 4]
    for row in rows(ticket):
        assert fire(row, at=at(60)) == FireOutcome.FIRED
    assert fake_pager.requests() == [] and pages() == []
    assert "level 4" in [t for t in bot_posts(fake_slack, ticket) if "Level 2" in t][0]  # next: level 4


def test_a_ticket_without_priority_is_not_paged_and_a_high_one_is(paging_ticket, fake_pager, fake_slack):
    assert 3 not in [r.level for r in rows(armed(paging_ticket, priority=""))]
    high = paging_ticket("high", slack_ts="1790000999.000100")
    ticket_arm(ticket=high, now=T0)
    assert fire(level(high, 3), at=at(35)) == FireOutcome.FIRED
    [request] = fake_pager.requests(PAGERDUTY)
    assert request.body["payload"]["severity"] == "error"


def test_a_page_refused_for_good_tells_the_head_of_success_in_the_thread(
    paging_ticket, fake_pager, fake_slack, settings
):
    settings.PAGE_CREDENTIALS = {}  # the routing key was never configured on this server
    ticket = armed(paging_ticket)
    assert fire(level(ticket, 3), at=at(35)) == FireOutcome.FIRED
    [text] = [t for t in bot_posts(fake_slack, ticket) if "Level 3" in t]
    assert "could not page PagerDuty (PAGERDUTY_ROUTING_KEY is not set on this server)" in text
    assert "<@UHEAD>" in text
    assert level(ticket, 3).notified == [{"name": "Hana Head", "slack_user_id": "UHEAD"}]
    assert fake_pager.requests() == []
    assert fire(level(ticket, 3), at=at(36)) == FireOutcome.STALE


def test_a_rate_limited_page_comes_back_after_retry_after(paging_ticket, fake_pager, fake_slack):
    ticket = armed(paging_ticket)
    fake_pager.fail_next(PAGERDUTY, status=429, retry_after=40)
    assert fire(level(ticket, 3), at=at(35)) == FireOutcome.RATE_LIMITED
    assert level(ticket, 3).not_before == at(35) + timedelta(seconds=40)
    assert fire(level(ticket, 3), at=at(36)) == FireOutcome.FIRED
    assert len(fake_pager.incidents(PAGERDUTY)) == 1


def test_the_sweeper_pages_a_level_whose_task_was_lost(paging_ticket, fake_pager, fake_slack):
    ticket = armed(paging_ticket)
    with time_machine.travel(at(36), tick=False):
        escalations_sweep()
    assert len(fake_pager.incidents(PAGERDUTY)) == 1
    assert level(ticket, 3).state == EscalationState.FIRED and level(ticket, 3).fired_via == "sweeper"
    with time_machine.travel(at(37), tick=False):
        escalations_sweep()
    assert len(fake_pager.requests(PAGERDUTY)) == 1


def test_a_ticket_answered_after_the_claim_is_not_paged_and_nothing_is_resolved(
    paging_ticket, fake_pager, fake_slack
):
    ticket = armed(paging_ticket)
    row = level(ticket, 3)
    # A worker claimed the level and wrote its page down; the answer came before it paged.
    with time_machine.travel(at(35), tick=False):
        claimed = escalation_claim(row, now=at(35), via="sweeper")
        page_level_record(claimed, ticket=ticket, event=page_level_event(claimed, ticket=ticket, now=at(35)))
        answer(ticket, minutes=35)
        assert ticket_pages_resolve(ticket_id=ticket.pk).waiting == 1  # its level is still being fired
        assert escalation_deliver_claimed(claimed, now=at(35)) == FireOutcome.CANCELLED
    assert fake_pager.requests() == []
    assert level(ticket, 3).state == EscalationState.CANCELLED
    result = ticket_pages_resolve(ticket_id=ticket.pk)
    assert (result.sent, result.skipped) == (0, 1)
    assert [(m.status, m.attempts) for m in pages()] == [(OutboxStatus.FAILED, 0)] * 2  # neither ever left
    assert fake_pager.requests() == []


def test_a_page_that_may_have_landed_before_the_answer_is_resolved(paging_ticket, fake_pager, fake_slack):
    ticket = armed(paging_ticket)
    fake_pager.fail_next(PAGERDUTY, status=500)  # it may (or may not) have paged
    assert fire(level(ticket, 3), at=at(35)) == FireOutcome.RETRY
    answer(ticket, minutes=35.5)  # the level is cancelled before its retry
    result = pages_resolve_pending()  # the beat job, as if the task had been lost
    assert result.sent == 1
    assert fake_pager.requests(PAGERDUTY)[-1].body["event_action"] == "resolve"


def test_a_resolve_waits_for_a_page_still_being_sent(paging_ticket, fake_pager, fake_slack):
    ticket = armed(paging_ticket)
    fire(level(ticket, 3), at=at(35))
    answer(ticket)
    trigger = OutboxMessage.objects.get(key=f"page:ticket:{ticket.pk}:level:3")
    OutboxMessage.objects.filter(pk=trigger.pk).update(lease_until=at(40) + timedelta(minutes=5))
    with time_machine.travel(at(40), tick=False):
        assert ticket_pages_resolve(ticket_id=ticket.pk).waiting == 1
    OutboxMessage.objects.filter(pk=trigger.pk).update(lease_until=None)
    assert ticket_pages_resolve(ticket_id=ticket.pk).sent == 1


def test_oncall_is_paged_alerting_with_links_and_resolved_with_state_ok(
    paging_ticket, paging_ladder, fake_pager, fake_slack, settings
):
    settings.ZENDESK_BASE_URL = "https://acme.zendesk.example"
    EscalationStep.objects.filter(level=3).update(page_provider=PageProvider.ONCALL)
    ticket = armed(paging_ticket)
    assert fire(level(ticket, 3), at=at(35)) == FireOutcome.FIRED
    answer(ticket)
    ticket_pages_resolve(ticket_id=ticket.pk)
    trigger, resolve = fake_pager.requests(ONCALL)
    assert trigger.body["state"] == "alerting" and resolve.body["state"] == "ok"
    assert trigger.body["link_to_upstream_details"] == "https://acme.zendesk.example/agent/tickets/4711"
    assert f"archives/CPAGING01/p{ticket.slack_ts.replace('.', '')}" in trigger.body["message"]
    assert trigger.body["alert_uid"] == resolve.body["alert_uid"]
    [group] = fake_pager.incidents(ONCALL)
    assert group.status == "resolved"


def test_an_armed_ticket_keeps_the_pager_it_was_armed_with(paging_ticket, fake_pager, fake_slack):
    ticket = armed(paging_ticket)
    EscalationStep.objects.filter(level=3).update(page_provider=PageProvider.ONCALL,
                                                  page_credential="ONCALL_WEBHOOK_URL")
    fire(level(ticket, 3), at=at(35))
    assert len(fake_pager.requests(PAGERDUTY)) == 1 and fake_pager.requests(ONCALL) == []


def test_the_resolve_task_and_its_beat_job_exist_under_the_names_they_are_sent_by():
    assert tasks.ticket_pages_resolve.name == RESOLVE_TASK
    [job] = [s for s in default_schedules() if s.name == "escalation: resolve pages"]
    assert tasks.pages_resolve_pending_job.name == job.task


def test_the_admin_refuses_a_page_step_that_could_never_page(paging_ladder, settings):
    settings.PAGE_CREDENTIALS = {"PAGERDUTY_ROUTING_KEY": "R0ut1ngKeyForTests0000000000000a"}
    policy = paging_ladder.policies.get()
    step = EscalationStep(policy=policy, level=9, delay=timedelta(hours=2), target_kind="page",
                          page_provider=PageProvider.PAGERDUTY, page_credential="PAGERDUTY_ROUTING_KEY_EU",
                          page_priorities=["urgent", "someday"])
    with pytest.raises(ValidationError) as refused:
        step.full_clean()
    assert refused.value.message_dict == {
        "page_credential": ["PAGERDUTY_ROUTING_KEY_EU is not set on this server: set it (or "
                            "PAGERDUTY_ROUTING_KEY_EU_FILE) and restart, or this level could never page."],
        "page_priorities": ["Priorities must be a list of: low, normal, high, urgent."],
    }
    step.page_credential, step.page_priorities = "SECRET_KEY", ["urgent"]
    with pytest.raises(ValidationError, match="not a pagerduty credential setting"):
        step.full_clean()
    step.page_credential = ""
    step.full_clean()  # the default routing key is set: fine
    slack_step = EscalationStep(policy=policy, level=10, delay=timedelta(hours=3), target_kind="on_shift",
                                page_provider=PageProvider.ONCALL)
    with pytest.raises(ValidationError, match="Only a page target"):
        slack_step.full_clean()


def test_a_next_response_cycle_pages_its_own_incident_and_a_close_resolves_it(
    paging_ticket, paging_ladder, fake_pager, fake_slack
):
    from escalation.closing import ticket_close
    from escalation.cycles import ticket_next_response_start
    from escalation.factories import NextResponseStepFactory
    from tickets.models import TicketVia

    NextResponseStepFactory(policy=paging_ladder.policies.get(), level=1, delay=timedelta(minutes=5),
                            target_kind="page", page_provider=PageProvider.PAGERDUTY)
    ticket = armed(paging_ticket)
    assert fire(level(ticket, 3), at=at(35)) == FireOutcome.FIRED
    assert answer(ticket, minutes=38)  # resolves the first incident
    assert ticket_pages_resolve(ticket_id=ticket.pk).sent == 1
    with time_machine.travel(at(60), tick=False):
        assert ticket_next_response_start(ticket=ticket, request_key="m:1", message_ts="1.2", actor="UCUST",
                                          at=at(60)).number == 2
    [page_level] = [r for r in rows(ticket) if r.cycle == 2]
    assert fire(page_level, at=at(65)) == FireOutcome.FIRED
    first, second = fake_pager.incidents(PAGERDUTY)
    assert second.key == f"slabuddy:CPAGING01:{ticket.slack_ts}:cycle:2:level:1" != first.key
    assert OutboxMessage.objects.filter(key=f"page:ticket:{ticket.pk}:cycle:2:level:1").exists()
    assert ticket_close(ticket=ticket, via=TicketVia.BUTTON, actor="UALICE", at=at(70))
    assert ticket_pages_resolve(ticket_id=ticket.pk).sent == 1  # only the new one: the first is resolved
    assert [i.status for i in fake_pager.incidents(PAGERDUTY)] == ["resolved", "resolved"]
    resolve = OutboxMessage.objects.get(key=f"page:ticket:{ticket.pk}:cycle:2:level:1:resolve")
    assert resolve.payload["event"]["title"].startswith("Closed: ")
