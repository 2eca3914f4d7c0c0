"""The ticket lifecycle in the engine, in-process: closed without a reply, waiting on the
customer (pause, not reset), next-response cycles, reopening, excluded types, late pickups."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from base.models import OutboxMessage
from escalation import firing
from escalation.arming import ticket_arm
from escalation.closing import ticket_close
from escalation.cycles import ticket_next_response_start
from escalation.disarming import ticket_mark_responded
from escalation.firing import idempotency_key
from escalation.models import Escalation, LifecycleRequest, TicketCycle, TicketPause
from escalation.outcomes import FireOutcome
from escalation.pausing import ticket_pause, ticket_resume
from escalation.sweeping import escalations_sweep
from escalation.thread_state import thread_updates_send_pending, ticket_thread_updates_send
from tests.support.engine import fire, rows
from tests.support.times import T0
from tickets.models import TicketEvent, TicketEventKind, TicketState, TicketVia

pytestmark = pytest.mark.django_db


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def states(ticket, cycle=1) -> list[str]:
    return [r.state for r in rows(ticket) if r.cycle == cycle]


def due(ticket, cycle=1) -> list[timedelta]:
    return [r.due_at - T0 for r in rows(ticket) if r.cycle == cycle]


def minutes(*values: float) -> list[timedelta]:
    return [timedelta(minutes=v) for v in values]


def events(ticket, kind) -> list[TicketEvent]:
    return list(TicketEvent.objects.filter(ticket=ticket, kind=kind).order_by("at", "id"))


@pytest.fixture
def armed(make_ticket, engineers, thread_in):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    return ticket


def answer(ticket, *, when, actor="UALICE"):
    return ticket_mark_responded(ticket=ticket, path="slack_thread", actor=actor, at=when)


def customer_writes(ticket, *, when, ts=None, key=None):
    ts = ts or f"{when.timestamp():.6f}"
    with time_machine.travel(when, tick=False):
        return ticket_next_response_start(ticket=ticket, request_key=key or f"message:C:{ts}", message_ts=ts,
                                          actor="UCUSTOMER", at=when)


# --- closed without a reply -----------------------------------------------------------------


def test_a_close_cancels_every_pending_level_and_nothing_posts_afterwards(armed, fake_slack):
    assert fire(rows(armed)[0], at=at(10)) == FireOutcome.FIRED
    level2 = rows(armed)[1]
    assert ticket_close(ticket=armed, via=TicketVia.REACTION, actor="UBOB", at=at(12), now=at(12))
    armed.refresh_from_db()
    assert (armed.state, armed.closed_at, armed.closed_via, armed.closed_by) == (
        TicketState.CLOSED, at(12), TicketVia.REACTION, "UBOB")
    assert armed.responded_at is None  # a close is nobody's response
    assert states(armed) == ["fired", "cancelled", "cancelled", "cancelled"]
    assert fire(level2, at=at(20), version=level2.version) == FireOutcome.STALE
    with time_machine.travel(at(60), tick=False):
        assert escalations_sweep().handled == 0
    assert len(fake_slack.posts(thread_ts=armed.slack_ts)) == 1
    [closed] = events(armed, TicketEventKind.CLOSED)
    assert (closed.actor, closed.details["via"], closed.details["cancelled_levels"]) == ("UBOB", "reaction",
                                                                                         [2, 3, 4])
    assert closed.details["without_reply"] is True
    cycle = TicketCycle.objects.get(ticket=armed)
    assert (cycle.closed_at, cycle.responded_at) == (at(12), None)


def test_a_second_close_and_the_same_request_again_change_nothing(armed):
    assert ticket_close(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(5), request_key="button:1")
    assert not ticket_close(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(6),
                            request_key="button:1")
    assert not ticket_close(ticket=armed, via=TicketVia.HELPDESK, actor="zendesk", at=at(7))
    assert len(events(armed, TicketEventKind.CLOSED)) == 1
    assert LifecycleRequest.objects.filter(request_key="button:1", applied=True).count() == 1


def test_an_answered_ticket_can_be_closed_and_keeps_its_response(armed):
    assert answer(armed, when=at(8))
    assert ticket_close(ticket=armed, via=TicketVia.HELPDESK, actor="zendesk", at=at(30))
    armed.refresh_from_db()
    assert (armed.state, armed.responded_at) == (TicketState.CLOSED, at(8))
    [closed] = events(armed, TicketEventKind.CLOSED)
    assert closed.details["without_reply"] is False
    assert TicketCycle.objects.get(ticket=armed).closed_at is None  # the cycle ended with the answer


# --- waiting on the customer: pause, not reset ------------------------------------------------


def test_a_pause_keeps_each_levels_remaining_time_and_the_resume_gives_it_back(armed):
    with time_machine.travel(at(5), tick=False):
        assert ticket_pause(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(5)).changed
    armed.refresh_from_db()
    assert (armed.state, armed.waiting_since) == (TicketState.WAITING, at(5))
    assert states(armed) == ["paused"] * 4
    assert [r.paused_remaining for r in rows(armed)] == minutes(5, 15, 30, 45)
    with time_machine.travel(at(65), tick=False):
        result = ticket_resume(ticket=armed, via=TicketVia.CUSTOMER, actor="UCUSTOMER", at=at(65))
    assert result.changed
    assert states(armed) == ["pending"] * 4
    assert due(armed) == minutes(70, 80, 95, 110)  # each level its remaining time after the resume
    armed.sla.refresh_from_db()
    assert armed.sla.breach_at == at(70)  # 5 min of the 10 min target were left
    assert TicketCycle.objects.get(ticket=armed).breach_at == at(70)
    [pause] = TicketPause.objects.filter(ticket=armed)
    assert (pause.paused_at, pause.resumed_at, pause.resumed_via) == (at(5), at(65), TicketVia.CUSTOMER)
    assert pause.remaining == {"1": 300.0, "2": 900.0, "3": 1800.0, "4": 2700.0}
    resumed = events(armed, TicketEventKind.RESUMED)[0]
    assert resumed.details["paused_for"] == 3600 and resumed.details["due_times"]["1"] == at(70).isoformat()


def test_while_waiting_no_level_fires_neither_by_its_task_nor_by_the_sweeper(armed, fake_slack):
    level1 = rows(armed)[0]
    stale_version = level1.version
    ticket_pause(ticket=armed, via=TicketVia.REACTION, actor="UBOB", at=at(5))
    assert fire(level1, at=at(10), version=stale_version) == FireOutcome.STALE
    assert fire(rows(armed)[0], at=at(10)) == FireOutcome.STALE  # paused rows are not pending
    with time_machine.travel(at(120), tick=False):
        assert escalations_sweep().handled == 0
    assert fake_slack.posts(thread_ts=armed.slack_ts) == []


def test_pauses_repeat_and_the_clock_only_runs_in_between(armed):
    for start, end in ((2, 12), (14, 44)):
        ticket_pause(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(start))
        ticket_resume(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(end))
    # Paused 10 + 30 minutes: every level 40 minutes later than armed.
    assert due(armed) == minutes(50, 60, 75, 90)
    assert TicketPause.objects.filter(ticket=armed, resumed_at__isnull=False).count() == 2
    assert [e.kind for e in TicketEvent.objects.filter(ticket=armed).order_by("at", "id")][-4:] == [
        "paused", "resumed", "paused", "resumed"]


def test_a_paused_level_counts_its_remaining_time_on_the_business_clock(teams_business, engineers):
    from tickets.factories import TicketFactory, WatchedChannelFactory

    monday_0900 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    channel = WatchedChannelFactory(slack_channel_id="CTEAMS01", tier=teams_business.tier)
    ticket = TicketFactory(channel=channel, opened_at=monday_0900)
    ticket_arm(ticket=ticket, now=monday_0900)
    ticket_pause(ticket=ticket, via=TicketVia.HELPDESK, actor="zendesk",
                 at=monday_0900 + timedelta(minutes=30))
    assert rows(ticket)[0].paused_remaining == timedelta(minutes=30)  # of the 1 h of open time
    evening = datetime(2026, 11, 30, 16, 45, tzinfo=UTC)  # 17:45 Berlin: 15 open minutes left today
    ticket_resume(ticket=ticket, via=TicketVia.HELPDESK, actor="zendesk", at=evening)
    assert rows(ticket)[0].due_at == datetime(2026, 12, 1, 8, 15, tzinfo=UTC)  # Tuesday 09:15 Berlin


def test_an_answer_while_waiting_ends_the_wait_and_cancels_the_paused_levels(armed):
    ticket_pause(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(3))
    assert answer(armed, when=at(9))
    armed.refresh_from_db()
    assert (armed.state, armed.waiting_since, armed.responded_at) == (TicketState.RESPONDED, None, at(9))
    assert states(armed) == ["cancelled"] * 4
    assert TicketPause.objects.get(ticket=armed).resumed_via == TicketVia.RESPONSE


def test_a_message_from_before_the_pause_does_not_resume_it(armed):
    ticket_pause(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(5))
    result = ticket_resume(ticket=armed, via=TicketVia.CUSTOMER, actor="UCUSTOMER", at=at(4))
    assert not result.changed and "before" in result.reason
    assert states(armed) == ["paused"] * 4


# --- next-response cycles ---------------------------------------------------------------------


def test_each_next_response_cycle_has_its_own_levels_keys_and_response(next_response, armed, fake_slack):
    assert answer(armed, when=at(8))
    started = customer_writes(armed, when=at(30))
    assert (started.started, started.number) == (True, 2)
    armed.refresh_from_db()
    assert armed.state == TicketState.ARMED and armed.responded_at == at(8)  # the FIRST response stays
    assert due(armed, cycle=2) == minutes(45, 60)  # from the customer's message
    cycle = TicketCycle.objects.get(ticket=armed, number=2)
    assert (cycle.kind, cycle.started_at, cycle.breach_at, cycle.reopened) == ("next", at(30), at(50), False)

    level1 = [r for r in rows(armed) if r.cycle == 2][0]
    assert fire(level1, at=at(45)) == FireOutcome.FIRED
    assert fire(level1, at=at(46), version=level1.version) == FireOutcome.STALE
    [post] = fake_slack.posts(thread_ts=armed.slack_ts)
    assert post["metadata"]["event_payload"]["key"] == f"ticket:{armed.pk}:cycle:2:level:1"
    assert "waited 15 min" in post["text"] and "breaches in 5 min" in post["text"]  # counted from the message

    assert answer(armed, when=at(52), actor="UBOB")
    cycle.refresh_from_db()
    assert (cycle.responded_at, cycle.responded_by) == (at(52), "UBOB")
    assert states(armed, cycle=2) == ["fired", "cancelled"]

    assert customer_writes(armed, when=at(70)).number == 3
    assert due(armed, cycle=3) == minutes(85, 100)
    assert fire([r for r in rows(armed) if r.cycle == 3][0], at=at(85)) == FireOutcome.FIRED
    keys = [p["metadata"]["event_payload"]["key"] for p in fake_slack.posts(thread_ts=armed.slack_ts)]
    assert keys == [idempotency_key(ticket_id=armed.pk, level=1, cycle=2),
                    idempotency_key(ticket_id=armed.pk, level=1, cycle=3)]
    assert [e.details["cycle"] for e in events(armed, TicketEventKind.CYCLE_STARTED)] == [2, 3]


def test_one_customer_message_starts_one_cycle_however_often_it_is_seen(next_response, armed):
    answer(armed, when=at(8))
    assert customer_writes(armed, when=at(30), ts="1700.1").started
    assert customer_writes(armed, when=at(30), ts="1700.1").reason == "ticket is armed"
    answer(armed, when=at(40))
    # The same message again, after the next answer: it was answered already.
    again = customer_writes(armed, when=at(30), ts="1700.1")
    assert not again.started
    assert TicketCycle.objects.filter(ticket=armed).count() == 2


def test_a_message_written_before_the_answer_starts_no_cycle(next_response, armed):
    answer(armed, when=at(8))
    assert customer_writes(armed, when=at(7)).reason == "message from before the answer or close"
    assert TicketCycle.objects.filter(ticket=armed).count() == 1


def test_a_customer_message_after_a_close_reopens_the_ticket(next_response, armed):
    ticket_close(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(5))
    started = customer_writes(armed, when=at(90))
    assert started.started and started.reason == "reopened"
    armed.refresh_from_db()
    assert (armed.state, armed.closed_at) == (TicketState.ARMED, None)
    assert TicketCycle.objects.get(ticket=armed, number=2).reopened
    assert due(armed, cycle=2) == minutes(105, 120)


def test_without_a_next_response_ladder_a_customer_message_changes_nothing(armed):
    answer(armed, when=at(8))
    assert customer_writes(armed, when=at(30)).reason == "no next-response ladder"
    armed.refresh_from_db()
    assert armed.state == TicketState.RESPONDED


def test_a_next_response_ladder_is_the_one_the_ticket_was_armed_with(next_response, armed):
    next_response.next_steps.filter(level=1).update(delay=timedelta(minutes=1))  # edited after arming
    answer(armed, when=at(8))
    customer_writes(armed, when=at(30))
    assert due(armed, cycle=2) == minutes(45, 60)


# --- tickets that never escalate, and tickets first seen late --------------------------------


def test_an_excluded_type_is_recorded_with_a_note_and_never_armed(make_ticket):
    ticket = make_ticket(ticket_type="Feedback")
    assert ticket_arm(ticket=ticket, now=T0) == []
    ticket.refresh_from_db()
    assert ticket.state == TicketState.EXCLUDED
    assert not Escalation.objects.filter(ticket=ticket).exists()
    [note] = events(ticket, TicketEventKind.NOTE)
    assert note.details["excluded_type"] == "Feedback" and "excludes" in note.details["note"]


def test_a_policy_can_escalate_every_type(make_ticket, ladder):
    ladder.policies.update(exclude_types=[])
    ticket = make_ticket(ticket_type="Feedback")
    assert len(ticket_arm(ticket=ticket, now=T0)) == 4


def test_a_ticket_first_seen_late_posts_one_message_for_its_overdue_levels(make_ticket, engineers, thread_in,
                                                                           fake_slack):
    late = thread_in(make_ticket(slack_ts="1790001111.000100"))
    ticket_arm(ticket=late, now=at(40))  # levels 1-3 (10, 20, 35 min) are overdue
    assert states(late) == ["cancelled", "cancelled", "pending", "pending"]
    level3 = rows(late)[2]
    assert level3.late_pickup and level3.due_at == at(35)
    with time_machine.travel(at(40, ), tick=False):
        assert escalations_sweep().outcomes == {FireOutcome.FIRED: 1}
    [post] = fake_slack.posts(thread_ts=late.slack_ts)
    assert "Picked up late" in post["text"] and "levels 1–2 were already overdue" in post["text"]
    assert "<!subteam^SSUPPORT1>" in post["text"]  # the widest overdue audience
    [note] = [e for e in events(late, TicketEventKind.NOTE) if e.details.get("caught_up")]
    assert note.details["caught_up"] == [1, 2]


def test_a_ticket_armed_on_time_is_not_late(armed):
    assert not any(r.late_pickup for r in rows(armed))


# --- the thread shows the state --------------------------------------------------------------


def _message(fake_slack, ticket, ts):
    thread = fake_slack.thread(ticket.channel.slack_channel_id, ticket.slack_ts)
    return next(m for m in thread if m["ts"] == ts)


def _buttons(message) -> list[str]:
    blocks = message.get("blocks", [])
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _state_line(message) -> str:
    return " ".join(e["text"] for b in message.get("blocks", []) if b.get("block_id") == "slabuddy_state"
                    for e in b["elements"])


def updates_sent(ticket) -> int:
    """Run the task the state change queued after commit: send the ticket's thread updates."""
    return ticket_thread_updates_send(ticket_id=ticket.pk).sent


def test_every_posted_message_shows_the_state_and_its_buttons(armed, fake_slack):
    fire(rows(armed)[0], at=at(10))
    fire(rows(armed)[1], at=at(20))
    posted = [r.slack_message_ts for r in rows(armed)[:2]]
    assert _buttons(_message(fake_slack, armed, posted[0])) == ["snooze", "waiting", "close"]

    ticket_pause(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(21))
    assert updates_sent(armed) == 2
    for ts in posted:
        message = _message(fake_slack, armed, ts)
        assert "Waiting on customer since" in _state_line(message) and "<@UBOB>" in _state_line(message)
        assert _buttons(message) == ["resume", "close"]

    ticket_resume(ticket=armed, via=TicketVia.CUSTOMER, actor="UCUSTOMER", at=at(30))
    assert updates_sent(armed) == 2
    assert "Resumed" in _state_line(_message(fake_slack, armed, posted[0]))
    assert "the customer replied" in _state_line(_message(fake_slack, armed, posted[0]))
    assert _buttons(_message(fake_slack, armed, posted[1])) == ["snooze", "waiting", "close"]

    answer(armed, when=at(34))
    assert updates_sent(armed) == 2
    for ts in posted:
        message = _message(fake_slack, armed, ts)
        assert _state_line(message) == (":white_check_mark: Answered by <@UALICE> after 34 min — levels 3–4 "
                                        "cancelled.")
        assert _buttons(message) == []
        assert message["text"].startswith(":rotating_light: *Level")  # the message itself is kept
    assert len(fake_slack.calls("chat.update")) == 6  # two messages, three states, once each
    assert len(fake_slack.posts(thread_ts=armed.slack_ts)) == 2  # updated, never posted again


def test_a_thread_update_that_fails_is_retried_and_the_last_state_wins(armed, fake_slack):
    fire(rows(armed)[0], at=at(10))
    ts = rows(armed)[0].slack_message_ts
    ticket_pause(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(11))
    fake_slack.fail_next("chat.update", status=429, retry_after=3)
    assert ticket_thread_updates_send(ticket_id=armed.pk).retry == 1
    ticket_close(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(12))  # a newer state meanwhile
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=1)):
        assert thread_updates_send_pending().sent == 1
    assert "Closed by <@UBOB> with the Close button" in _state_line(_message(fake_slack, armed, ts))
    [update] = OutboxMessage.objects.filter(purpose="update")
    assert update.key == "update:" + idempotency_key(ticket_id=armed.pk, level=1)
    assert ticket_thread_updates_send(ticket_id=armed.pk).sent == 0  # nothing left to send
    assert len(fake_slack.calls("chat.update")) == 2  # the rate-limited try, then the last state


def test_a_level_claimed_before_the_pause_posts_and_then_shows_the_wait(armed, fake_slack):
    level1 = rows(armed)[0]
    with time_machine.travel(at(10), tick=False):
        claimed = firing.escalation_claim(level1, now=at(10), via="task")
        message = firing.level_message_record(claimed, ticket=armed,
                                 draft=firing.escalation_draft(claimed, ticket=armed, now=at(10)))
    ticket_pause(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(10))
    with time_machine.travel(at(10), tick=False):
        outcome = firing.claimed_level_post(claimed, ticket=armed, message=message, now=at(10))
    assert outcome == FireOutcome.FIRED
    assert updates_sent(armed) == 1
    posted = _message(fake_slack, armed, rows(armed)[0].slack_message_ts)
    assert _buttons(posted) == ["resume", "close"]


def test_a_level_whose_claimer_died_before_the_pause_is_posted_by_the_sweeper(armed, fake_slack, settings):
    level1 = rows(armed)[0]
    assert firing.escalation_claim(level1, now=at(10), via="task") is not None  # then its worker dies
    ticket_pause(ticket=armed, via=TicketVia.BUTTON, actor="UBOB", at=at(10))
    after_the_lease = at(10) + timedelta(seconds=settings.ESCALATION_CLAIM_LEASE_SECONDS + 1)
    with time_machine.travel(after_the_lease, tick=False):
        assert escalations_sweep().outcomes == {FireOutcome.FIRED: 1}
    assert updates_sent(armed) == 1
    assert _buttons(_message(fake_slack, armed, rows(armed)[0].slack_message_ts)) == ["resume", "close"]
    assert states(armed) == ["fired", "paused", "paused", "paused"]
