"""Where a ticket is armed and where a level fires.

The ``Escalation`` row is the truth. Celery tasks (short ETAs, inside
``ESCALATION_HORIZON_SECONDS``) make firing punctual; the sweeper fires what
they missed. Every path claims a row with a conditional UPDATE on
(state, version) and acts only if it won, so duplicates, stale tasks and
concurrent sweepers are harmless.

Row states: pending -> firing (claimed; ``not_before`` is the claim's lease)
-> fired | failed, or back to pending with a ``not_before`` after a rate
limit or error; pending -> cancelled on a response. No network call is made
inside a database transaction; tasks are published after commit.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from calendars.resolve import resolve_target
from escalation.messages import NextStep, render_escalation
from escalation.models import (
    Escalation,
    EscalationState,
    FiredVia,
    OutgoingMessage,
    OutgoingStatus,
    SlaPolicy,
    SnoozeRequest,
)
from escalation.transport import (
    PermanentSlackError,
    RateLimited,
    SlackTransport,
    TransientSlackError,
)
from tickets.helpdesk import helpdesk_first_reply_seen
from tickets.models import ResponseMode, ResponsePath, Ticket, TicketEventKind, TicketState
from tickets.timeline import timeline_record

logger = logging.getLogger("slabuddy.escalation")

# The sweeper leaves a level this long to its own delayed task before taking it.
SWEEP_GRACE = timedelta(seconds=1)
SWEEP_BATCH = 200
DEFAULT_SNOOZE_MINUTES = 30
MAX_BACKOFF_SECONDS = 60


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _horizon() -> timedelta:
    return timedelta(seconds=settings.ESCALATION_HORIZON_SECONDS)


def idempotency_key(*, ticket_id: int, level: int) -> str:
    return f"ticket:{ticket_id}:level:{level}"


# --- queueing ----------------------------------------------------------------


def _publish(escalation_id: int, version: int, task_id: str, eta: datetime) -> None:
    """Send the delayed task. Called after commit; a failure is only logged,
    because the sweeper fires the level anyway."""
    from escalation.tasks import escalation_fire as fire_task

    try:
        fire_task.apply_async(args=(escalation_id, version), task_id=task_id, eta=eta)
    except Exception:  # broker down: the row is still pending, the sweeper has it
        logger.warning("could not queue escalation %s; the sweeper will fire it", escalation_id,
                       exc_info=True)


def _revoke(task_ids: list[str]) -> None:
    """Best effort: a revoked task would be a stale no-op anyway."""
    task_ids = [t for t in task_ids if t]
    if not task_ids:
        return
    from slabuddy.celery import app

    try:
        app.control.revoke(task_ids)
    except Exception:
        logger.warning("could not revoke %d escalation task(s)", len(task_ids), exc_info=True)


def _queue(row: Escalation, *, at: datetime) -> bool:
    """Give ``row`` (pending, at its current version) a delayed task for ``at``,
    published after commit. Returns False if the row changed meanwhile."""
    task_id = str(uuid.uuid4())
    updated = Escalation.objects.filter(
        pk=row.pk, state=EscalationState.PENDING, version=row.version
    ).update(celery_task_id=task_id, enqueued_for=row.due_at, updated_at=timezone.now())
    if not updated:
        return False
    row.celery_task_id, row.enqueued_for = task_id, row.due_at
    transaction.on_commit(partial(_publish, row.pk, row.version, task_id, at))
    return True


def _queue_within_horizon(rows: list[Escalation], *, now: datetime) -> int:
    queued = 0
    for row in rows:
        at = max(row.due_at, row.not_before or row.due_at)
        if at <= now + _horizon():
            queued += _queue(row, at=at)
    return queued


def escalations_enqueue_horizon(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Queue a task for every pending level that has come within the horizon
    and has none for its current due time (the beat "horizon" job)."""
    now = _now(now)
    candidates = Escalation.objects.filter(
        state=EscalationState.PENDING, due_at__lte=now + _horizon()
    ).filter(Q(enqueued_for__isnull=True) | ~Q(enqueued_for=F("due_at")))
    with transaction.atomic():
        if connection.vendor == "postgresql":
            candidates = candidates.select_for_update(skip_locked=True)
        rows = list(candidates.order_by("due_at")[:limit])
        return _queue_within_horizon(rows, now=now)


# --- arming ------------------------------------------------------------------


def policy_for(*, tier_id: int, priority: str) -> SlaPolicy | None:
    """The most specific active policy: (tier, priority), else the tier's default."""
    policies = SlaPolicy.objects.filter(tier_id=tier_id, active=True)
    if priority:
        specific = policies.filter(priority=priority).first()
        if specific is not None:
            return specific
    return policies.filter(priority="").first()


def ticket_arm(*, ticket: Ticket, now: datetime | None = None) -> list[Escalation]:
    """Give a new ticket its policy and one pending row per level. Idempotent:
    a ticket that already has rows (or was found to have no policy, or was
    answered) is returned unchanged."""
    now = _now(now)
    with transaction.atomic():
        locked = Ticket.objects.select_for_update(of=("self",)).select_related("channel").get(pk=ticket.pk)
        existing = list(Escalation.objects.filter(ticket=locked).order_by("level"))
        if existing or locked.state != TicketState.ARMED:
            return existing
        policy = policy_for(tier_id=locked.channel.tier_id, priority=locked.priority)
        steps = list(policy.steps.order_by("level")) if policy else []
        if not steps:
            locked.policy = policy
            locked.state = TicketState.NO_POLICY
            locked.save(update_fields=["policy", "state"])
            timeline_record(
                ticket=locked,
                kind=TicketEventKind.NOTE,
                at=now,
                details={
                    "note": "No SLA policy with escalation steps for this tier and priority; "
                    "nothing will escalate.",
                    "tier": str(locked.channel.tier),
                    "priority": locked.priority,
                },
            )
            ticket.policy, ticket.state = policy, locked.state
            return []
        rows = Escalation.objects.bulk_create(
            Escalation(
                ticket=locked,
                step=step,
                level=step.level,
                target_kind=step.target_kind,
                target_ref=step.target_ref,
                due_at=locked.opened_at + step.delay,
            )
            for step in steps
        )
        locked.policy = policy
        locked.save(update_fields=["policy"])
        timeline_record(
            ticket=locked,
            kind=TicketEventKind.ARMED,
            at=now,
            details={
                "policy": str(policy),
                "levels": {str(r.level): r.due_at.isoformat() for r in rows},
            },
        )
        _queue_within_horizon(rows, now=now)
    ticket.policy = policy
    return rows


# --- responses ---------------------------------------------------------------


def ticket_mark_responded(*, ticket: Ticket, path: str, actor: str, at: datetime) -> bool:
    """A real response: disarm the ticket for good. Returns False if it was
    already responded (nothing changes)."""
    with transaction.atomic():
        updated = Ticket.objects.filter(
            pk=ticket.pk, state__in=[TicketState.ARMED, TicketState.NO_POLICY]
        ).update(state=TicketState.RESPONDED, responded_at=at, response_path=path, responded_by=actor)
        if not updated:
            return False
        pending = Escalation.objects.filter(ticket_id=ticket.pk, state=EscalationState.PENDING)
        cancelled = list(pending.values_list("level", "celery_task_id"))
        pending.update(
            state=EscalationState.CANCELLED,
            version=F("version") + 1,
            not_before=None,
            updated_at=timezone.now(),
        )
        ticket.state, ticket.responded_at = TicketState.RESPONDED, at
        ticket.response_path, ticket.responded_by = path, actor
        timeline_record(
            ticket=ticket,
            kind=TicketEventKind.RESPONDED,
            at=at,
            actor=actor,
            details={"path": path, "cancelled_levels": sorted(level for level, _ in cancelled)},
        )
        transaction.on_commit(partial(_revoke, [task_id for _, task_id in cancelled]))
    return True


# --- snooze ------------------------------------------------------------------


@dataclass(frozen=True)
class SnoozeResult:
    """``applied``: this call moved at least one pending level. ``duplicate``:
    the request key was seen before (nothing changed). ``due_times``: level ->
    due time of every pending level after the call, for the reply in Slack."""

    applied: bool
    duplicate: bool
    snooze_minutes: int
    due_times: dict[int, datetime] = field(default_factory=dict)


def _pending_due_times(ticket_id: int) -> dict[int, datetime]:
    return dict(
        Escalation.objects.filter(ticket_id=ticket_id, state=EscalationState.PENDING)
        .order_by("level")
        .values_list("level", "due_at")
    )


def ticket_snooze(
    *, ticket: Ticket, request_key: str, actor: str, now: datetime | None = None
) -> SnoozeResult:
    """Move every pending level by the policy's snooze minutes, once per request key."""
    now = _now(now)
    with transaction.atomic():
        locked = Ticket.objects.select_for_update(of=("self",)).select_related("policy").get(pk=ticket.pk)
        minutes = locked.policy.snooze_minutes if locked.policy else DEFAULT_SNOOZE_MINUTES
        try:
            with transaction.atomic():
                request = SnoozeRequest.objects.create(
                    request_key=request_key, ticket=locked, actor=actor, at=now
                )
        except IntegrityError:
            # The same Slack request again (Slack sends a mention as both app_mention
            # and message): report what the first delivery did, so either reply reads the same.
            first = SnoozeRequest.objects.filter(request_key=request_key).first()
            if first is not None and first.applied:
                stored = {int(level): datetime.fromisoformat(at) for level, at in first.due_times.items()}
                return SnoozeResult(False, True, minutes, stored)
            return SnoozeResult(False, True, minutes, _pending_due_times(locked.pk))
        if locked.state != TicketState.ARMED:
            return SnoozeResult(False, False, minutes, {})
        delta = timedelta(minutes=minutes)
        moved: list[Escalation] = []
        old_task_ids: list[str] = []
        for row in Escalation.objects.filter(ticket=locked, state=EscalationState.PENDING):
            updated = Escalation.objects.filter(
                pk=row.pk, state=EscalationState.PENDING, version=row.version
            ).update(
                due_at=F("due_at") + delta,
                version=F("version") + 1,
                celery_task_id="",
                enqueued_for=None,
                updated_at=timezone.now(),
            )
            if updated:
                old_task_ids.append(row.celery_task_id)
                row.due_at += delta
                row.version += 1
                row.celery_task_id, row.enqueued_for = "", None
                moved.append(row)
        _queue_within_horizon(moved, now=now)
        due_times = {row.level: row.due_at for row in sorted(moved, key=lambda r: r.level)}
        request.applied = bool(moved)
        request.due_times = {str(level): at.isoformat() for level, at in due_times.items()}
        request.save(update_fields=["applied", "due_times"])
        if moved:
            timeline_record(
                ticket=locked,
                kind=TicketEventKind.SNOOZED,
                at=now,
                actor=actor,
                details={"minutes": minutes, "request_key": request_key, "due_times": request.due_times},
            )
        transaction.on_commit(partial(_revoke, old_task_ids))
    return SnoozeResult(bool(moved), False, minutes, due_times)


# --- firing ------------------------------------------------------------------


def _claim(row: Escalation, *, now: datetime, via: str) -> Escalation | None:
    """Take ``row`` for firing: one conditional UPDATE; None if someone else won."""
    lease = timedelta(seconds=settings.ESCALATION_CLAIM_LEASE_SECONDS)
    won = Escalation.objects.filter(
        pk=row.pk, state=row.state, version=row.version, due_at__lte=now
    ).update(
        state=EscalationState.FIRING,
        version=F("version") + 1,
        not_before=now + lease,
        attempts=F("attempts") + 1,
        fired_via=via,
        updated_at=now,
    )
    if not won:
        return None
    row.state, row.version, row.not_before = EscalationState.FIRING, row.version + 1, now + lease
    row.attempts += 1
    row.fired_via = via
    return row


def _settle(row: Escalation, **changes) -> bool:
    """Leave the firing state, if our claim still holds."""
    changes.setdefault("updated_at", timezone.now())
    return bool(
        Escalation.objects.filter(pk=row.pk, state=EscalationState.FIRING, version=row.version).update(
            **changes
        )
    )


def _backoff(attempts: int) -> float:
    return float(min(2 ** max(attempts, 1), MAX_BACKOFF_SECONDS))


def _retry_later(row: Escalation, *, delay: float, error: str, now: datetime) -> None:
    not_before = now + timedelta(seconds=delay)
    with transaction.atomic():
        if not _settle(
            row,
            state=EscalationState.PENDING,
            version=F("version") + 1,
            not_before=not_before,
            last_error=error,
            celery_task_id="",
            enqueued_for=None,
        ):
            return
        row.state, row.version, row.not_before = EscalationState.PENDING, row.version + 1, not_before
        if not_before <= now + _horizon():
            _queue(row, at=not_before)


def _next_step(row: Escalation) -> NextStep | None:
    nxt = (
        Escalation.objects.filter(
            ticket_id=row.ticket_id, level__gt=row.level, state=EscalationState.PENDING
        )
        .order_by("level")
        .first()
    )
    return NextStep(nxt.level, nxt.due_at, nxt.target_kind) if nxt else None


@dataclass(frozen=True)
class _Draft:
    """The message for one level, resolved and rendered (database reads only)."""

    text: str
    blocks: list
    notified: list
    details: dict


def _draft(row: Escalation, *, ticket: Ticket, now: datetime) -> _Draft:
    step = row.step
    resolution = resolve_target(
        kind=row.target_kind,
        ref=row.target_ref,
        engineer_id=step.engineer_id if step else None,
        at=now,
    )
    message = render_escalation(
        template=step.message_template if step else "",
        level=row.level,
        mentions=resolution.mentions,
        note=resolution.note,
        opened_at=ticket.opened_at,
        now=now,
        next_step=_next_step(row),
        snooze_minutes=ticket.policy.snooze_minutes if ticket.policy else DEFAULT_SNOOZE_MINUTES,
        ticket_pk=ticket.pk,
        ticket_id=ticket.helpdesk_ticket_id,
        tier=ticket.channel.tier.name,
        priority=ticket.priority,
        time_zone=ticket.channel.tier.time_zone,
    )
    return _Draft(
        text=message.text,
        blocks=message.blocks,
        notified=resolution.notified,
        details={
            "mentions": resolution.mentions,
            "resolved_kind": resolution.kind,
            "fell_through_from": resolution.fell_through_from,
            "note": resolution.note,
        },
    )


def _record(row: Escalation, *, ticket: Ticket, outgoing: OutgoingMessage | None,
            draft: _Draft) -> OutgoingMessage:
    """Write the message down before it is sent (status "sending")."""
    if outgoing is None:
        outgoing = OutgoingMessage(
            idempotency_key=idempotency_key(ticket_id=ticket.pk, level=row.level),
            escalation=row,
            channel=ticket.channel.slack_channel_id,
            thread_ts=ticket.slack_ts,
        )
    outgoing.text, outgoing.notified = draft.text, draft.notified
    outgoing.status = OutgoingStatus.SENDING
    outgoing.attempts += 1
    outgoing.save()
    return outgoing


def _fired(row: Escalation, *, ticket: Ticket, outgoing: OutgoingMessage, slack_ts: str,
           now: datetime, recovered: bool, details: dict) -> str:
    with transaction.atomic():
        # Slack has it, whatever happens to our claim.
        OutgoingMessage.objects.filter(pk=outgoing.pk).update(
            status=OutgoingStatus.SENT, slack_ts=slack_ts, last_error="", updated_at=timezone.now()
        )
        if not _settle(
            row,
            state=EscalationState.FIRED,
            fired_at=now,
            slack_message_ts=slack_ts,
            notified=outgoing.notified,
            not_before=None,
            last_error="",
        ):
            return "lost"
        timeline_record(
            ticket=ticket,
            kind=TicketEventKind.LEVEL_FIRED,
            at=now,
            level=row.level,
            details={
                "notified": outgoing.notified,
                "via": row.fired_via,
                "slack_ts": slack_ts,
                "recovered": recovered,
                **details,
            },
        )
    return "fired"


_HELPDESK_PATHS = {ResponseMode.ZENDESK: ResponsePath.ZENDESK, ResponseMode.FRESHDESK: ResponsePath.FRESHDESK}


def _ticket_of(row: Escalation) -> Ticket:
    return Ticket.objects.select_related("channel__tier", "policy").get(pk=row.ticket_id)


def _helpdesk_answered(ticket: Ticket, *, now: datetime) -> bool:
    """Ask the helpdesk (outside any transaction); a first reply disarms the ticket."""
    try:
        seen = helpdesk_first_reply_seen(ticket=ticket)
    except Exception:  # the helpdesk adapter must never stop a level
        logger.warning("helpdesk check failed for ticket %s; firing", ticket.pk, exc_info=True)
        seen = None
    if not seen:
        return False
    path = _HELPDESK_PATHS.get(ticket.channel.response_mode, ResponsePath.WEBHOOK)
    ticket_mark_responded(ticket=ticket, path=path, actor="helpdesk", at=now)
    return True


def _attempt(row: Escalation, *, ticket: Ticket, outgoing: OutgoingMessage | None,
             draft: _Draft | None, now: datetime) -> str:
    """Post a claimed level (state firing, our version) and settle the row.

    With ``draft`` the message was just recorded; without, an earlier attempt
    may have reached Slack, so look in the thread for its key before posting.
    """
    transport = SlackTransport()
    channel, thread_ts = ticket.channel.slack_channel_id, ticket.slack_ts
    try:
        if draft is None:
            if outgoing is not None and outgoing.status == OutgoingStatus.SENT:
                return _fired(row, ticket=ticket, outgoing=outgoing, slack_ts=outgoing.slack_ts,
                              now=now, recovered=True, details={})
            if outgoing is not None and outgoing.status == OutgoingStatus.SENDING:
                found = transport.find_posted(channel=channel, thread_ts=thread_ts,
                                              key=outgoing.idempotency_key)
                if found:
                    return _fired(row, ticket=ticket, outgoing=outgoing, slack_ts=found, now=now,
                                  recovered=True, details={})
            draft = _draft(row, ticket=ticket, now=now)
            outgoing = _record(row, ticket=ticket, outgoing=outgoing, draft=draft)
        slack_ts = transport.post(
            channel=channel,
            thread_ts=thread_ts,
            text=draft.text,
            blocks=draft.blocks,
            key=outgoing.idempotency_key,
            payload={"ticket": ticket.pk, "level": row.level},
        )
    except RateLimited as exc:
        # Slack refused it: nothing was posted. Come back after Retry-After.
        if outgoing is not None and outgoing.pk and draft is not None:
            OutgoingMessage.objects.filter(pk=outgoing.pk).update(
                status=OutgoingStatus.RETRY, last_error=exc.describe(), updated_at=timezone.now()
            )
        _retry_later(row, delay=exc.retry_after, error=exc.describe(), now=now)
        return "rate_limited"
    except TransientSlackError as exc:
        # May have reached Slack: the record stays "sending", the next attempt looks first.
        if outgoing is not None and outgoing.pk:
            OutgoingMessage.objects.filter(pk=outgoing.pk).update(last_error=exc.describe())
        _retry_later(row, delay=_backoff(row.attempts), error=exc.describe(), now=now)
        return "retry"
    except PermanentSlackError as exc:
        with transaction.atomic():
            if outgoing is not None and outgoing.pk:
                OutgoingMessage.objects.filter(pk=outgoing.pk).update(
                    status=OutgoingStatus.FAILED, last_error=exc.describe(), updated_at=timezone.now()
                )
            if _settle(row, state=EscalationState.FAILED, last_error=exc.describe(), not_before=None):
                timeline_record(
                    ticket=ticket,
                    kind=TicketEventKind.LEVEL_FAILED,
                    at=now,
                    level=row.level,
                    details={"error": exc.describe()},
                )
        logger.error("escalation %s (ticket %s level %s) failed: %s",
                     row.pk, ticket.pk, row.level, exc.describe())
        return "failed"
    return _fired(row, ticket=ticket, outgoing=outgoing, slack_ts=slack_ts, now=now,
                  recovered=False, details=draft.details)


def _deliver(row: Escalation, *, now: datetime) -> str:
    """Fire a level the sweeper has claimed."""
    ticket = _ticket_of(row)
    if ticket.state != TicketState.ARMED or _helpdesk_answered(ticket, now=now):
        _settle(row, state=EscalationState.CANCELLED, not_before=None)
        return "cancelled" if ticket.state != TicketState.ARMED else "responded"
    outgoing = OutgoingMessage.objects.filter(escalation=row).first()
    return _attempt(row, ticket=ticket, outgoing=outgoing, draft=None, now=now)


def escalation_fire(
    *, escalation_id: int, version: int, via: str = FiredVia.TASK, now: datetime | None = None
) -> str:
    """Fire one level if it is still pending at ``version`` and due. Returns
    what happened: fired, stale, early, lost, responded, rate_limited, retry,
    failed or missing."""
    now = _now(now)
    row = (
        Escalation.objects.select_related("step", "ticket__channel__tier", "ticket__policy")
        .filter(pk=escalation_id)
        .first()
    )
    if row is None:
        return "missing"
    if row.state != EscalationState.PENDING or row.version != version:
        return "stale"
    start = max(row.due_at, row.not_before or row.due_at)
    if start > now:
        # Early (clock skew, or a task from before a snooze that kept its version):
        # queue again for the right time, or leave it to the horizon job.
        with transaction.atomic():
            if start <= now + _horizon():
                _queue(row, at=start)
            else:
                Escalation.objects.filter(pk=row.pk, version=row.version).update(enqueued_for=None)
        return "early"
    ticket = row.ticket
    if ticket.state != TicketState.ARMED:
        return "stale"  # answered: its pending levels are (being) cancelled
    if _helpdesk_answered(ticket, now=now):
        return "responded"
    # A level never claimed before has no message recorded: skip the lookup.
    outgoing = OutgoingMessage.objects.filter(escalation_id=row.pk).first() if row.attempts else None
    if outgoing is not None and outgoing.status in (OutgoingStatus.SENT, OutgoingStatus.SENDING):
        # An earlier attempt may have posted: claim, then look before posting.
        if _claim(row, now=now, via=via) is None:
            return "lost"
        return _attempt(row, ticket=ticket, outgoing=outgoing, draft=None, now=now)
    # The common case: resolve and render first, then claim and record in one commit.
    draft = _draft(row, ticket=ticket, now=now)
    with transaction.atomic():
        if _claim(row, now=now, via=via) is None:
            return "lost"
        outgoing = _record(row, ticket=ticket, outgoing=outgoing, draft=draft)
    return _attempt(row, ticket=ticket, outgoing=outgoing, draft=draft, now=now)


@dataclass
class SweepResult:
    outcomes: dict[str, int] = field(default_factory=dict)
    more: bool = False

    @property
    def handled(self) -> int:
        return sum(self.outcomes.values())


def _sweepable(now: datetime) -> Q:
    ready = Q(not_before__isnull=True) | Q(not_before__lte=now)
    pending = Q(state=EscalationState.PENDING, due_at__lte=now - SWEEP_GRACE) & ready
    abandoned = Q(state=EscalationState.FIRING, not_before__lte=now)  # the claimer's lease ran out
    return pending | abandoned


def _claim_next_due(now: datetime) -> Escalation | None:
    due = Escalation.objects.filter(_sweepable(now)).order_by("due_at")
    if connection.vendor == "postgresql":
        # Concurrent sweepers skip each other's rows instead of waiting on them.
        with transaction.atomic():
            row = due.select_for_update(skip_locked=True).first()
            return _claim(row, now=now, via=FiredVia.SWEEPER) if row else None
    # SQLite has no row locks; the conditional update decides, try the next on a loss.
    for row in due[:20]:
        claimed = _claim(row, now=now, via=FiredVia.SWEEPER)
        if claimed is not None:
            return claimed
    return None


def escalations_sweep(
    *, now: datetime | None = None, limit: int = SWEEP_BATCH, budget_seconds: float | None = None
) -> SweepResult:
    """Fire every level that is due and still pending (or whose claimer died),
    whatever happened to its task. Stops after ``limit`` levels or the time
    budget, with ``more`` set so the caller can run again at once."""
    if budget_seconds is None:
        budget_seconds = settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    deadline = time.monotonic() + budget_seconds
    result = SweepResult()
    while True:
        current = _now(now)
        row = _claim_next_due(current)
        if row is None:
            return result
        outcome = _deliver(row, now=current)
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
        if result.handled >= limit or time.monotonic() > deadline:
            result.more = Escalation.objects.filter(_sweepable(_now(now))).exists()
            return result
