"""Every change of an escalation level's state, each one conditional UPDATE.

    pending --claim--> firing --settle_fired--> fired
                          |----settle_failed--> failed
                          |----settle_cancelled--> cancelled
                          '----release_for_retry--> pending (later, new version)
    pending --cancel_pending--> cancelled        pending --postpone--> pending (new version)
    pending --pause--> paused --resume--> pending (due its remaining time after the resume)
    paused --cancel_pending--> cancelled

A method returns whether this call made the change (the row was still in the
state and at the version it expected); the caller acts only if it did. A
``firing`` row whose lease (``not_before``) ran out may be claimed again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone


class Escalation(Protocol):
    """What a transition reads of a level row (escalation.models.Escalation)."""

    pk: Any
    state: str
    version: int
    due_at: datetime


class EscalationState(models.TextChoices):
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing (claimed by a worker)"
    FIRED = "fired", "Fired"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed (permanent Slack error)"
    PAUSED = "paused", "Paused (waiting on customer)"


class EscalationQuerySet(models.QuerySet):
    # -- queueing (no state change, but only while pending at this version) ----
    def mark_queued(self, row: Escalation, *, task_id: str) -> bool:
        return bool(
            self.filter(pk=row.pk, state=EscalationState.PENDING, version=row.version).update(
                celery_task_id=task_id, enqueued_for=row.due_at, updated_at=timezone.now()
            )
        )

    def forget_queued(self, row: Escalation) -> bool:
        return bool(
            self.filter(pk=row.pk, state=EscalationState.PENDING, version=row.version).update(
                enqueued_for=None
            )
        )

    # -- pending -> firing -------------------------------------------------------
    def claim(self, row: Escalation, *, now: datetime, via: str, lease: timedelta) -> bool:
        """Take ``row`` for firing, from pending or from a firing claim whose lease ran out."""
        claimable = self.filter(pk=row.pk, state=row.state, version=row.version, due_at__lte=now)
        return bool(claimable.update(**_claimed(now=now, via=via, lease=lease)))

    def claim_locked(self, rows: list[Escalation], *, now: datetime, via: str, lease: timedelta) -> int:
        """``claim`` for many rows in one statement. The caller holds their row locks (SELECT ...
        FOR UPDATE in its transaction, read as claimable), so each is still as it was read."""
        return self.filter(pk__in=[row.pk for row in rows]).update(**_claimed(now=now, via=via, lease=lease))

    # -- firing -> ... (only while our claim holds) ------------------------------
    def _settle(self, row: Escalation, **changes: Any) -> bool:
        changes.setdefault("updated_at", timezone.now())
        return bool(
            self.filter(pk=row.pk, state=EscalationState.FIRING, version=row.version).update(**changes)
        )

    def settle_fired(self, row: Escalation, *, at: datetime, slack_ts: str, notified: list) -> bool:
        return self._settle(row, slack_message_ts=slack_ts, notified=notified, **_fired(at=at))

    def settle_fired_many(self, fired: list[tuple[Escalation, str, list]], *, at: datetime) -> int:
        """``settle_fired`` for many (row, slack ts, notified) in one statement; the number settled
        (fewer than given if a claim ran out meanwhile: the caller then settles one by one)."""
        if not fired:
            return 0
        ours = Q()
        for row, _, _ in fired:
            ours |= Q(pk=row.pk, version=row.version)
        opts = self.model._meta
        ts_field, notified_field = opts.get_field("slack_message_ts"), opts.get_field("notified")
        return self.filter(ours, state=EscalationState.FIRING).update(
            **_fired(at=at),
            slack_message_ts=Case(*[When(pk=row.pk, then=Value(ts)) for row, ts, _ in fired],
                                  output_field=ts_field),
            notified=Case(*[When(pk=row.pk, then=Value(notified, output_field=notified_field))
                            for row, _, notified in fired], output_field=notified_field),
            updated_at=timezone.now(),
        )

    def settle_failed(self, row: Escalation, *, error: str) -> bool:
        return self._settle(row, state=EscalationState.FAILED, last_error=error, not_before=None)

    def settle_cancelled(self, row: Escalation) -> bool:
        return self._settle(row, state=EscalationState.CANCELLED, not_before=None)

    def _release(self, row: Escalation, *, not_before: datetime, error: str, **changes: Any) -> bool:
        return self._settle(
            row,
            state=EscalationState.PENDING,
            version=F("version") + 1,
            not_before=not_before,
            last_error=error,
            celery_task_id="",
            enqueued_for=None,
            **changes,
        )

    def release_for_retry(self, row: Escalation, *, not_before: datetime, error: str) -> bool:
        return self._release(row, not_before=not_before, error=error)

    def release_for_turn(self, row: Escalation, *, not_before: datetime, error: str) -> bool:
        """Pending again until its channel's turn: a wait, not a failed attempt, so the claim's
        attempt is given back (later backoffs stay as they were)."""
        return self._release(row, not_before=not_before, error=error, attempts=F("attempts") - 1)

    def wait_for_turn(self, row: Escalation, *, not_before: datetime, task_id: str, error: str) -> bool:
        """A due level read as pending at its version (not locked) waits for its channel's turn as
        ``wait_for_turn_locked`` makes it, if it is still so."""
        pending = self.filter(pk=row.pk, state=EscalationState.PENDING, version=row.version)
        return bool(pending.wait_for_turn_locked([(row, not_before, task_id)], error=error))

    def wait_for_turn_locked(self, waits: list[tuple[Escalation, datetime, str]], *, error: str) -> int:
        """Due levels the caller has locked (pending, or a claim whose lease ran out) wait, pending,
        until their channels' turns: (row, its turn, the id of its delayed task for then, or "" to
        leave it to the horizon job), in one statement; queued as ``mark_queued`` marks it."""
        if not waits:
            return 0
        fields = self.model._meta
        return self.filter(pk__in=[row.pk for row, _, _ in waits]).update(
            state=EscalationState.PENDING,
            version=F("version") + 1,
            not_before=Case(*[When(pk=row.pk, then=Value(at)) for row, at, _ in waits],
                            output_field=fields.get_field("not_before")),
            last_error=error,
            celery_task_id=Case(*[When(pk=row.pk, then=Value(task_id)) for row, _, task_id in waits],
                                output_field=fields.get_field("celery_task_id")),
            enqueued_for=Case(When(pk__in=[row.pk for row, _, task_id in waits if task_id], then=F("due_at")),
                              default=None, output_field=fields.get_field("enqueued_for")),
            updated_at=timezone.now(),
        )

    def repoint_message(
        self, *, ticket_id: int, level: int, cycle: int, deleted: list[str], kept: str
    ) -> int:
        """A fired level whose message was deleted as a duplicate refers to the one kept."""
        rows = self.filter(ticket_id=ticket_id, level=level, cycle=cycle, state=EscalationState.FIRED,
                           slack_message_ts__in=deleted)
        return rows.update(slack_message_ts=kept, updated_at=timezone.now())

    # -- pending -> ... ----------------------------------------------------------
    def postpone(self, row: Escalation, *, to: datetime) -> bool:
        """Move a pending level to a new due time (a snooze); its queued task becomes stale."""
        return bool(
            self.filter(pk=row.pk, state=EscalationState.PENDING, version=row.version).update(
                due_at=to,
                version=F("version") + 1,
                celery_task_id="",
                enqueued_for=None,
                updated_at=timezone.now(),
            )
        )

    # -- waiting on customer (pause, not reset) ----------------------------------
    def pause(self, row: Escalation, *, remaining: timedelta) -> bool:
        """Stop a pending level's clock: it keeps ``remaining``; its queued task becomes stale."""
        return bool(
            self.filter(pk=row.pk, state=EscalationState.PENDING, version=row.version).update(
                state=EscalationState.PAUSED,
                paused_remaining=remaining,
                version=F("version") + 1,
                not_before=None,
                celery_task_id="",
                enqueued_for=None,
                updated_at=timezone.now(),
            )
        )

    def resume(self, row: Escalation, *, due_at: datetime) -> bool:
        """Run a paused level's clock again: due ``due_at`` (the resume + its remaining time)."""
        return bool(
            self.filter(pk=row.pk, state=EscalationState.PAUSED, version=row.version).update(
                state=EscalationState.PENDING,
                due_at=due_at,
                paused_remaining=None,
                version=F("version") + 1,
                updated_at=timezone.now(),
            )
        )

    def cancel_pending(self, *, ticket_id: int) -> list[tuple[int, str]]:
        """Cancel every level of a ticket still to fire (pending, or paused while waiting);
        returns (level, task id) of each."""
        to_fire = (EscalationState.PENDING, EscalationState.PAUSED)
        pending = self.filter(ticket_id=ticket_id, state__in=to_fire)
        cancelled = list(pending.values_list("level", "celery_task_id"))
        pending.update(
            state=EscalationState.CANCELLED,
            version=F("version") + 1,
            not_before=None,
            updated_at=timezone.now(),
        )
        return cancelled


def _claimed(*, now: datetime, via: str, lease: timedelta) -> dict[str, Any]:
    """What a claim writes: firing, a new version, its lease, one attempt more, who claimed it."""
    return {"state": EscalationState.FIRING, "version": F("version") + 1, "not_before": now + lease,
            "attempts": F("attempts") + 1, "fired_via": via, "updated_at": now}


def _fired(*, at: datetime) -> dict[str, Any]:
    """What settling a level as fired writes besides its message: fired then, no lease, no error."""
    return {"state": EscalationState.FIRED, "fired_at": at, "not_before": None, "last_error": ""}
