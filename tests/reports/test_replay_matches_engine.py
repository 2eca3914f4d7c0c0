"""Replay under the very policies the engine used reproduces, ticket by ticket, what the engine did:
which levels fired, whom they notified, which cycles breached. A stricter ladder fires more on the
same tickets, a looser one fewer. The tickets here are driven through the real engine (arming, each
level's task firing it when due, snoozes, waits, answers, closes, next-response cycles) with a moving
clock (tests/reports/conftest.py)."""

from datetime import timedelta

import pytest
import yaml

from calendars.resolve import RosterHistory
from escalation.arming import ticket_arm
from escalation.disarming import ticket_mark_responded
from escalation.models import Escalation
from escalation.outcomes import FireOutcome
from escalation.sla_config_schema import duration_parse
from escalation.transitions import EscalationState
from ops.sla_config.exporting import config_dump, config_export
from reports.replay.policies import PolicyBook
from reports.replay.policy_file import policy_file_read
from reports.replay.running import outcome_differs, replay_run
from reports.replay.script import scripts_load
from reports.replay.simulate import ticket_replay
from tests.reports.conftest import END, at
from tests.support.engine import fire
from tests.support.times import T0
from tickets.factories import TicketFactory, WatchedChannelFactory

pytestmark = pytest.mark.django_db



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



def test_a_page_step_replays_as_the_pager_it_paged(paging_ticket, fake_pager, fake_slack):
    """Level 3 pages PagerDuty for urgent tickets only (left out of a normal ticket's snapshot)."""
    urgent, normal = paging_ticket("urgent"), paging_ticket("normal", slack_ts="1700000099.0001")
    for ticket in (urgent, normal):
        ticket_arm(ticket=ticket, now=T0)
    for minute in range(0, 60):
        for row in Escalation.objects.filter(state=EscalationState.PENDING, due_at__lte=at(minute)):
            assert fire(row, at=at(minute)) == FireOutcome.FIRED
    report = replay_run(since=T0, until=END, config=_identical(), now=END)
    assert report.tickets == 2 and report.changed == []
    loaded = scripts_load(since=T0, until=END, now=END)
    paged = [f for f in loaded.actual[urgent.pk].fired if f.level == 3]
    assert paged and paged[0].notified[0]["pager"] == "pagerduty"
    assert [f.level for f in loaded.actual[normal.pk].fired] == [1, 2, 4]


def _without_tier(name: str):
    document = config_export()
    document["tiers"] = [tier for tier in document["tiers"] if tier["name"] != name]
    return policy_file_read(config_dump(document))


def test_a_tier_the_file_does_not_name_counts_the_hours_its_tickets_were_armed_with(
        teams_business, thread_in, fake_slack, engineers):
    """Mon-Fri 09:00-18:00 Berlin, level 1 after one business hour. Editing the tier's hours afterwards
    changes nothing about how its past tickets replay under a file that does not name the tier; a
    file that names it (with the edited hours) replays them under its hours."""
    channel = WatchedChannelFactory(slack_channel_id="CTEAMS01", name="support-teams",
                                    tier=teams_business.tier)
    ticket = thread_in(TicketFactory(channel=channel, opened_at=T0, priority="normal"))  # 10:00 Berlin
    ticket_arm(ticket=ticket, now=T0)
    level1 = Escalation.objects.get(ticket=ticket, level=1)
    assert level1.due_at == at(60)
    assert fire(level1, at=at(60)) == FireOutcome.FIRED
    ticket_mark_responded(ticket=ticket, path="slack_thread", actor="UALICE", at=at(100))
    tier = teams_business.tier
    tier.business_hours = {"mon-fri": ["13:00-18:00"]}  # edited later: 10:00-11:00 would not count
    tier.save()
    report = replay_run(since=T0, until=END, config=_without_tier(tier.name), now=END)
    assert report.tickets == 1 and report.changed == []
    assert report.proposed.as_json()["levels_fired"] == {"1": 1}
    named = replay_run(since=T0, until=END, config=_identical(), now=END)
    # 13:00-18:00: level 1 would have come due at 14:00 Berlin, after the answer at 11:40.
    assert named.proposed.as_json()["levels_fired"] == {}
    assert [c.script.ticket.pk for c in named.changed] == [ticket.pk]
