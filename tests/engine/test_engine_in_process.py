"""The engine's services, in-process: time frozen, Slack answered by a real HTTP fake."""

from datetime import timedelta

import pytest
import time_machine

from base.helpdesk import FirstReply
from base.models import OutboxMessage, OutboxStatus
from base.outbox import METADATA_EVENT_TYPE
from escalation import firing
from escalation.arming import ticket_arm
from escalation.disarming import ticket_mark_responded
from escalation.firing import escalation_claim, escalation_fire, idempotency_key
from escalation.messages import SNOOZE_ACTION_ID
from escalation.models import Escalation, FiredVia, SnoozeRequest
from escalation.queueing import escalations_enqueue_horizon
from escalation.snooze import ticket_snooze
from escalation.sweeping import SWEEP_GRACE, escalations_sweep
from escalation.transitions import EscalationState
from tests.support.engine import fire, rows
from tests.support.outbox import outbox_of
from tests.support.times import T0
from tickets.models import TicketEvent, TicketEventKind, TicketState

pytestmark = pytest.mark.django_db


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def events(ticket, kind):
    return list(TicketEvent.objects.filter(ticket=ticket, kind=kind))


# --- arming ------------------------------------------------------------------


def test_arm_creates_one_pending_row_per_level_of_the_default_policy(make_ticket):
    ticket = make_ticket(priority="normal")
    with time_machine.travel(T0, tick=False):
        armed = ticket_arm(ticket=ticket)
    assert [(r.level, r.due_at - T0, r.state) for r in rows(ticket)] == [
        (1, minutes(10), "pending"), (2, minutes(20), "pending"),
        (3, minutes(35), "pending"), (4, minutes(50), "pending"),
    ]
    assert len(armed) == 4
    ticket.refresh_from_db()
    assert ticket.sla.policy.priority == "" and ticket.state == TicketState.ARMED
    assert rows(ticket)[2].target_ref == "SSUPPORT1"
    assert len(events(ticket, TicketEventKind.ARMED)) == 1


def test_arm_prefers_the_tier_and_priority_policy(make_ticket):
    ticket = make_ticket(priority="urgent")
    ticket_arm(ticket=ticket, now=T0)
    assert [(r.level, r.due_at - T0) for r in rows(ticket)] == [(1, minutes(5)), (2, minutes(10))]
    ticket.refresh_from_db()
    assert ticket.sla.policy.priority == "urgent"


def test_arming_twice_changes_nothing(make_ticket):
    ticket = make_ticket()
    first = ticket_arm(ticket=ticket, now=T0)
    again = ticket_arm(ticket=ticket, now=T0 + minutes(1))
    assert [r.pk for r in again] == [r.pk for r in first]
    assert Escalation.objects.filter(ticket=ticket).count() == 4
    assert len(events(ticket, TicketEventKind.ARMED)) == 1


def test_a_tier_without_policy_gets_no_policy_and_a_timeline_note(make_ticket):
    from tickets.factories import TierFactory, WatchedChannelFactory

    channel = WatchedChannelFactory(tier=TierFactory(name="No ladder"))
    ticket = make_ticket(channel=channel)
    assert ticket_arm(ticket=ticket, now=T0) == []
    ticket.refresh_from_db()
    assert ticket.state == TicketState.NO_POLICY
    assert not Escalation.objects.filter(ticket=ticket).exists()
    [note] = events(ticket, TicketEventKind.NOTE)
    assert "No SLA policy" in note.details["note"]
    assert ticket_arm(ticket=ticket, now=T0) == []
    assert len(events(ticket, TicketEventKind.NOTE)) == 1


def test_only_levels_within_the_horizon_get_a_task_after_commit(
    make_ticket, settings, django_capture_on_commit_callbacks
):
    settings.ESCALATION_HORIZON_SECONDS = 15 * 60
    ticket = make_ticket()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ticket_arm(ticket=ticket, now=T0)
    queued = [(r.level, bool(r.celery_task_id), r.enqueued_for) for r in rows(ticket)]
    assert queued == [(1, True, T0 + minutes(10)), (2, False, None), (3, False, None), (4, False, None)]
    assert len(callbacks) == 1  # published only after commit


def test_the_horizon_job_queues_levels_as_they_come_near(make_ticket, settings,
                                                         django_capture_on_commit_callbacks):
    settings.ESCALATION_HORIZON_SECONDS = 5 * 60
    ticket = make_ticket()
    ticket_arm(ticket=ticket, now=T0)
    assert [bool(r.celery_task_id) for r in rows(ticket)] == [False] * 4
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert escalations_enqueue_horizon(now=T0 + minutes(16)) == 2  # levels 1 and 2
        assert escalations_enqueue_horizon(now=T0 + minutes(16)) == 0  # already queued
    assert len(callbacks) == 2
    assert [r.enqueued_for == r.due_at for r in rows(ticket)] == [True, True, False, False]


# --- firing ------------------------------------------------------------------


def test_a_due_level_posts_once_in_the_thread_and_is_recorded(make_ticket, engineers, thread_in,
                                                               fake_slack):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    level1 = rows(ticket)[0]
    assert fire(level1, at=T0 + minutes(10, )) == "fired"

    [post] = fake_slack.posts(thread_ts=ticket.slack_ts)
    assert post["channel"] == "CSUPPORT1"
    assert "Level 1" in post["text"] and "<@UALICE> <@UBOB>" in post["text"]
    assert "10 min" in post["text"]  # waited
    assert "level 2 (support engineers on shift) at 09:20 UTC (in 10 min)" in post["text"]
    assert "Snooze every pending level by 30 min" in post["text"]
    assert post["metadata"]["event_type"] == METADATA_EVENT_TYPE
    assert post["metadata"]["event_payload"]["key"] == f"ticket:{ticket.pk}:level:1"
    button = post["blocks"][1]["elements"][0]
    assert (button["action_id"], button["value"]) == (SNOOZE_ACTION_ID, str(ticket.pk))

    level1.refresh_from_db()
    assert level1.state == EscalationState.FIRED and level1.fired_via == FiredVia.TASK
    assert level1.slack_message_ts == post["ts"] and level1.fired_at == T0 + minutes(10)
    assert [n["slack_user_id"] for n in level1.notified] == ["UALICE", "UBOB"]
    outgoing = outbox_of(level1)
    assert (outgoing.status, outgoing.slack_ts) == (OutboxStatus.SENT, post["ts"])
    [event] = events(ticket, TicketEventKind.LEVEL_FIRED)
    assert event.level == 1 and event.details["notified"] == level1.notified


def test_a_duplicate_task_posts_once(make_ticket, engineers, thread_in, fake_slack):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    level1 = rows(ticket)[0]
    version = level1.version
    with time_machine.travel(T0 + minutes(10), tick=False):
        first = escalation_fire(escalation_id=level1.pk, version=version)
        second = escalation_fire(escalation_id=level1.pk, version=version)
    assert (first, second) == ("fired", "stale")
    assert len(fake_slack.posts()) == 1


def test_an_early_task_does_nothing(make_ticket, engineers, thread_in, fake_slack):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    assert fire(rows(ticket)[0], at=T0 + minutes(9)) == "early"
    assert rows(ticket)[0].state == EscalationState.PENDING
    assert fake_slack.posts() == []


def test_last_level_says_it_is_the_last(make_ticket, engineers, thread_in, fake_slack):
    from calendars.factories import EngineerFactory
    from calendars.models import Role

    EngineerFactory(name="Head", slack_user_id="UHEAD", role=Role.HEAD_OF_SUCCESS)
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    assert fire(rows(ticket)[3], at=T0 + minutes(50)) == "fired"
    [post] = fake_slack.posts()
    assert "<@UHEAD>" in post["text"] and "this was the last level" in post["text"]


def test_an_empty_target_falls_through_and_the_message_says_so(make_ticket, thread_in, fake_slack, settings):
    settings.SLACK_SUPPORT_USERGROUP_ID = "SGROUP"
    ticket = thread_in(make_ticket())  # nobody on the roster
    ticket_arm(ticket=ticket, now=T0)
    assert fire(rows(ticket)[0], at=T0 + minutes(10)) == "fired"
    [post] = fake_slack.posts()
    assert "<!subteam^SGROUP>" in post["text"]
    assert "Nobody resolved for support engineers on shift who are not embedded." in post["text"]


def test_a_step_template_is_used(make_ticket, engineers, thread_in, fake_slack):
    ticket = thread_in(make_ticket())
    step = ticket.channel.tier.policies.get(priority="").steps.get(level=1)
    step.message_template = "L{level} for {mentions} after {waited}; {unknown} stays"
    step.save()
    ticket_arm(ticket=ticket, now=T0)
    fire(rows(ticket)[0], at=T0 + minutes(10))
    assert fake_slack.posts()[0]["text"] == "L1 for <@UALICE> <@UBOB> after 10 min; {unknown} stays"


def test_a_helpdesk_first_reply_disarms_instead_of_firing(make_ticket, engineers, thread_in,
                                                           fake_slack, monkeypatch):
    from tickets.models import ResponseMode

    monkeypatch.setattr(firing, "helpdesk_first_reply", lambda *, provider, ticket_id: FirstReply(True))
    ticket = thread_in(make_ticket())
    ticket.channel.response_mode = ResponseMode.ZENDESK
    ticket.channel.save()
    ticket_arm(ticket=ticket, now=T0)
    assert fire(rows(ticket)[0], at=T0 + minutes(10)) == "responded"
    ticket.refresh_from_db()
    assert (ticket.state, ticket.response_path) == (TicketState.RESPONDED, "zendesk")
    assert {r.state for r in rows(ticket)} == {EscalationState.CANCELLED}
    assert fake_slack.posts() == []


# --- responses ---------------------------------------------------------------


def test_mark_responded_cancels_pending_levels_once(make_ticket, engineers, thread_in, fake_slack):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    fire(rows(ticket)[0], at=T0 + minutes(10))
    before = {r.level: r.version for r in rows(ticket)}
    at = T0 + minutes(12)
    assert ticket_mark_responded(ticket=ticket, path="slack_thread", actor="UALICE", at=at) is True
    assert ticket_mark_responded(ticket=ticket, path="webhook", actor="zendesk", at=at) is False
    after = rows(ticket)
    assert [r.state for r in after] == ["fired", "cancelled", "cancelled", "cancelled"]
    assert [r.version - before[r.level] for r in after] == [0, 1, 1, 1]
    ticket.refresh_from_db()
    assert (ticket.state, ticket.responded_at, ticket.response_path, ticket.responded_by) == (
        TicketState.RESPONDED, at, "slack_thread", "UALICE"
    )
    [event] = events(ticket, TicketEventKind.RESPONDED)
    assert event.details["cancelled_levels"] == [2, 3, 4]
    # A task queued before the response is stale now.
    assert fire(after[1], at=T0 + minutes(20), version=before[2]) == "stale"
    assert len(fake_slack.posts()) == 1


# --- snooze --------------------------------------------------------------------


def test_snooze_moves_every_pending_level_once_per_request(make_ticket, engineers, thread_in, fake_slack):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    fire(rows(ticket)[0], at=T0 + minutes(10))
    old = rows(ticket)
    with time_machine.travel(T0 + minutes(11), tick=False):
        result = ticket_snooze(ticket=ticket, request_key="C1:1790.01", actor="UBOB")
        again = ticket_snooze(ticket=ticket, request_key="C1:1790.01", actor="UBOB")
    assert result.applied and not result.duplicate and result.snooze_minutes == 30
    assert result.due_times == {2: T0 + minutes(50), 3: T0 + minutes(65), 4: T0 + minutes(80)}
    assert (again.applied, again.duplicate, again.due_times) == (False, True, result.due_times)
    new = rows(ticket)
    assert [n.due_at - o.due_at for o, n in zip(old, new, strict=True)] == [timedelta(0)] + [minutes(30)] * 3
    [event] = events(ticket, TicketEventKind.SNOOZED)
    assert event.actor == "UBOB" and event.details["minutes"] == 30
    assert SnoozeRequest.objects.get(request_key="C1:1790.01").applied
    # The task for the old due time is stale; the level fires at its new time.
    assert fire(old[1], at=T0 + minutes(20), version=old[1].version) == "stale"
    assert fire(new[1], at=T0 + minutes(20)) == "early"
    assert fire(new[1], at=T0 + minutes(50)) == "fired"


def test_a_repeated_snooze_request_reports_what_it_did_the_first_time(make_ticket, engineers):
    # Slack delivers one mention as app_mention and as message; whichever reply is
    # posted must show the times that request set, even after a later snooze.
    ticket = make_ticket()
    ticket_arm(ticket=ticket, now=T0)
    first = ticket_snooze(ticket=ticket, request_key="m1", actor="U1", now=T0 + minutes(1))
    ticket_snooze(ticket=ticket, request_key="m2", actor="U1", now=T0 + minutes(2))
    again = ticket_snooze(ticket=ticket, request_key="m1", actor="U1", now=T0 + minutes(3))
    assert again.duplicate and not again.applied
    assert again.due_times == first.due_times
    assert rows(ticket)[0].due_at == T0 + minutes(10 + 60)  # moved twice, not three times


def test_snooze_uses_the_policy_minutes_and_ignores_answered_tickets(make_ticket, engineers):
    ticket = make_ticket(priority="urgent")
    ticket_arm(ticket=ticket, now=T0)
    result = ticket_snooze(ticket=ticket, request_key="k1", actor="U1", now=T0 + minutes(1))
    assert result.due_times == {1: T0 + minutes(20), 2: T0 + minutes(25)}
    ticket_mark_responded(ticket=ticket, path="slack_thread", actor="U1", at=T0 + minutes(2))
    late = ticket_snooze(ticket=ticket, request_key="k2", actor="U1", now=T0 + minutes(3))
    assert (late.applied, late.due_times) == (False, {})


# --- Slack errors ------------------------------------------------------------


def test_a_rate_limit_requeues_after_retry_after_then_posts_once(
    make_ticket, engineers, thread_in, fake_slack, django_capture_on_commit_callbacks
):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert fire(rows(ticket)[0], at=T0 + minutes(10)) == "rate_limited"
    level1 = rows(ticket)[0]
    assert level1.state == EscalationState.PENDING
    assert level1.not_before == T0 + minutes(10) + timedelta(seconds=7)
    assert "ratelimited" in level1.last_error and level1.celery_task_id
    assert len(callbacks) == 1  # re-queued for after Retry-After
    assert outbox_of(level1).status == OutboxStatus.RETRY
    assert fire(level1, at=T0 + minutes(10) + timedelta(seconds=3)) == "early"
    with time_machine.travel(T0 + minutes(10) + timedelta(seconds=3), tick=False):
        assert escalations_sweep().handled == 0  # the sweeper honours it too
    assert fire(level1, at=T0 + minutes(10) + timedelta(seconds=7)) == "fired"
    assert len(fake_slack.posts()) == 1
    assert len(fake_slack.calls("chat.postMessage")) == 2


def test_a_server_error_is_retried_with_backoff(make_ticket, engineers, thread_in, fake_slack, settings):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    fake_slack.fail_next("chat.postMessage", status=500)
    assert fire(rows(ticket)[0], at=T0 + minutes(10)) == "retry"
    level1 = rows(ticket)[0]
    assert level1.state == EscalationState.PENDING and "internal_error" in level1.last_error
    # The post may still land: the retry waits SLACK_AMBIGUOUS_WAIT_SECONDS (more than the backoff).
    wait = timedelta(seconds=settings.SLACK_AMBIGUOUS_WAIT_SECONDS)
    assert wait > timedelta(seconds=2)
    assert level1.not_before == T0 + minutes(10) + wait
    assert outbox_of(level1).status == OutboxStatus.SENDING
    assert fire(level1, at=T0 + minutes(10) + wait) == "fired"
    # It looked in the thread first (a 5xx may have been posted), then posted.
    assert len(fake_slack.calls("conversations.replies")) == 1
    assert len(fake_slack.posts()) == 1


def test_a_permanent_error_is_recorded_and_not_retried(make_ticket, engineers, thread_in, fake_slack):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    fake_slack.fail_next("chat.postMessage", error="channel_not_found")
    assert fire(rows(ticket)[0], at=T0 + minutes(10)) == "failed"
    level1 = rows(ticket)[0]
    assert level1.state == EscalationState.FAILED and level1.last_error == "channel_not_found"
    assert level1.not_before is None
    [event] = events(ticket, TicketEventKind.LEVEL_FAILED)
    assert event.details["error"] == "channel_not_found"
    with time_machine.travel(T0 + minutes(15), tick=False):
        assert escalations_sweep().handled == 0
    assert len(fake_slack.calls("chat.postMessage")) == 1


# --- crash recovery and the sweeper -------------------------------------------


def test_a_post_that_reached_slack_before_a_crash_is_not_repeated(make_ticket, engineers, thread_in,
                                                                   fake_slack, settings):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    level1 = rows(ticket)[0]
    # A worker claimed it, recorded the message, Slack accepted it, and the worker died.
    claimed_at = T0 + minutes(10)
    escalation_claim(level1, now=claimed_at, via=FiredVia.TASK)
    key = idempotency_key(ticket_id=ticket.pk, level=1)
    OutboxMessage.objects.create(key=key, purpose="escalation", channel="CSUPPORT1",
                                 thread_ts=ticket.slack_ts, text="x", status=OutboxStatus.SENDING, attempts=1)
    posted = fake_slack.add_message(
        "CSUPPORT1", "Level 1", thread_ts=ticket.slack_ts, user="UFAKEBOT01",
        metadata={"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": key}},
    )
    with time_machine.travel(claimed_at + timedelta(seconds=5), tick=False):
        assert escalations_sweep().handled == 0  # the claim's lease still holds
    after_lease = claimed_at + timedelta(seconds=settings.ESCALATION_CLAIM_LEASE_SECONDS + 1)
    with time_machine.travel(after_lease, tick=False):
        assert escalations_sweep().outcomes == {"fired": 1}
    level1.refresh_from_db()
    assert level1.state == EscalationState.FIRED and level1.slack_message_ts == posted["ts"]
    assert level1.fired_via == FiredVia.SWEEPER
    assert fake_slack.calls("chat.postMessage") == []
    assert events(ticket, TicketEventKind.LEVEL_FIRED)[0].details["recovered"] is True


def test_the_sweeper_fires_each_overdue_level_once(make_ticket, engineers, thread_in, fake_slack):
    tickets = [thread_in(make_ticket()) for _ in range(3)]
    for ticket in tickets:
        ticket_arm(ticket=ticket, now=T0)
    with time_machine.travel(T0 + minutes(21), tick=False):
        first = escalations_sweep()
        second = escalations_sweep()
    assert first.outcomes == {"fired": 6} and not first.more
    assert second.handled == 0
    assert len(fake_slack.posts()) == 6
    fired = Escalation.objects.filter(state=EscalationState.FIRED)
    assert set(fired.values_list("fired_via", flat=True)) == {FiredVia.SWEEPER}
    assert sorted(fired.values_list("level", flat=True)) == [1, 1, 1, 2, 2, 2]


def test_the_sweeper_leaves_a_just_due_level_to_its_task(make_ticket, engineers, thread_in, fake_slack):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    with time_machine.travel(T0 + minutes(10), tick=False):
        assert escalations_sweep().handled == 0
    with time_machine.travel(T0 + minutes(10) + SWEEP_GRACE, tick=False):
        assert escalations_sweep().handled == 1


def test_the_sweeper_works_in_batches(make_ticket, engineers, thread_in, fake_slack):
    for _ in range(3):
        ticket_arm(ticket=thread_in(make_ticket()), now=T0)
    with time_machine.travel(T0 + minutes(11), tick=False):
        result = escalations_sweep(limit=2)
        assert (result.handled, result.more) == (2, True)
        assert escalations_sweep(limit=2).handled == 1


def test_schedules_use_the_configured_intervals(settings):
    from escalation.schedules import schedules

    settings.ESCALATION_SWEEP_SECONDS = 7
    by_task = {s.task: s for s in schedules()}
    assert by_task["escalation.tasks.escalations_sweep"].every_seconds == 7
    assert by_task["escalation.tasks.escalations_enqueue_horizon"].every_seconds == 60
    assert {s.queue for s in schedules()} == {"escalation"}
