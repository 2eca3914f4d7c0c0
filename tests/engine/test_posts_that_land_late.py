"""A post that Slack carries out after our client gave up (a timeout, a dropped connection, a 5xx
after the work was done) shows exactly once: the retry waits, counted from when the failure was
seen, until the first request can no longer land, then looks in the thread; a post that followed
such an attempt gets a second look, and a later message with the same key is deleted.

Slack is a real HTTP stand-in (base/fake_slack.py); time is frozen around the engine's calls, and
the stand-in moves the frozen clock to say how long a call took. Nothing asserts on timings."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from base.fake_slack import BOT_USER_ID, Call, FakeSlack
from base.models import OutboxMessage, OutboxStatus
from base.outbox import METADATA_EVENT_TYPE
from escalation.arming import ticket_arm
from escalation.duplicates import outbox_duplicate_check_one, outbox_duplicates_check_due
from escalation.firing import escalation_fire, idempotency_key
from escalation.sweeping import escalations_sweep
from escalation.transitions import EscalationState
from ops.testing.worker import wait_for
from tests.support.engine import fire, rows
from tests.support.outbox import outbox_of
from tests.support.times import T0
from tickets.models import TicketEvent, TicketEventKind

DUE = T0 + timedelta(minutes=10)


@pytest.fixture
def short_timeouts(settings):
    """A 1 s client timeout (the stand-in holds posts 1.5 s), a 20 s wait, a 30 s second look."""
    settings.SLACK_TIMEOUT_SECONDS = 1
    settings.SLACK_AMBIGUOUS_WAIT_SECONDS = 20
    settings.SLACK_DUPLICATE_CHECK_SECONDS = 30
    return settings


def keyed(fake: FakeSlack, key: str) -> list[dict]:
    """The bot's messages in Slack now that carry ``key``."""
    return [m for m in fake.posts() if (m.get("metadata") or {}).get("event_payload", {}).get("key") == key]


def landed(fake: FakeSlack) -> list:
    """Every chat.postMessage Slack carried out (a late one too), whatever the client heard."""
    return [c for c in fake.calls("chat.postMessage") if c.status == 200]


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


@pytest.mark.parametrize("fault", [{"status": 503}, {"drop": True}], ids=["held-then-503", "dropped"])
def test_a_post_that_lands_after_the_client_gave_up_shows_once_with_the_sweeper_running(
    make_ticket, engineers, thread_in, fake_slack, short_timeouts, fault
):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    hold = 1.5 if fault.get("status") else 0.7  # beyond the 1 s timeout, or after the drop
    fake_slack.land_late("chat.postMessage", hold=hold, **fault)
    assert fire(rows(ticket)[0], at=DUE) == "retry"
    level1 = rows(ticket)[0]
    assert level1.state == EscalationState.PENDING
    # The sweeper runs while Slack is still finishing the first request: it must not post.
    for later in (3, 10, 19):
        with time_machine.travel(DUE + seconds(later), tick=False):
            assert escalations_sweep().handled == 0
    wait_for(lambda: landed(fake_slack), timeout=10, message="the first request to land")
    with time_machine.travel(level1.not_before, tick=False):
        assert escalations_sweep().handled == 1  # it looks, finds the first post, and settles
    key = idempotency_key(ticket_id=ticket.pk, level=1)
    [visible] = keyed(fake_slack, key)
    assert len(landed(fake_slack)) == 1
    level1.refresh_from_db()
    assert (level1.state, level1.slack_message_ts) == (EscalationState.FIRED, visible["ts"])
    [event] = TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.LEVEL_FIRED)
    assert event.details["recovered"] is True
    # The second look finds nothing to delete.
    with time_machine.travel(outbox_of(level1).verify_at, tick=False):
        assert outbox_duplicates_check_due() == {"clean": 1}
    assert fake_slack.deleted() == [] and len(keyed(fake_slack, key)) == 1


class SlowSlack(FakeSlack):
    """Answers chat.postMessage with a 503 after ``took`` seconds on the frozen clock."""

    def __init__(self, traveller, took: float):
        super().__init__()
        self.traveller, self.took = traveller, took

    def handle(self, method, args, token):
        if method == "chat.postMessage" and not self.calls(method):
            self.traveller.shift(seconds(self.took))  # the call took this long
            with self.lock:
                self.state.calls.append(Call(method, args, 0.0, 503))
            return 503, {"ok": False, "error": "service_unavailable"}, {}
        return super().handle(method, args, token)


def test_the_wait_counts_from_when_the_failure_was_seen_not_from_before_the_call(
    make_ticket, engineers, settings
):
    settings.SLACK_AMBIGUOUS_WAIT_SECONDS = 20
    with time_machine.travel(DUE, tick=False) as traveller, SlowSlack(traveller, took=12) as slack:
        settings.SLACK_API_BASE_URL = slack.base_url
        ticket = make_ticket()
        slack.add_message(ticket.channel.slack_channel_id, ticket.text, ts=ticket.slack_ts, user="UCUSTOMER")
        ticket_arm(ticket=ticket, now=T0)
        row = rows(ticket)[0]
        assert escalation_fire(escalation_id=row.pk, version=row.version) == "retry"
    level1, message = rows(ticket)[0], OutboxMessage.objects.get()
    seen = DUE + seconds(12)
    assert message.status == OutboxStatus.SENDING
    assert message.not_before == seen + seconds(20)  # not DUE + 20 s: the call itself took 12 s
    assert level1.not_before == seen + seconds(20)


def _post_after_a_5xx(ticket, fake_slack, settings):
    """Level 1 fails with a 500 (Slack did not post it), then posts on its retry after the wait."""
    fake_slack.fail_next("chat.postMessage", status=500)
    assert fire(rows(ticket)[0], at=DUE) == "retry"
    retry_at = rows(ticket)[0].not_before
    with time_machine.travel(retry_at, tick=False):
        assert escalations_sweep().handled == 1
    level1 = rows(ticket)[0]
    assert level1.state == EscalationState.FIRED
    return level1


def _land_late(fake_slack, ticket, *, ts: str | None = None) -> dict:
    """The first (500) request lands after all, after the retry looked: a second message, same key."""
    key = idempotency_key(ticket_id=ticket.pk, level=1)
    return fake_slack.add_message(
        ticket.channel.slack_channel_id, "level 1 (late)", ts=ts, thread_ts=ticket.slack_ts, user=BOT_USER_ID,
        metadata={"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": key, "ticket": ticket.pk,
                                                                       "level": 1}},
    )


def test_a_later_message_with_the_same_key_is_deleted_and_the_timeline_says_so(
    make_ticket, engineers, thread_in, fake_slack, settings
):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    level1 = _post_after_a_5xx(ticket, fake_slack, settings)
    ours = level1.slack_message_ts
    late = _land_late(fake_slack, ticket)
    message = outbox_of(level1)
    assert message.verify_at is not None
    with time_machine.travel(message.verify_at - seconds(1), tick=False):
        assert outbox_duplicates_check_due() == {}  # not due yet
    with time_machine.travel(message.verify_at, tick=False):
        assert outbox_duplicates_check_due() == {"deleted": 1}
    assert [m["ts"] for m in fake_slack.deleted()] == [late["ts"]]
    assert [m["ts"] for m in keyed(fake_slack, message.key)] == [ours]
    [event] = TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.DUPLICATE_DELETED)
    assert (event.level, event.details["kept_ts"], event.details["deleted_ts"]) == (1, ours, [late["ts"]])
    message.refresh_from_db()
    assert (message.verify_at, message.slack_ts) == (None, ours)
    # Done: a later look finds nothing due.
    with time_machine.travel(DUE + timedelta(hours=1), tick=False):
        assert outbox_duplicates_check_due() == {}


def test_when_the_late_message_is_the_earlier_one_ours_is_deleted_and_the_level_points_at_the_first(
    make_ticket, engineers, thread_in, fake_slack, settings
):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    level1 = _post_after_a_5xx(ticket, fake_slack, settings)
    ours = level1.slack_message_ts
    first = _land_late(fake_slack, ticket, ts=f"{float(ours) - 1:.6f}")  # Slack read it before ours
    message = outbox_of(level1)
    with time_machine.travel(message.verify_at, tick=False):
        check = outbox_duplicate_check_one(message_id=message.pk)
    assert (check.kept_ts, check.deleted) == (first["ts"], (ours,))
    assert [m["ts"] for m in keyed(fake_slack, message.key)] == [first["ts"]]
    level1.refresh_from_db()
    assert level1.slack_message_ts == first["ts"]
    assert OutboxMessage.objects.get(pk=message.pk).slack_ts == first["ts"]


def test_a_delete_that_fails_is_retried_and_the_first_message_is_never_deleted(
    make_ticket, engineers, thread_in, fake_slack, settings
):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    level1 = _post_after_a_5xx(ticket, fake_slack, settings)
    ours = level1.slack_message_ts
    late = _land_late(fake_slack, ticket)
    message = outbox_of(level1)
    fake_slack.fail_next("chat.delete", status=500)
    with time_machine.travel(message.verify_at, tick=False):
        assert outbox_duplicates_check_due() == {"retry": 1}
    assert fake_slack.deleted() == [] and len(keyed(fake_slack, message.key)) == 2
    assert not TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.DUPLICATE_DELETED).exists()
    message.refresh_from_db()
    assert message.verify_at is not None and "chat.delete" in message.last_error
    fake_slack.fail_next("chat.delete", error="ratelimited", status=429)
    with time_machine.travel(message.verify_at, tick=False):
        assert outbox_duplicates_check_due() == {"retry": 1}
    message.refresh_from_db()
    with time_machine.travel(message.verify_at, tick=False):
        assert outbox_duplicates_check_due() == {"deleted": 1}
    assert [m["ts"] for m in fake_slack.deleted()] == [late["ts"]]
    assert [m["ts"] for m in keyed(fake_slack, message.key)] == [ours]
    assert all(c.args["ts"] != ours for c in fake_slack.calls("chat.delete"))
    assert TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.DUPLICATE_DELETED).count() == 1


def test_a_post_without_an_ambiguous_attempt_gets_no_second_look(
    make_ticket, engineers, thread_in, fake_slack
):
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    assert fire(rows(ticket)[0], at=DUE) == "fired"
    assert outbox_of(rows(ticket)[0]).verify_at is None
