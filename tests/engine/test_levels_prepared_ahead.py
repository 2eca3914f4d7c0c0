"""A level's task comes a little early (ESCALATION_PREPARE_AHEAD_MS): it reads the level and drafts
its message, then waits for the due moment. Nothing is claimed, recorded or posted before it, and
whatever happens to the ticket while the task waits (an answer, a snooze) wins."""

from datetime import timedelta

import pytest

from escalation import firing, pacing, queueing
from escalation.arming import ticket_arm
from escalation.disarming import ticket_mark_responded
from escalation.outcomes import FireOutcome
from escalation.snooze import ticket_snooze
from escalation.transitions import EscalationState
from tests.support.engine import fire, rows
from tests.support.times import T0
from tickets.models import ResponsePath

DUE = T0 + timedelta(minutes=10)  # level 1 of the ladder


@pytest.fixture
def waits(monkeypatch):
    """The task's wait for the due moment, recorded instead of slept; ``during`` runs in it."""
    seen: list[float] = []
    during = []

    def sleep(seconds: float) -> None:
        seen.append(seconds)
        for step in during:
            step()

    monkeypatch.setattr(firing.time, "sleep", sleep)
    return seen, during


@pytest.fixture
def armed(make_ticket, engineers, thread_in, fake_slack):
    """A ticket armed at T0, its thread in Slack: its level 1 is due at DUE."""
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    return ticket


@pytest.fixture
def sent(monkeypatch):
    """The delayed tasks queueing publishes: (args, eta), at once instead of after commit."""
    tasks = []
    monkeypatch.setattr(queueing, "task_send_on_commit",
                        lambda name, **options: tasks.append((options["args"], options["eta"])))
    return tasks


def test_a_task_that_comes_ahead_drafts_then_claims_and_posts_only_at_the_due_moment(
    armed, fake_slack, waits, settings
):
    settings.ESCALATION_PREPARE_AHEAD_MS = 100
    seen, during = waits
    ticket = armed
    level1 = rows(ticket)[0]
    at_the_wait = {}

    def look():  # what the world saw while the task waited: the level untouched, nothing posted
        level1.refresh_from_db()
        at_the_wait.update(state=level1.state, posts=len(fake_slack.calls("chat.postMessage")))

    during.append(look)
    assert fire(level1, at=DUE - timedelta(milliseconds=60)) == FireOutcome.FIRED
    assert len(seen) == 1 and 0 < seen[0] <= 0.06
    assert at_the_wait == {"state": EscalationState.PENDING, "posts": 0}
    level1.refresh_from_db()
    assert level1.state == EscalationState.FIRED
    assert level1.fired_at == DUE  # fired at its moment, not when the task came
    assert len(fake_slack.calls("chat.postMessage")) == 1


def test_an_answer_while_the_task_waits_wins_and_nothing_is_posted(
    armed, fake_slack, waits
):
    _, during = waits
    ticket = armed
    level1 = rows(ticket)[0]
    during.append(lambda: ticket_mark_responded(ticket=ticket, path=ResponsePath.SLACK_THREAD,
                                                actor="UALICE", at=DUE - timedelta(milliseconds=30)))
    assert fire(level1, at=DUE - timedelta(milliseconds=60)) == FireOutcome.LOST
    level1.refresh_from_db()
    assert level1.state == EscalationState.CANCELLED
    assert fake_slack.calls("chat.postMessage") == []


def test_a_snooze_while_the_task_waits_wins_and_the_level_waits_for_its_new_time(
    armed, fake_slack, waits
):
    _, during = waits
    ticket = armed
    level1 = rows(ticket)[0]
    snoozed_at = DUE - timedelta(milliseconds=30)
    during.append(lambda: ticket_snooze(ticket=ticket, request_key="Ev1", actor="UALICE", now=snoozed_at))
    assert fire(level1, at=DUE - timedelta(milliseconds=60)) == FireOutcome.LOST
    level1.refresh_from_db()
    assert level1.state == EscalationState.PENDING and level1.due_at > DUE
    assert fake_slack.calls("chat.postMessage") == []


@pytest.mark.parametrize(("lead_ms", "early"), [(100, timedelta(seconds=2)), (0, timedelta(milliseconds=60))],
                         ids=["lead-100ms", "no-lead"])
def test_a_task_earlier_than_the_lead_is_queued_again_to_come_the_lead_before_its_moment(
    armed, fake_slack, waits, sent, settings, lead_ms, early
):
    settings.ESCALATION_PREPARE_AHEAD_MS = lead_ms
    seen, _ = waits
    ticket = armed
    level1 = rows(ticket)[0]
    assert sent == []  # level 1 is beyond the horizon at arming
    assert fire(level1, at=DUE - early) == FireOutcome.EARLY
    assert seen == []  # it did not wait: it holds no worker meanwhile
    (args, eta), = sent
    assert args[0] == level1.pk and args[2] == DUE.timestamp()  # the due time it carries is its own
    assert eta == DUE - timedelta(milliseconds=lead_ms)
    assert fire(level1, at=DUE) == FireOutcome.FIRED


def test_a_task_that_comes_ahead_asks_its_channel_turn_for_the_due_moment(
    armed, fake_slack, waits, monkeypatch
):
    asked = []
    monkeypatch.setattr(pacing, "channel_turn", lambda *, channel, key, now=None: asked.append(now) or 0.0)
    ticket = armed
    assert fire(rows(ticket)[0], at=DUE - timedelta(milliseconds=60)) == FireOutcome.FIRED
    assert asked == [DUE.timestamp()]  # its post's moment, not the task's arrival
