"""What happened to a ticket, as its timeline recorded it: the moments a replay plays again.

A ``TicketScript`` holds the ticket's opening and every request that could change its levels
(snoozes, waits on the customer and their ends, responses, closes, customer messages that
started a next-response cycle), read from the ticket's rows: ``TicketCycle`` (starts,
responses, closes), ``TicketPause``, ``SnoozeRequest`` and the CLOSED timeline events.
``scripts_load`` reads them for every ticket of a range in a handful of queries, never one
ticket at a time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from escalation.breach import on_time
from escalation.models import Escalation, SnoozeRequest, TicketCycle, TicketPause, TicketSla
from escalation.snooze import SNOOZE_DEBOUNCE_REFUSAL
from escalation.transitions import EscalationState
from tickets.models import Ticket, TicketEvent, TicketEventKind, TicketVia


class Step:
    """The kinds of moments, in the order the engine would take two of them at the same instant."""

    CYCLE = "cycle"  # the customer wrote again (a next-response cycle, or a reopening)
    SNOOZE = "snooze"
    PAUSE = "pause"
    RESUME = "resume"
    RESPOND = "respond"
    CLOSE = "close"


ORDER = {Step.CYCLE: 0, Step.RESUME: 1, Step.SNOOZE: 2, Step.PAUSE: 3, Step.RESPOND: 4, Step.CLOSE: 5}


@dataclass(frozen=True)
class Moment:
    at: datetime
    step: str
    actor: str = ""
    via: str = ""  # how a wait ended or a ticket was closed (TicketVia), as recorded


@dataclass
class TicketScript:
    ticket: Ticket
    armed_at: datetime
    moments: list[Moment] = field(default_factory=list)
    armed_hours: dict | None = None  # business clock: the tier's hours as they were at arming (TicketSla)

    def ordered(self) -> list[Moment]:
        return sorted(self.moments, key=lambda m: (m.at, ORDER[m.step]))


@dataclass(frozen=True)
class Fired:
    """One level that fired (or would have), and whom it notified."""

    cycle: int
    level: int
    at: datetime
    notified: tuple[dict, ...]


@dataclass
class CycleOutcome:
    number: int
    started_at: datetime
    breach_at: datetime | None
    responded_at: datetime | None = None
    closed_at: datetime | None = None
    waiting_since: datetime | None = None  # an open wait on the customer: the clock stood still
    reopened: bool = False

    def breached(self, *, now: datetime) -> bool:
        """Its target passed before its response, its close, its open wait, or now (escalation/breach.py)."""
        if self.breach_at is None:
            return False
        deadline = self.responded_at or self.closed_at or self.waiting_since or now
        return not on_time(deadline, self.breach_at)


@dataclass
class Outcome:
    """What happened to one ticket (actual), or what would have (proposed)."""

    fired: list[Fired] = field(default_factory=list)
    cycles: list[CycleOutcome] = field(default_factory=list)
    state: str = ""

    def levels(self) -> list[tuple[int, int]]:
        return sorted((f.cycle, f.level) for f in self.fired)

    def paged(self) -> list[tuple[int, int, str]]:
        return sorted((f.cycle, f.level, person["slack_user_id"]) for f in self.fired for person in f.notified
                      if person.get("slack_user_id"))

    def breaches(self, *, now: datetime) -> list[int]:
        return [c.number for c in self.cycles if c.breached(now=now)]

    def first_response(self) -> CycleOutcome | None:
        return next((c for c in self.cycles if c.number == 1), None)


def _tickets(*, since: datetime, until: datetime, tier: str | None):
    tickets = Ticket.objects.filter(opened_at__gte=since, opened_at__lt=until).select_related("channel__tier")
    if tier:
        tickets = tickets.filter(channel__tier__name=tier)
    return tickets.order_by("opened_at", "pk")


def _by_ticket(rows) -> dict[int, list]:
    grouped: dict[int, list] = defaultdict(list)
    for row in rows:
        grouped[row.ticket_id].append(row)
    return grouped


@dataclass
class Loaded:
    """Every ticket of the range with its script and its actual outcome."""

    scripts: list[TicketScript]
    actual: dict[int, Outcome]


def scripts_load(*, since: datetime, until: datetime, tier: str | None = None, now: datetime) -> Loaded:
    """Read the range's tickets, their timelines and their actual outcomes (seven queries)."""
    tickets = list(_tickets(since=since, until=until, tier=tier))
    inside = Q(ticket__opened_at__gte=since, ticket__opened_at__lt=until)
    if tier:
        inside &= Q(ticket__channel__tier__name=tier)
    armed = {ticket_id: (at, hours) for ticket_id, at, hours in
             TicketSla.objects.filter(inside).values_list("ticket_id", "armed_at", "hours")}
    cycles = _by_ticket(TicketCycle.objects.filter(inside).order_by("number"))
    pauses = _by_ticket(TicketPause.objects.filter(inside).order_by("paused_at", "pk"))
    snoozes = _by_ticket(SnoozeRequest.objects.filter(inside)
                         .exclude(refused__startswith=SNOOZE_DEBOUNCE_REFUSAL).order_by("at", "pk"))
    closes = _by_ticket(TicketEvent.objects.filter(inside, kind=TicketEventKind.CLOSED).order_by("at", "pk"))
    levels = _by_ticket(Escalation.objects.filter(inside, state__in=[EscalationState.FIRED,
                                                                     EscalationState.FAILED])
                        .only("ticket_id", "cycle", "level", "fired_at", "due_at", "notified", "updated_at"))
    scripts, actual = [], {}
    for ticket in tickets:
        armed_at, armed_hours = armed.get(ticket.pk, (ticket.opened_at, None))
        script = TicketScript(ticket=ticket, armed_at=armed_at, armed_hours=armed_hours)
        own_cycles = cycles.get(ticket.pk, [])
        for cycle in own_cycles:
            if cycle.number > 1:
                script.moments.append(Moment(cycle.started_at, Step.CYCLE, cycle.started_by))
            if cycle.responded_at is not None:
                script.moments.append(Moment(cycle.responded_at, Step.RESPOND, cycle.responded_by))
        if not own_cycles and ticket.responded_at is not None:
            script.moments.append(Moment(ticket.responded_at, Step.RESPOND, ticket.responded_by))
        for pause in pauses.get(ticket.pk, []):
            script.moments.append(Moment(pause.paused_at, Step.PAUSE, pause.paused_by, pause.paused_via))
            if pause.resumed_at is not None and pause.resumed_via not in ENDED_NOT_RESUMED:
                script.moments.append(Moment(pause.resumed_at, Step.RESUME, pause.resumed_by,
                                             pause.resumed_via))
        script.moments.extend(Moment(s.at, Step.SNOOZE, s.actor) for s in snoozes.get(ticket.pk, []))
        script.moments.extend(Moment(e.at, Step.CLOSE, e.actor, e.details.get("via", ""))
                              for e in closes.get(ticket.pk, []))
        scripts.append(script)
        actual[ticket.pk] = Outcome(
            fired=[Fired(r.cycle, r.level, r.fired_at or r.due_at, tuple(r.notified or ()))
                   for r in levels.get(ticket.pk, [])],
            cycles=[_cycle_outcome(c, pauses.get(ticket.pk, [])) for c in own_cycles],
            state=ticket.state,
        )
    return Loaded(scripts, actual)


# A pause ended by a response or a close is not a resume: the response or close is its own moment.
ENDED_NOT_RESUMED = (TicketVia.RESPONSE, TicketVia.CLOSE)


def _cycle_outcome(cycle: TicketCycle, pauses: list[TicketPause]) -> CycleOutcome:
    waiting = next((p.paused_at for p in pauses if p.cycle == cycle.number and p.resumed_at is None), None)
    return CycleOutcome(cycle.number, cycle.started_at, cycle.breach_at, cycle.responded_at, cycle.closed_at,
                        waiting)
