"""One ticket played again under a policy: the engine's rules, in memory, moment by moment.

Every number comes from the engine's own code: the due times and breach time of a cycle from
``escalation.planning`` (``sla_plan``, ``next_response_plan``), the level rows of a cycle
(with late pickups folded) from ``escalation.cycles.cycle_level_rows``, a snooze's move from
``planning.level_clock``, a wait on the customer from ``planning.pause_remaining`` and
``resume_due``, and whom a level notifies from ``calendars.resolve.resolve_target`` against the
roster as it was (``RosterHistory``). What this module adds is only the order of things, as the
engine's services apply it (escalation/snooze.py, pausing.py, disarming.py, closing.py,
cycles.py): a level fires when it is due while its ticket is armed. The level rows are unsaved
``Escalation`` objects and are never written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from base.pages import provider_label
from calendars.resolve import RosterHistory, resolve_target
from calendars.targets import TargetKind
from escalation.clock import Clock, clock_for
from escalation.cycles import cycle_level_rows
from escalation.models import Escalation
from escalation.planning import level_clock, next_response_plan, pause_remaining, resume_due, sla_plan
from escalation.policy import PolicySnapshot
from escalation.transitions import EscalationState
from reports.replay.script import CycleOutcome, Fired, Moment, Outcome, Step, TicketScript
from tickets.hours import OpenHours
from tickets.models import TicketState, TicketVia


@dataclass
class PauseRecord:
    """One wait on the customer as the engine would record it (``TicketPause``)."""

    cycle: int
    paused_at: datetime
    breach_remaining: timedelta | None
    remaining: dict[str, float] = field(default_factory=dict)
    paused_by: str = ""
    resumed_at: datetime | None = None
    resumed_via: str = ""
    resumed_by: str = ""


@dataclass(frozen=True)
class SnoozeRecord:
    """One snooze request and what it did (``SnoozeRequest``)."""

    moment: Moment
    applied: bool
    due_times: dict[str, str]
    refused: str = ""


@dataclass
class ReplayRun:
    """A ticket being played: its level rows (unsaved ``Escalation`` objects), cycles, waits and
    snoozes as the engine would have them, and the moments that changed something."""

    script: TicketScript
    snapshot: PolicySnapshot
    hours: OpenHours | None
    clock: Clock
    history: RosterHistory
    state: str = TicketState.ARMED
    rows: list[Escalation] = field(default_factory=list)
    created: dict[int, datetime] = field(default_factory=dict)  # id(row) -> when its row was written
    cycles: list[CycleOutcome] = field(default_factory=list)
    fired: list[Fired] = field(default_factory=list)
    pause: PauseRecord | None = None
    pauses: list[PauseRecord] = field(default_factory=list)
    snooze_log: list[SnoozeRecord] = field(default_factory=list)
    applied: list[Moment] = field(default_factory=list)  # moments that changed the ticket
    snoozes: int = 0
    closed_at: datetime | None = None

    # -- levels ------------------------------------------------------------------------------
    def _add_rows(self, rows: list[Escalation], *, at: datetime) -> None:
        for row in rows:
            self.created[id(row)] = at
        self.rows.extend(rows)

    def _pending(self) -> list[Escalation]:
        return [row for row in self.rows if row.state == EscalationState.PENDING]

    def fire_due(self, until: datetime, *, inclusive: bool) -> None:
        """Fire, in time order, every pending level due before ``until`` (or at it) while armed."""
        while self.state == TicketState.ARMED:
            due = [(max(row.due_at, self.created[id(row)]), row.level, row) for row in self._pending()]
            due = [d for d in due if d[0] < until or (inclusive and d[0] == until)]
            if not due:
                return
            at, _, row = min(due, key=lambda d: (d[0], d[1]))
            notified = self._notified(row, at=at)
            row.state, row.fired_at, row.notified = EscalationState.FIRED, at, notified
            self.fired.append(Fired(row.cycle, row.level, at, tuple(notified)))

    def _notified(self, row: Escalation, *, at: datetime) -> list[dict]:
        """Whom the level mentions (firing.escalation_draft), or, for a page step, its pager, as
        escalation/paging.py records a page that went out (nobody in Slack)."""
        if row.target_kind == TargetKind.PAGE:
            return [{"name": provider_label(row.page_provider), "pager": row.page_provider}]
        return resolve_target(kind=row.target_kind, ref=row.target_ref, engineer_id=row.engineer_id, at=at,
                              history=self.history).notified

    def _cancel_live(self) -> None:
        for row in self.rows:
            if row.state in (EscalationState.PENDING, EscalationState.PAUSED):
                row.state = EscalationState.CANCELLED

    def _current(self) -> CycleOutcome | None:
        return self.cycles[-1] if self.cycles else None

    # -- the moments (the engine's services, in memory) ------------------------------------------
    def arm(self) -> None:
        ticket, snapshot = self.script.ticket, self.snapshot
        if snapshot.excludes(ticket.ticket_type):
            self.state = TicketState.EXCLUDED
            return
        if not snapshot.levels:
            self.state = TicketState.NO_POLICY
            return
        plan = sla_plan(snapshot=snapshot, opened_at=ticket.opened_at, hours=self.hours)
        self.cycles.append(CycleOutcome(1, ticket.opened_at, plan.breach_at))
        rows = cycle_level_rows(ticket=ticket, plan=plan, cycle=1, now=self.script.armed_at)
        self._add_rows(rows.rows, at=self.script.armed_at)

    def snooze(self, moment: Moment) -> None:  # escalation/snooze.py: ticket_snooze
        if self.state != TicketState.ARMED:
            self.snooze_log.append(SnoozeRecord(moment, False, {}))
            return
        delta = timedelta(minutes=self.snapshot.snooze_minutes)
        limit = self.snapshot.max_total_snooze
        if limit is not None and self.snoozes * delta + delta > limit:
            self.snooze_log.append(SnoozeRecord(moment, False, {}, "over the policy's maximum total snooze"))
            return
        moved = False
        due_times = {}
        for row in sorted(self._pending(), key=lambda r: r.level):
            row.due_at = level_clock(self.clock, outside_hours=row.outside_hours).add(row.due_at, delta)
            due_times[str(row.level)] = row.due_at.isoformat()
            moved = True
        cycle = self._current()
        breach_moved = False
        if self.snapshot.snoozes_extend_target and cycle and cycle.breach_at and cycle.breach_at > moment.at:
            cycle.breach_at = self.clock.add(cycle.breach_at, delta)
            breach_moved = True
        if moved or breach_moved:
            self.snoozes += 1
            self.applied.append(moment)
        self.snooze_log.append(SnoozeRecord(moment, moved or breach_moved, due_times))

    def pause_start(self, moment: Moment) -> None:  # escalation/pausing.py: ticket_pause
        if self.state != TicketState.ARMED:
            return
        self.state = TicketState.WAITING
        remaining = {}
        for row in sorted(self._pending(), key=lambda r: r.level):
            row.paused_remaining = pause_remaining(clock=self.clock, due_at=row.due_at, paused_at=moment.at,
                                                   outside_hours=row.outside_hours)
            row.state = EscalationState.PAUSED
            remaining[str(row.level)] = row.paused_remaining.total_seconds()
        cycle = self._current()
        breach_left = None
        if cycle is not None and cycle.breach_at is not None and cycle.breach_at > moment.at:
            breach_left = pause_remaining(clock=self.clock, due_at=cycle.breach_at, paused_at=moment.at)
        self.pause = PauseRecord(cycle.number if cycle else 1, moment.at, breach_left, remaining,
                                 moment.actor)
        self.pauses.append(self.pause)
        self.applied.append(moment)
        if cycle is not None:
            cycle.waiting_since = moment.at

    def resume(self, moment: Moment) -> None:  # escalation/pausing.py: ticket_resume
        if self.state != TicketState.WAITING or (self.pause and moment.at < self.pause.paused_at):
            return
        self.state = TicketState.ARMED
        for row in self.rows:
            if row.state == EscalationState.PAUSED:
                row.due_at = resume_due(clock=self.clock, remaining=row.paused_remaining or timedelta(0),
                                        resumed_at=moment.at, outside_hours=row.outside_hours)
                row.state, row.paused_remaining = EscalationState.PENDING, None
        pause, self.pause = self.pause, None
        if pause is not None:
            pause.resumed_at, pause.resumed_via, pause.resumed_by = moment.at, moment.via, moment.actor
        self.applied.append(moment)
        cycle = next((c for c in self.cycles if pause and c.number == pause.cycle), None)
        if cycle is not None:
            cycle.waiting_since = None
            if pause.breach_remaining is not None:
                cycle.breach_at = resume_due(clock=self.clock, remaining=pause.breach_remaining,
                                             resumed_at=moment.at)

    def _end_pause(self, moment: Moment, *, via: str) -> None:
        if self.pause is not None:
            pause = self.pause
            pause.resumed_at, pause.resumed_via, pause.resumed_by = moment.at, via, moment.actor
        self.pause = None
        for cycle in self.cycles:
            cycle.waiting_since = None

    def respond(self, moment: Moment) -> None:  # escalation/disarming.py: ticket_mark_responded
        cycle = self._current()
        if cycle is not None and cycle.number > 1 and moment.at < cycle.started_at:
            return
        if self.state not in (TicketState.ARMED, TicketState.WAITING, TicketState.NO_POLICY,
                              TicketState.EXCLUDED):
            return
        self.state = TicketState.RESPONDED
        self._cancel_live()
        if cycle is not None and cycle.responded_at is None and cycle.closed_at is None:
            cycle.responded_at = moment.at
        self._end_pause(moment, via=TicketVia.RESPONSE)
        self.applied.append(moment)

    def close(self, moment: Moment) -> None:  # escalation/closing.py: ticket_close
        if self.state not in (TicketState.ARMED, TicketState.WAITING, TicketState.RESPONDED):
            return
        self.state, self.closed_at = TicketState.CLOSED, moment.at
        self._cancel_live()
        cycle = self._current()
        if cycle is not None and cycle.responded_at is None and cycle.closed_at is None:
            cycle.closed_at = moment.at
        self._end_pause(moment, via=TicketVia.CLOSE)
        self.applied.append(moment)

    def cycle_start(self, moment: Moment) -> None:  # escalation/cycles.py: ticket_next_response_start
        if self.state not in (TicketState.RESPONDED, TicketState.CLOSED):
            return
        ladder = self.snapshot.next_response
        if ladder is None:
            return
        previous = self._current()
        ended = [t for t in (previous and previous.responded_at, previous and previous.closed_at,
                             self.closed_at) if t is not None]
        if ended and moment.at <= max(ended):
            return
        previous_state_closed = self.state == TicketState.CLOSED
        self.state, self.closed_at = TicketState.ARMED, None
        number = (previous.number if previous else 1) + 1
        plan = next_response_plan(ladder=ladder, clock=self.clock, started_at=moment.at)
        self.cycles.append(CycleOutcome(number, moment.at, plan.breach_at, reopened=previous_state_closed))
        rows = cycle_level_rows(ticket=self.script.ticket, plan=plan, cycle=number, now=moment.at)
        self._add_rows(rows.rows, at=moment.at)
        self.applied.append(moment)


_APPLY = {Step.SNOOZE: ReplayRun.snooze, Step.PAUSE: ReplayRun.pause_start,
          Step.RESUME: ReplayRun.resume, Step.RESPOND: ReplayRun.respond, Step.CLOSE: ReplayRun.close,
          Step.CYCLE: ReplayRun.cycle_start}


def ticket_replay(*, script: TicketScript, snapshot: PolicySnapshot, hours: OpenHours | None,
                  history: RosterHistory, now: datetime) -> Outcome:
    """The ticket's life under ``snapshot`` (its clock over the tier's ``hours``), up to ``now``:
    which levels would have fired when and whom they would have notified, and each cycle's breach
    time and end."""
    run = ticket_replay_run(script=script, snapshot=snapshot, hours=hours, history=history, now=now)
    return Outcome(fired=run.fired, cycles=run.cycles, state=run.state)


def ticket_replay_run(*, script: TicketScript, snapshot: PolicySnapshot, hours: OpenHours | None,
                      history: RosterHistory, now: datetime) -> ReplayRun:
    """``ticket_replay`` with everything the run would have written (the demo's past month is
    written from it)."""
    clock = clock_for(kind=snapshot.clock, hours=hours)
    run = ReplayRun(script, snapshot, hours, clock, history)
    run.arm()
    for moment in script.ordered():
        if moment.at > now:
            break
        run.fire_due(moment.at, inclusive=True)  # a level due at the very moment has fired by then
        _APPLY[moment.step](run, moment)
    run.fire_due(now, inclusive=True)
    return run
