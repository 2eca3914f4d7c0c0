"""Replay under the very policies the engine used reproduces, ticket by ticket, what the engine did:
which levels fired, whom they notified, which cycles breached. A stricter ladder fires more on the
same tickets, a looser one fewer. The tickets here are driven through the real engine (arming, the
sweeper firing levels, snoozes, waits, answers, closes, next-response cycles) with a moving clock."""

from datetime import timedelta

import pytest
import time_machine
import yaml

from calendars.models import Engineer, OverrideKind, RosterOverride
from calendars.resolve import RosterHistory
from escalation.arming import ticket_arm
from escalation.closing import ticket_close
from escalation.cycles import ticket_next_response_start
from escalation.disarming import ticket_mark_responded
from escalation.models import Escalation
from escalation.outcomes import FireOutcome
from escalation.pausing import ticket_pause, ticket_resume
from escalation.sla_config_schema import duration_parse
from escalation.snooze import ticket_snooze
from escalation.transitions import EscalationState
from ops.sla_config.exporting import config_dump, config_export
from reports.replay.policies import PolicyBook
from reports.replay.policy_file import policy_file_read
from reports.replay.running import outcome_differs, replay_run
from reports.replay.script import scripts_load
from reports.replay.simulate import ticket_replay
from tests.support.engine import fire
from tests.support.times import T0
from tickets.models import TicketVia

pytestmark = pytest.mark.django_db

END = T0 + timedelta(hours=4)


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


def _answer(ticket, when):
    ticket_mark_responded(ticket=ticket, path="slack_thread", actor="UALICE", at=when)


def _snooze(ticket, when):
    ticket_snooze(ticket=ticket, request_key=f"snooze:{ticket.pk}:{when.timestamp()}", actor="UBOB", now=when)


def _pause(ticket, when):
    ticket_pause(ticket=ticket, via=TicketVia.BUTTON, actor="UBOB", at=when, now=when)


def _resume(ticket, when):
    ticket_resume(ticket=ticket, via=TicketVia.CUSTOMER, actor="UCUSTOMER", at=when, now=when)


def _close(ticket, when):
    ticket_close(ticket=ticket, via=TicketVia.REACTION, actor="UBOB", at=when, now=when)


def _customer(ticket, when):
    ticket_next_response_start(ticket=ticket, request_key=f"message:{ticket.pk}:{when.timestamp()}",
                               message_ts=f"{when.timestamp():.6f}", actor="UCUSTOMER", at=when, now=when)


@pytest.fixture
def history(make_ticket, engineers, next_response, thread_in, fake_slack):
    """Seven tickets lived through the engine, minute by minute, with Bob off shift from 00:40:
    each level fired by its task when due, snoozes, waits, answers, closes and customer messages
    through the engine's services."""
    bob = Engineer.objects.get(slack_user_id="UBOB")
    RosterOverride.objects.create(engineer=bob, kind=OverrideKind.OFF_SHIFT, starts_at=at(40))
    plans = {
        "answered late": (0, "normal", [(25, _answer)]),
        "snoozed": (1, "normal", [(5, _snooze), (46, _answer)]),
        "waited on the customer": (2, "normal", [(8, _pause), (30, _resume), (58, _answer)]),
        "closed without a reply": (3, "normal", [(15, _close)]),
        "answered, then the customer wrote again": (4, "normal", [(3, _answer), (60, _customer),
                                                                  (99, _answer)]),
        "closed, then reopened": (5, "normal", [(12, _answer), (20, _close), (70, _customer)]),
        "urgent, never answered": (6, "urgent", []),
    }
    tickets, actions = {}, []
    for name, (offset, priority, steps) in plans.items():
        ticket = thread_in(make_ticket(opened_at=at(offset), priority=priority, text=name,
                                       slack_ts=f"1700000{offset}.0001"))
        with time_machine.travel(at(offset), tick=False):
            ticket_arm(ticket=ticket, now=at(offset))
        tickets[name] = ticket
        actions += [(offset + minute, ticket, act) for minute, act in steps]
    for minute in range(int((END - T0).total_seconds() // 60)):
        due = Escalation.objects.filter(state=EscalationState.PENDING, due_at__lte=at(minute))
        for row in due.order_by("due_at"):  # each level's delayed task runs when it is due
            assert fire(row, at=at(minute)) == FireOutcome.FIRED
        with time_machine.travel(at(minute), tick=False):
            for when, ticket, act in actions:
                if when == minute:
                    ticket.refresh_from_db()
                    act(ticket, at(minute))
    return tickets


def _identical():
    return policy_file_read(config_dump(config_export()))


def _scaled(factor: float):
    document = config_export()
    for tier in document["tiers"]:
        for policy in tier.get("policies", []):
            later = policy.get("next_response")
            ladders = [policy["steps"]] + ([later["steps"]] if later else [])
            for steps in ladders:
                for step in steps:
                    minutes = policy_minutes(step["after"]) * factor
                    step["after"] = f"{int(minutes)}m"
            policy.pop("first_response_target", None)
            if policy.get("next_response"):
                policy["next_response"].pop("target", None)
    return policy_file_read(yaml.safe_dump(document))


def policy_minutes(text: str) -> float:
    return duration_parse(text).total_seconds() / 60


def test_the_identical_policy_reproduces_every_ticket(history):
    loaded = scripts_load(since=T0, until=END, now=END)
    report = replay_run(since=T0, until=END, config=_identical(), now=END)
    assert report.tickets == 7
    assert report.changed == []
    assert report.proposed.as_json() == report.actual.as_json()
    # The engine's history is rich enough for this to mean something.
    actual = report.actual.as_json()
    # Worked out by hand from the ladder (10/20/35/50 min, urgent 5/10, next response 15/30).
    assert actual["levels_fired"] == {"1": 6, "2": 3, "3": 1}
    assert actual["next_response_levels_fired"] == {"1": 2, "2": 2}
    assert (actual["breaches"], actual["next_response_breaches"]) == (6, 2)
    assert actual["first_response_attainment"] == {"answered": 5, "on_time": 1, "share": 0.2}
    by_text = {s.ticket.text: loaded.actual[s.ticket.pk] for s in loaded.scripts}
    waited = by_text["waited on the customer"]
    assert [(f.level, f.at - T0) for f in waited.fired] == [
        (1, timedelta(minutes=34)), (2, timedelta(minutes=44)), (3, timedelta(minutes=59))]
    # Level 2 came due after Bob went off shift at 00:40: only Alice was mentioned.
    assert waited.paged() == [(1, 1, "UALICE"), (1, 1, "UBOB"), (1, 2, "UALICE")]


def test_ticket_by_ticket_the_same_levels_people_and_breaches(history):
    loaded = scripts_load(since=T0, until=END, now=END)
    book = PolicyBook(_identical())
    roster = RosterHistory(since=T0, until=END)
    for script in loaded.scripts:
        tier = script.ticket.channel.tier
        snapshot = book.snapshot(tier_id=tier.pk, tier=tier.name, priority=script.ticket.priority)
        replayed = ticket_replay(script=script, snapshot=snapshot, hours=None, history=roster, now=END)
        actual = loaded.actual[script.ticket.pk]
        assert replayed.levels() == actual.levels(), script.ticket.text
        assert replayed.paged() == actual.paged(), script.ticket.text
        assert replayed.breaches(now=END) == actual.breaches(now=END), script.ticket.text
        assert [f.at for f in sorted(replayed.fired, key=lambda f: (f.cycle, f.level))] == [
            f.at for f in sorted(actual.fired, key=lambda f: (f.cycle, f.level))], script.ticket.text
        assert not outcome_differs(actual, replayed, now=END)


def _total(side: dict) -> int:
    return sum(side["levels_fired"].values()) + sum(side["next_response_levels_fired"].values())


def test_a_stricter_ladder_fires_more_and_a_looser_one_fewer(history):
    actual = replay_run(since=T0, until=END, config=_identical(), now=END)
    stricter = replay_run(since=T0, until=END, config=_scaled(0.5), now=END)
    looser = replay_run(since=T0, until=END, config=_scaled(3), now=END)
    base = _total(actual.actual.as_json())
    assert _total(stricter.proposed.as_json()) > base > _total(looser.proposed.as_json())
    assert stricter.proposed.breaches >= actual.actual.breaches >= looser.proposed.breaches
    assert looser.proposed.breaches < actual.actual.breaches
    assert stricter.changed and looser.changed
    assert {c.script.ticket.pk for c in stricter.changed} <= {t.pk for t in history.values()}

