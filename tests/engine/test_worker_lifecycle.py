"""The ticket lifecycle against a real Celery worker, the real broker and the fake Slack, through
the signed endpoints: waiting on the customer, resuming, answers, next-response cycles, closes of
every kind, excluded types, edits; and a next-response cycle that survives a broker flush and a
worker killed mid-post. Slack deliveries are sent twice (the same event id, and the same message
under a new event id) and change nothing more.

Nothing here time-travels and no assertion is about how long anything took: due times are
compared with the rows, posts are counted by their outbox keys.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from base.fake_slack import FakeSlack
from calendars.factories import EngineerFactory
from calendars.targets import TargetKind
from escalation.arming import ticket_arm
from escalation.cycles import ticket_next_response_start
from escalation.disarming import ticket_mark_responded
from escalation.factories import EscalationStepFactory, NextResponseStepFactory
from escalation.firing import idempotency_key
from escalation.models import Escalation, SlaPolicy, TicketCycle, TicketPause
from escalation.tasks import escalations_sweep
from escalation.transitions import EscalationState
from ops.testing.worker import purge_broker, wait_for
from slackbot.models import SlackInbound
from slackbot.parsing import ts_to_datetime
from tests.support.slack_requests import (
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    button_payload,
    event_callback,
    post_event,
    post_hook,
    post_interaction,
)
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory
from tickets.models import ResponseMode, Ticket, TicketState

pytestmark = [pytest.mark.worker, pytest.mark.slow]

WORKER_ENV = {
    "ESCALATION_HORIZON_SECONDS": "30",
    "CELERY_TASK_TIME_LIMIT": "6",
    "CELERY_TASK_SOFT_TIME_LIMIT": "5",
    "ESCALATION_CLAIM_LEASE_SECONDS": "10",  # > the timeout + 5: a batch of overdue levels posts
    # A post whose sender died is taken over after its timeout plus the ambiguous wait: keep that
    # shorter than the claim's lease, as the defaults do (10 + 30 < 130).
    "SLACK_AMBIGUOUS_WAIT_SECONDS": "3",
    "SLACK_TIMEOUT_SECONDS": "2",
}
CHANNEL = "CSUPPORT1"
_seq = iter(range(1, 10**6))


def exact_ts(seconds_ago: float = 0) -> str:
    """A Slack ts for now (microseconds, never in the future)."""
    return f"{time.time() - seconds_ago:.6f}"


@pytest.fixture
def lifecycle(transactional_db, settings):
    """A tier whose levels fall due seconds after a ticket opens (2 s, 6 s, 40 s), and whose
    next-response ladder answers a customer who writes again (2 s, 4 s); Ana on the roster."""
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.HELPDESK_WEBHOOK_SECRET = WEBHOOK_SECRET
    EngineerFactory(name="Ana", slack_user_id="UENG1")
    tier = TierFactory(name="Lifecycle")
    policy, _ = SlaPolicy.objects.get_or_create(tier=tier, priority="", defaults={"snooze_minutes": 1})
    for level, seconds in ((1, 2), (2, 6), (3, 40)):
        EscalationStepFactory(policy=policy, level=level, delay=timedelta(seconds=seconds),
                              target_kind=TargetKind.ON_SHIFT)
    for level, seconds in ((1, 2), (2, 4)):
        NextResponseStepFactory(policy=policy, level=level, delay=timedelta(seconds=seconds),
                                target_kind=TargetKind.ON_SHIFT)
    WatchedChannelFactory(slack_channel_id=CHANNEL, name="support-acme", tier=tier)
    return tier


def send(client, event: dict, *, event_id: str | None = None) -> str:
    event_id = event_id or f"EvLife{next(_seq)}"
    response = post_event(client, event_callback({"channel": CHANNEL, **event}, event_id=event_id))
    assert response.status_code == 200, response.content
    return event_id


def processed() -> bool:
    return not SlackInbound.objects.filter(state="pending").exists()


def helpdesk_post(fake: FakeSlack, *, text="*Ticket ID*: 4711\n*Ticket priority*: High", channel=CHANNEL,
                  **fields) -> dict:
    return fake.add_message(channel, text, ts=exact_ts(), subtype="bot_message", bot_id="BZENDESK", **fields)


def thread_reply(fake: FakeSlack, ticket: Ticket, user: str, text: str) -> dict:
    return fake.add_message(CHANNEL, text, ts=exact_ts(), user=user, thread_ts=ticket.slack_ts)


def level(ticket: Ticket, number: int, cycle: int = 1) -> Escalation:
    return Escalation.objects.get(ticket=ticket, cycle=cycle, level=number)


def fired(ticket: Ticket, number: int, cycle: int = 1) -> bool:
    return level(ticket, number, cycle).state == EscalationState.FIRED


def keys_posted(fake: FakeSlack, ticket: Ticket | None = None) -> list[str]:
    posts = fake.posts(thread_ts=ticket.slack_ts) if ticket else fake.posts()
    return [p["metadata"]["event_payload"]["key"] for p in posts if p.get("metadata")]


def state_line(fake: FakeSlack, ts: str) -> str:
    message = next(m for m in fake.state.messages[CHANNEL] if m["ts"] == ts)
    return " ".join(e["text"] for b in message.get("blocks") or [] if b.get("block_id") == "slabuddy_state"
                    for e in b["elements"])


def sweep_and_wait(worker) -> None:
    """Run beat's sweeper once on the worker and wait until it is done."""
    done = worker.log().count("escalations_sweep[") + 2  # received, succeeded
    escalations_sweep.delay()
    wait_for(lambda: worker.log().count("escalations_sweep[") >= done, timeout=30, message="a sweep")


def test_waiting_resume_answer_and_next_response_cycles_with_a_worker(client, fake_slack,
                                                                      celery_worker_factory, lifecycle):
    worker = celery_worker_factory(**WORKER_ENV)
    message = helpdesk_post(fake_slack)
    first_id = send(client, message)
    send(client, message, event_id=first_id)  # Slack's retry
    wait_for(lambda: Ticket.objects.filter(slack_ts=message["ts"]).exists() and processed(), timeout=30,
             message="the ticket")
    ticket = Ticket.objects.get()
    wait_for(lambda: fired(ticket, 1), timeout=30, message="level 1")
    posted = fake_slack.posts(thread_ts=ticket.slack_ts)[0]

    # Waiting on the customer, from the button on level 1's message: pressed twice (one press and
    # Slack's redelivery of it).
    press = button_payload(ticket, posted, user="UENG1", action_id="waiting")
    post_interaction(client, press)
    post_interaction(client, press)
    wait_for(lambda: Ticket.objects.get(pk=ticket.pk).state == TicketState.WAITING, timeout=30,
             message="waiting")
    remaining = level(ticket, 2).paused_remaining
    assert level(ticket, 2).state == EscalationState.PAUSED
    assert timedelta(0) < remaining < timedelta(seconds=6)
    wait_for(lambda: "Waiting on customer since" in state_line(fake_slack, posted["ts"]), timeout=30,
             message="level 1's message shows the wait")
    # Level 2's own due time passes while waiting: neither its (revoked) task nor the sweeper posts it.
    armed_due = ts_to_datetime(ticket.slack_ts) + timedelta(seconds=6)
    wait_for(lambda: timezone.now() > armed_due + timedelta(seconds=1), timeout=30, message="level 2 overdue")
    sweep_and_wait(worker)
    assert keys_posted(fake_slack, ticket) == [idempotency_key(ticket_id=ticket.pk, level=1)]
    assert level(ticket, 2).state == EscalationState.PAUSED

    # The customer writes: the clock runs again, level 2 exactly its remaining time after the resume.
    customer = thread_reply(fake_slack, ticket, "UCUSTOMER", "Here are the logs you asked for")
    send(client, customer)
    send(client, customer)  # the same message under a new event id
    wait_for(lambda: fired(ticket, 2), timeout=30, message="level 2 after the resume")
    [pause] = TicketPause.objects.filter(ticket=ticket)
    assert pause.resumed_at == ts_to_datetime(customer["ts"]) and pause.resumed_via == "customer"
    level2 = level(ticket, 2)
    assert level2.due_at == pause.resumed_at + remaining
    assert level2.fired_at >= level2.due_at
    wait_for(lambda: "Resumed" in state_line(fake_slack, posted["ts"]), timeout=30, message="resumed shown")

    # Ana answers: level 3 is cancelled, and both messages say who answered.
    send(client, thread_reply(fake_slack, ticket, "UENG1", "Fixed: a bad deploy, rolled back"))
    wait_for(lambda: Ticket.objects.get(pk=ticket.pk).state == TicketState.RESPONDED, timeout=30,
             message="answered")
    assert level(ticket, 3).state == EscalationState.CANCELLED
    for row in (level(ticket, 1), level(ticket, 2)):
        wait_for(lambda row=row: "Answered by <@UENG1>" in state_line(fake_slack, row.slack_message_ts),
                 timeout=30, message=f"level {row.level} shows the answer")

    # The customer follows up: a next-response cycle, whose levels each post exactly once.
    follow_up = thread_reply(fake_slack, ticket, "UCUSTOMER", "It is broken again since noon")
    send(client, follow_up)
    cycle_2 = Escalation.objects.filter(ticket=ticket, cycle=2)
    wait_for(lambda: cycle_2.filter(state="fired").count() == 2, timeout=30,
             message="both next-response levels")
    send(client, follow_up)  # again, under a new event id: no third cycle
    send(client, thread_reply(fake_slack, ticket, "UENG1", "Rolled back again, and fixed for good"))
    wait_for(lambda: Ticket.objects.get(pk=ticket.pk).state == TicketState.RESPONDED and processed(),
             timeout=30, message="the next response")
    assert list(TicketCycle.objects.filter(ticket=ticket).values_list("number", "responded_by")) == [
        (1, "UENG1"), (2, "UENG1")]
    sweep_and_wait(worker)
    assert sorted(keys_posted(fake_slack, ticket)) == sorted(
        idempotency_key(ticket_id=ticket.pk, level=n, cycle=c) for c, n in ((1, 1), (1, 2), (2, 1), (2, 2)))
    assert "Traceback" not in worker.log()


def test_closed_excluded_and_edited_tickets_with_a_worker(client, fake_slack, celery_worker_factory,
                                                           lifecycle):
    worker = celery_worker_factory(**WORKER_ENV)
    WatchedChannelFactory(slack_channel_id="CZENDESK1", tier=lifecycle, response_mode=ResponseMode.ZENDESK)
    by_reaction = helpdesk_post(fake_slack, text="*Ticket ID*: 1\n*Type*: Incident")
    by_deletion = helpdesk_post(fake_slack, text="*Ticket ID*: 2")
    by_helpdesk = helpdesk_post(fake_slack, text="*Ticket ID*: 3", channel="CZENDESK1")
    feedback = helpdesk_post(fake_slack, text="*Ticket ID*: 4\n*Type*: Feedback")
    before_edit = helpdesk_post(fake_slack, text="New request from Acme (details follow)")
    for message in (by_reaction, by_deletion, feedback, before_edit):
        send(client, message)
    send(client, {**by_helpdesk, "channel": "CZENDESK1"})
    edit = {"type": "message", "subtype": "message_changed", "hidden": True, "ts": exact_ts(),
            "message": {**before_edit, "text": before_edit["text"] + "\n*Ticket ID*: 5"},
            "previous_message": before_edit}
    send(client, edit)
    send(client, edit)  # the same edit under a new event id
    wait_for(lambda: Ticket.objects.count() == 5 and processed(), timeout=30, message="five tickets")
    reaction, deleted, helpdesk, excluded, edited = (Ticket.objects.get(slack_ts=m["ts"]) for m in (
        by_reaction, by_deletion, by_helpdesk, feedback, before_edit))
    assert excluded.state == TicketState.EXCLUDED and not excluded.escalations.exists()
    assert edited.opened_at == ts_to_datetime(before_edit["ts"]) and edited.state == TicketState.ARMED

    wait_for(lambda: fired(reaction, 1) and fired(deleted, 1) and fired(helpdesk, 1) and fired(edited, 1),
             timeout=30, message="level 1 of every armed ticket")
    reacted = {"type": "reaction_added", "user": "UENG1", "reaction": "white_check_mark",
               "item": {"type": "message", "channel": CHANNEL, "ts": reaction.slack_ts},
               "event_ts": exact_ts()}
    send(client, reacted)
    send(client, reacted)  # the same reaction under a new event id
    send(client, {"type": "message", "subtype": "message_deleted", "hidden": True, "ts": exact_ts(),
                  "deleted_ts": deleted.slack_ts, "previous_message": by_deletion})
    assert post_hook(client, "zendesk", {"ticket_id": "3", "status": "pending"}).status_code == 200
    assert Ticket.objects.get(pk=helpdesk.pk).state == TicketState.WAITING
    assert post_hook(client, "zendesk", {"ticket_id": "3", "status": "solved"}).status_code == 200
    wait_for(lambda: all(Ticket.objects.get(pk=t.pk).state == TicketState.CLOSED
                         for t in (reaction, deleted, helpdesk)), timeout=30, message="three closes")
    assert [Ticket.objects.get(pk=t.pk).closed_via for t in (reaction, deleted, helpdesk)] == [
        "reaction", "deleted", "helpdesk"]

    # Past every level 2's due time, the sweeper finds nothing of the closed tickets to fire.
    latest = max(ts_to_datetime(t.slack_ts) for t in (reaction, deleted, helpdesk, edited))
    wait_for(lambda: timezone.now() > latest + timedelta(seconds=7), timeout=30, message="levels 2 overdue")
    sweep_and_wait(worker)
    for ticket in (reaction, deleted, helpdesk):
        assert keys_posted(fake_slack, ticket) == [idempotency_key(ticket_id=ticket.pk, level=1)]
        assert set(ticket.escalations.filter(level__gt=1).values_list("state", flat=True)) == {"cancelled"}
    wait_for(lambda: "Closed by <@UENG1> with a reaction" in state_line(
        fake_slack, level(reaction, 1).slack_message_ts), timeout=30, message="the close shown in the thread")
    assert keys_posted(fake_slack, edited) == [idempotency_key(ticket_id=edited.pk, level=n) for n in (1, 2)]
    assert keys_posted(fake_slack, excluded) == []
    assert "Traceback" not in worker.log()


class BlockingSlack(FakeSlack):
    """Holds the first post of a next-response cycle until released, then accepts it."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self._blocked = False

    def handle(self, method, args, token):
        key = str(args.get("metadata") or "")
        if method == "chat.postMessage" and ":cycle:2:" in key and not self._blocked:
            self._blocked = True
            self.entered.set()
            self.release.wait(30)
        return super().handle(method, args, token)


def test_a_next_response_cycle_survives_a_broker_flush_and_a_killed_worker(settings, celery_worker_factory,
                                                                          lifecycle):
    with BlockingSlack() as fake:
        settings.SLACK_API_BASE_URL = fake.base_url
        channel = WatchedChannelFactory(slack_channel_id=CHANNEL)
        ticket = TicketFactory(channel=channel, slack_ts=exact_ts(), opened_at=timezone.now())
        fake.add_message(CHANNEL, ticket.text, ts=ticket.slack_ts, user="UCUSTOMER")
        ticket_arm(ticket=ticket)
        assert ticket_mark_responded(ticket=ticket, path="slack_thread", actor="UENG1", at=timezone.now())
        worker = celery_worker_factory(**WORKER_ENV)
        started = ticket_next_response_start(ticket=ticket, request_key="message:C:1", message_ts=exact_ts(),
                                             actor="UCUSTOMER", at=timezone.now())
        assert started.number == 2
        assert fake.entered.wait(30), "next-response level 1 never reached Slack"
        assert level(ticket, 1, cycle=2).state == EscalationState.FIRING
        worker.kill()  # SIGKILL while Slack is taking the post...
        fake.release.set()  # ...which Slack then accepts: the worker never learnt its ts
        wait_for(lambda: len(fake.posts()) == 1, timeout=10, message="the accepted post")
        purge_broker()  # and the broker loses level 2's delayed task

        replacement = celery_worker_factory(**WORKER_ENV)

        def swept_all() -> bool:
            cycle_2 = Escalation.objects.filter(ticket=ticket, cycle=2)
            if all(r.state == EscalationState.FIRED for r in cycle_2):
                return True
            escalations_sweep.delay()  # beat's job, every second here
            time.sleep(1)
            return False

        wait_for(swept_all, timeout=60, interval=0, message="both next-response levels")
        keys = keys_posted(fake)
        assert sorted(keys) == [idempotency_key(ticket_id=ticket.pk, level=n, cycle=2) for n in (1, 2)]
        levels_posted = [c.args["metadata"]["event_payload"]["level"] for c in fake.calls("chat.postMessage")]
        assert levels_posted.count(1) == 1
        assert level(ticket, 1, cycle=2).slack_message_ts == fake.posts()[0]["ts"]  # found, not posted again
        assert "Traceback" not in replacement.log()
