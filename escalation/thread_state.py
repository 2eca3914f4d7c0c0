"""The thread shows the state: every escalation message already posted in a ticket's current
cycle is updated (``chat.update``) when the ticket is answered, closed, paused, resumed or
snoozed, with a line saying so and the buttons that fit the new state.

The new content is written into the outbox (``base.outbox.outbox_update_record``, one row per
posted message, keyed ``update:<the post's key>``) in the transaction that changed the state,
and sent after commit by a task; the beat job "escalation: update threads" sends whatever that
task missed (a rate limit, an outage, a lost task). The last state recorded is what Slack ends
up showing: a later change rewrites the same row and sends it again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from base.formatting import duration_text, slack_time
from base.models import OutboxMessage, OutboxPurpose, OutboxStatus
from base.outbox import DeliveryStatus, outbox_update_record, outbox_update_send
from base.tasks_by_name import task_send_on_commit
from escalation.keys import post_key
from escalation.messages import ACTIONS_BLOCK_ID, lifecycle_buttons, slack_escaped
from escalation.models import (
    DEFAULT_SNOOZE_MINUTES,
    Escalation,
    SnoozeRequest,
    TicketCycle,
    TicketPause,
    TicketSla,
)
from escalation.transitions import EscalationState
from tickets.models import CLOSED_HOW, Ticket, TicketState, TicketVia

logger = logging.getLogger("slabuddy.escalation")

UPDATE_TASK = "escalation.tasks.ticket_thread_updates_send"
STATE_BLOCK_ID = "slabuddy_state"
UPDATE_PREFIX = "update:"
# The beat job leaves a fresh update this long to its own task.
SWEEP_AFTER = timedelta(seconds=30)
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def update_key(post: str) -> str:
    return UPDATE_PREFIX + post


def _who(actor: str) -> str:
    actor = (actor or "").strip()
    if _SLACK_USER.match(actor):
        return f"<@{actor}>"
    return slack_escaped(actor) or "someone"


def _levels(numbers: list[int]) -> str:
    if not numbers:
        return ""
    if len(numbers) == 1:
        return f"level {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"levels {numbers[0]}–{numbers[-1]}"
    return "levels " + ", ".join(map(str, numbers))


_RESUMED_WHY = {
    TicketVia.CUSTOMER: "the customer replied",
    TicketVia.HELPDESK: "the helpdesk ticket is open again",
    TicketVia.BUTTON: "Resume button",
    TicketVia.REACTION: "reaction removed",
}


@dataclass(frozen=True)
class ThreadState:
    """What the current cycle's messages say now, and which buttons they show."""

    line: str
    buttons: str  # "armed", "waiting" or "" (none)


def _cancelled_after(rows: list[Escalation]) -> str:
    fired = [r.level for r in rows if r.state == EscalationState.FIRED]
    top = max(fired, default=0)
    cancelled = sorted(r.level for r in rows if r.state == EscalationState.CANCELLED and r.level > top)
    return f" — {_levels(cancelled)} cancelled" if cancelled else ""


def _next_due(rows: list[Escalation]) -> str:
    pending = sorted((r for r in rows if r.state == EscalationState.PENDING),
                     key=lambda r: (r.due_at, r.level))
    if not pending:
        return ""
    return f", next level {pending[0].level} at {slack_time(pending[0].due_at)}"


def thread_state(*, ticket: Ticket, cycle: TicketCycle, rows: list[Escalation]) -> ThreadState:
    """The state line for a cycle's messages (a pure function of the rows read)."""
    if cycle.responded_at is not None:
        line = (f":white_check_mark: Answered by {_who(cycle.responded_by)} after "
                f"{duration_text(cycle.responded_at - cycle.started_at)}{_cancelled_after(rows)}.")
        if ticket.state == TicketState.CLOSED and ticket.closed_at:
            line += f" Closed {CLOSED_HOW.get(ticket.closed_via, '')} at {slack_time(ticket.closed_at)}."
        return ThreadState(line.replace("  ", " "), "")
    if cycle.closed_at is not None:
        how = CLOSED_HOW.get(cycle.closed_via, "")
        by = "" if cycle.closed_via == TicketVia.DELETED else f" by {_who(cycle.closed_by)}"
        line = (f":lock: Closed{by} {how} after {duration_text(cycle.closed_at - cycle.started_at)} "
                f"without a reply{_cancelled_after(rows)}.")
        return ThreadState(line.replace("  ", " "), "")
    pause = TicketPause.objects.filter(ticket_id=ticket.pk, cycle=cycle.number).order_by("-paused_at").first()
    if ticket.state == TicketState.WAITING and pause is not None and pause.resumed_at is None:
        line = (f":hourglass_flowing_sand: Waiting on customer since {slack_time(pause.paused_at)} "
                f"(marked by {_who(pause.paused_by)}): escalations are paused until the customer writes "
                "again.")
        return ThreadState(line, "waiting")
    snoozes = SnoozeRequest.objects.filter(ticket_id=ticket.pk, applied=True)
    if cycle.number > 1:
        snoozes = snoozes.filter(at__gte=cycle.started_at)  # not the snoozes of earlier cycles
    snooze = snoozes.order_by("-at").first()
    resumed = pause.resumed_at if pause is not None and pause.resumed_at is not None else None
    if resumed is not None and (snooze is None or snooze.at <= resumed):
        why = _RESUMED_WHY.get(pause.resumed_via, "")
        line = f":arrow_forward: Resumed at {slack_time(resumed)}" + (f" ({why})" if why else "")
        return ThreadState(line + _next_due(rows) + ".", "armed")
    if snooze is not None:
        return ThreadState(f":zzz: Snoozed by {_who(snooze.actor)}{_next_due(rows)}.", "armed")
    return ThreadState("", "armed")


def _content(original: OutboxMessage, state: ThreadState, *, ticket_pk: int, snooze_minutes: int
             ) -> tuple[str, list]:
    blocks = [
        block for block in (original.blocks or [])
        if isinstance(block, dict) and block.get("type") != "actions"
        and block.get("block_id") not in (STATE_BLOCK_ID, ACTIONS_BLOCK_ID)
    ]
    if state.line:
        blocks.append({"type": "context", "block_id": STATE_BLOCK_ID,
                       "elements": [{"type": "mrkdwn", "text": state.line}]})
    blocks += lifecycle_buttons(state=state.buttons, ticket_pk=ticket_pk, snooze_minutes=snooze_minutes)
    return original.text, blocks  # the text is the notification's fallback: what was posted


def ticket_thread_refresh(*, ticket_id: int) -> int:
    """Write down what each posted message of the ticket's current cycle should show now, in the
    caller's transaction, and send it after commit. Returns how many messages changed."""
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    cycle = TicketCycle.objects.filter(ticket_id=ticket_id).order_by("-number").first()
    if ticket is None or cycle is None:
        return 0
    rows = list(Escalation.objects.filter(ticket_id=ticket_id, cycle=cycle.number).order_by("level"))
    posted = [r for r in rows if r.state == EscalationState.FIRED and r.slack_message_ts]
    if not posted:
        return 0
    state = thread_state(ticket=ticket, cycle=cycle, rows=rows)
    minutes = (TicketSla.objects.filter(ticket_id=ticket_id).values_list("snooze_minutes", flat=True).first()
               or DEFAULT_SNOOZE_MINUTES)
    keys = {post_key(ticket_id=ticket_id, level=r.level, cycle=r.cycle): r for r in posted}
    changed = 0
    for original in OutboxMessage.objects.filter(key__in=list(keys), status=OutboxStatus.SENT):
        row = keys[original.key]
        text, blocks = _content(original, state, ticket_pk=ticket_id, snooze_minutes=minutes)
        recorded = OutboxMessage.objects.filter(key=update_key(original.key))
        if recorded.values_list("text", "blocks").first() == (text, blocks):
            continue
        outbox_update_record(key=update_key(original.key), channel=original.channel,
                             ts=original.slack_ts or row.slack_message_ts, text=text, blocks=blocks,
                             context={"ticket": ticket_id, "cycle": row.cycle, "level": row.level})
        changed += 1
    if changed:
        task_send_on_commit(UPDATE_TASK, args=(ticket_id,), why_safe="the beat job 'update threads' sends it")
    return changed


@dataclass
class UpdateResult:
    sent: int = 0
    retry: int = 0  # rate limited, ambiguous or being sent: try again later
    failed: int = 0  # Slack refused it for good (message deleted, say)
    retry_after: float = 0.0


def _due_updates():
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return OutboxMessage.objects.filter(
        free, purpose=OutboxPurpose.UPDATE,
        status__in=(OutboxStatus.NEW, OutboxStatus.RETRY, OutboxStatus.SENDING),
    )


def ticket_thread_updates_send(*, ticket_id: int) -> UpdateResult:
    """Send the ticket's recorded updates that are due (outside any transaction)."""
    result = UpdateResult()
    due = _due_updates().filter(key__startswith=f"{UPDATE_PREFIX}ticket:{ticket_id}:")
    for message in due.order_by("pk"):
        delivery = outbox_update_send(message)
        if delivery.status == DeliveryStatus.SENT:
            result.sent += 1
        elif delivery.status == DeliveryStatus.PERMANENT:
            result.failed += 1
        else:
            result.retry += 1
            result.retry_after = max(result.retry_after, delivery.retry_after)
    return result


def thread_updates_send_pending(*, limit: int = 200, older_than: timedelta = SWEEP_AFTER) -> UpdateResult:
    """The beat job: send every update still due ``older_than`` after it was recorded."""
    total = UpdateResult()
    stale = _due_updates().filter(updated_at__lte=timezone.now() - older_than).order_by("updated_at")
    for message in stale[:limit]:
        delivery = outbox_update_send(message)
        if delivery.status == DeliveryStatus.SENT:
            total.sent += 1
        elif delivery.status == DeliveryStatus.PERMANENT:
            total.failed += 1
        else:
            total.retry += 1
    return total
