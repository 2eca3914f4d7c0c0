"""``replay_run``: every ticket of a range, actual versus proposed, summed up side by side.

Reads in bulk (the tickets and their timelines in a handful of queries, the roster of the whole
stretch once, the tiers' hours, today's and the proposal's, once per tier), plays each ticket in memory
(reports/replay/simulate.py), and never writes: no ticket, level, outbox row or Slack call.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from calendars.resolve import RosterHistory
from escalation.breach import on_time
from escalation.clock import ClockKind, open_at
from escalation.sla_config_schema import SlaConfig
from escalation.sla_config_tiers import proposed_open_hours
from reports.replay.policies import PolicyBook
from reports.replay.script import Outcome, TicketScript, scripts_load
from reports.replay.simulate import ticket_replay
from tickets.hours import OpenHours
from tickets.models import Tier
from tickets.tier_hours import tier_open_hours


@dataclass
class Side:
    """The figures of one side (what happened, or what the proposal would have done)."""

    levels_fired: Counter = field(default_factory=Counter)  # first response: level -> count
    next_response_levels_fired: Counter = field(default_factory=Counter)
    breaches: int = 0  # first-response breaches
    next_response_breaches: int = 0
    answered: int = 0  # first responses with a breach time
    answered_on_time: int = 0
    pages: Counter = field(default_factory=Counter)  # engineer name -> times mentioned by a level
    pages_outside_hours: Counter = field(default_factory=Counter)

    @property
    def attainment(self) -> float | None:
        return round(self.answered_on_time / self.answered, 4) if self.answered else None

    def add(self, outcome: Outcome, *, hours: OpenHours, now: datetime) -> None:
        for fired in outcome.fired:
            (self.levels_fired if fired.cycle == 1 else self.next_response_levels_fired)[fired.level] += 1
            for person in fired.notified:
                if not person.get("slack_user_id"):
                    continue
                name = person.get("name") or person["slack_user_id"]
                self.pages[name] += 1
                if not open_at(hours, fired.at):
                    self.pages_outside_hours[name] += 1
        for cycle in outcome.cycles:
            if cycle.breached(now=now):
                if cycle.number == 1:
                    self.breaches += 1
                else:
                    self.next_response_breaches += 1
        first = outcome.first_response()
        if first is not None and first.responded_at is not None and first.breach_at is not None:
            self.answered += 1
            self.answered_on_time += on_time(first.responded_at, first.breach_at)

    def as_json(self) -> dict:
        return {
            "levels_fired": {str(k): v for k, v in sorted(self.levels_fired.items())},
            "next_response_levels_fired": {str(k): v for k, v in
                                           sorted(self.next_response_levels_fired.items())},
            "breaches": self.breaches,
            "next_response_breaches": self.next_response_breaches,
            "first_response_attainment": {"answered": self.answered, "on_time": self.answered_on_time,
                                          "share": self.attainment},
            "pages_per_engineer": {
                name: {"pages": n, "outside_business_hours": self.pages_outside_hours[name]}
                for name, n in sorted(self.pages.items())
            },
            "pages_outside_business_hours": sum(self.pages_outside_hours.values()),
        }


@dataclass(frozen=True)
class TicketChange:
    script: TicketScript
    policy: str
    actual: Outcome
    proposed: Outcome


@dataclass
class ReplayReport:
    since: datetime
    until: datetime
    tier: str | None
    now: datetime
    tickets: int = 0
    actual: Side = field(default_factory=Side)
    proposed: Side = field(default_factory=Side)
    changed: list[TicketChange] = field(default_factory=list)
    proposed_tiers: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "since": self.since.isoformat(), "until": self.until.isoformat(), "tier": self.tier,
            "replayed_at": self.now.isoformat(), "tickets": self.tickets,
            "tiers_in_proposal": self.proposed_tiers,
            "actual": self.actual.as_json(), "proposed": self.proposed.as_json(),
            "changed": [_change_json(change, now=self.now) for change in self.changed],
        }


def _side_json(outcome: Outcome, *, now: datetime) -> dict:
    return {
        "levels": [{"cycle": f.cycle, "level": f.level, "at": f.at.isoformat(),
                    "notified": [p.get("name") or p.get("slack_user_id") or p.get("user_group") or ""
                                 for p in f.notified]}
                   for f in sorted(outcome.fired, key=lambda f: (f.cycle, f.level))],
        "breached_cycles": outcome.breaches(now=now),
    }


def _change_json(change: TicketChange, *, now: datetime) -> dict:
    ticket = change.script.ticket
    return {"ticket": ticket.pk, "helpdesk_ticket_id": ticket.helpdesk_ticket_id,
            "tier": ticket.channel.tier.name, "priority": ticket.priority, "channel": ticket.channel.name,
            "opened_at": ticket.opened_at.isoformat(), "proposed_policy": change.policy,
            "actual": _side_json(change.actual, now=now), "proposed": _side_json(change.proposed, now=now)}


def outcome_differs(actual: Outcome, proposed: Outcome, *, now: datetime) -> bool:
    """Levels fired, breaches, or who was notified differ."""
    return (actual.levels() != proposed.levels() or actual.paged() != proposed.paged()
            or actual.breaches(now=now) != proposed.breaches(now=now))


class _Hours:
    """The hours each ticket's clock counts, each set read or parsed once: a tier the proposal names
    has the file's hours (``sla_config_tiers.proposed_open_hours``: what arming would count once
    the file is imported); any other tier keeps the hours its tickets were armed with
    (``TicketSla.hours``, as ``planning.ticket_armed_clock`` reads them), or its current ones for a
    ticket not armed on a business clock. Holidays are gathered from a week before the range to a
    year after it."""

    def __init__(self, *, around: datetime, config: SlaConfig):
        self.around = around
        self.specs = {spec.name: spec for spec in config.tiers}
        self._hours: dict[int, OpenHours] = {}
        self._proposed: dict[str, OpenHours] = {}
        self._armed: dict[str, OpenHours] = {}

    def of(self, tier: Tier) -> OpenHours:
        """The tier's hours today."""
        if tier.pk not in self._hours:
            self._hours[tier.pk] = tier_open_hours(tier, around=self.around)
        return self._hours[tier.pk]

    def proposed(self, tier: Tier) -> OpenHours:
        """The tier's hours under the proposal: the file's if it names the tier, else today's."""
        spec = self.specs.get(tier.name)
        if spec is None:
            return self.of(tier)
        if spec.name not in self._proposed:
            self._proposed[spec.name] = proposed_open_hours(spec, around=self.around)
        return self._proposed[spec.name]

    def for_ticket(self, script: TicketScript) -> OpenHours:
        """The hours a ticket's business clock counts under the proposal."""
        tier = script.ticket.channel.tier
        if tier.name in self.specs or not script.armed_hours:
            return self.proposed(tier)
        key = json.dumps(script.armed_hours, sort_keys=True)
        if key not in self._armed:
            self._armed[key] = OpenHours.from_json(script.armed_hours)
        return self._armed[key]


def replay_run(*, since: datetime, until: datetime, config: SlaConfig, tier: str | None = None,
               now: datetime | None = None) -> ReplayReport:
    """Replay the tickets opened in [since, until) (of ``tier``, if given) under the proposal."""
    now = now or timezone.now()
    report = ReplayReport(since=since, until=until, tier=tier, now=now,
                          proposed_tiers=[t.name for t in config.tiers])
    loaded = scripts_load(since=since, until=until, tier=tier, now=now)
    history = RosterHistory(since=since, until=now)
    book = PolicyBook(config)
    hours = _Hours(around=since, config=config)
    for script in loaded.scripts:
        ticket = script.ticket
        tier_row = ticket.channel.tier
        snapshot = book.snapshot(tier_id=tier_row.pk, tier=tier_row.name, priority=ticket.priority)
        tier_hours = hours.of(tier_row)
        clock_hours = hours.for_ticket(script) if snapshot.clock == ClockKind.BUSINESS else None
        proposed = ticket_replay(script=script, snapshot=snapshot, hours=clock_hours,
                                 history=history, now=now)
        actual = loaded.actual[ticket.pk]
        report.tickets += 1
        report.actual.add(actual, hours=tier_hours, now=now)
        report.proposed.add(proposed, hours=hours.proposed(tier_row), now=now)
        if outcome_differs(actual, proposed, now=now):
            report.changed.append(TicketChange(script, snapshot.name, actual, proposed))
    return report
