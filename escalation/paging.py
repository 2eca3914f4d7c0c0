"""The page step: page outside Slack, say so in the thread, resolve when the ticket ends.

A level of kind ``page`` fires through the same claim as every level
(escalation/firing.py), and then:

1. its page is written down in the outbox table under ``page:ticket:<id>:level:<n>``
   with a ``dedup_key`` made of the ticket and the level (the same for every attempt);
2. it is sent (``base.pages.page_send``); a 5xx, a timeout or a rate limit
   releases the level for a retry, and the retry sends the same key again, which
   the pager de-duplicates (one incident);
3. the thread is told, through the outbox like every post: "Paged PagerDuty:
   incident …", or, when the page failed for good, the head of success is mentioned.

When the ticket is answered (or closed), ``ticket_pages_resolve_record`` writes
a resolve down for each page, in the same transaction as the response, and a
task sends them (``ticket_pages_resolve``); a beat job sends whatever that task
missed. A resolve is sent only once its page may have been sent: a page still
being sent waits for its sender; a page that never left is given up instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from base.formatting import duration_text
from base.helpdesk import helpdesk_ticket_url
from base.models import OutboxMessage, OutboxPurpose, OutboxStatus
from base.outbox import DeliveryStatus
from base.page_credentials import credential_name_for
from base.pages import (
    RESOLVE,
    SEVERITY,
    TRIGGER,
    PageDelivery,
    PageEvent,
    page_certainly_unsent,
    page_in_flight,
    page_record,
    page_send,
    page_skip,
    provider_label,
)
from base.slack_links import slack_message_url
from base.tasks_by_name import task_send_on_commit
from calendars.resolve import resolve_target
from calendars.targets import TargetKind
from escalation import keys
from escalation.messages import PAGED_TEMPLATE, NextStep, render_escalation
from escalation.models import Escalation
from escalation.snooze import ticket_snooze_minutes
from escalation.transitions import EscalationState
from tickets.models import Ticket, TicketEventKind
from tickets.timeline import timeline_record

logger = logging.getLogger("slabuddy.escalation")

RESOLVE_TASK = "escalation.tasks.ticket_pages_resolve"
RESOLVE_SUFFIX = ":resolve"
NOT_PAGED_TEMPLATE = (
    ":warning: *Level {level}* could not page {pager} ({error}). {mentions} please look at this "
    "ticket: it has waited {waited} without a response.\n"
    "{note}"
    "Next: {next_step}."
)


def page_key(*, ticket_id: int, level: int, cycle: int = 1) -> str:
    return keys.page_key(ticket_id=ticket_id, level=level, cycle=cycle)


def page_dedup_key(ticket: Ticket, *, level: int, cycle: int = 1) -> str:
    """Ticket, cycle and level, unique beyond this database (the Slack channel and message)."""
    where = f"slabuddy:{ticket.channel.slack_channel_id}:{ticket.slack_ts}"
    return f"{where}:level:{level}" if cycle == 1 else f"{where}:cycle:{cycle}:level:{level}"


# --- triggering -------------------------------------------------------------------------


def page_level_event(row: Escalation, *, ticket: Ticket, now: datetime) -> PageEvent:
    """What the page says (reads the database, and Slack once per process for the link:
    call it outside any transaction)."""
    channel = ticket.channel
    waited = duration_text(now - ticket.opened_at)
    priority = ticket.priority or "unset"
    ref = f"#{ticket.helpdesk_ticket_id}" if ticket.helpdesk_ticket_id else f"in #{channel.name}"
    title = f"{channel.tier.name} {priority}-priority ticket {ref} unanswered for {waited}"
    thread_url = slack_message_url(channel=channel.slack_channel_id, ts=ticket.slack_ts)
    helpdesk_url = helpdesk_ticket_url(provider=channel.response_mode, ticket_id=ticket.helpdesk_ticket_id)
    admin_url = f"{settings.SITE_URL}/admin/tickets/ticket/{ticket.pk}/change/"
    lines = [
        f"SLA Buddy level {row.level}: nobody has answered this {channel.tier.name} ticket "
        f"(priority {priority}) in #{channel.name} for {waited}.",
        f"Slack thread: {thread_url}",
    ]
    if helpdesk_url:
        lines.append(f"Helpdesk ticket: {helpdesk_url}")
    if ticket.text:
        lines.append(f"Ticket: {ticket.text[:500]}")
    return PageEvent(
        action=TRIGGER,
        dedup_key=page_dedup_key(ticket, level=row.level, cycle=row.cycle),
        title=title,
        message="\n".join(lines),
        severity=SEVERITY.get(ticket.priority, "warning"),
        helpdesk_url=helpdesk_url,
        thread_url=thread_url,
        admin_url=admin_url,
        details={
            "ticket": ticket.pk,
            "helpdesk_ticket_id": ticket.helpdesk_ticket_id,
            "tier": channel.tier.name,
            "priority": ticket.priority,
            "level": row.level,
            "cycle": row.cycle,
            "channel": channel.name,
            "opened_at": ticket.opened_at.isoformat(),
        },
    )


def page_level_record(row: Escalation, *, ticket: Ticket, event: PageEvent) -> OutboxMessage:
    """Write the level's page down (idempotent: the row keeps what it may have sent)."""
    return page_record(
        key=page_key(ticket_id=ticket.pk, level=row.level, cycle=row.cycle),
        provider=row.page_provider,
        credential=credential_name_for(provider=row.page_provider, credential=row.page_credential),
        event=event,
        channel=ticket.channel.slack_channel_id,
        thread_ts=ticket.slack_ts,
        context={"ticket": ticket.pk, "level": row.level, "cycle": row.cycle},
    )


def page_level_abandon(page: OutboxMessage) -> bool:
    """The ticket was answered after the level was claimed: do not page (if it never left)."""
    return page_skip(page, reason="the ticket was answered before the page was sent")


@dataclass(frozen=True)
class PageDraft:
    """The thread message of a page level, and what the level row records."""

    text: str
    blocks: list
    notified: list
    details: dict = field(default_factory=dict)


def page_level_draft(
    row: Escalation, *, ticket: Ticket, delivery: PageDelivery, next_step: NextStep | None, now: datetime
) -> PageDraft:
    """ "Paged PagerDuty: incident …" after a page, or the head of success after a failed one."""
    label = delivery.provider_label
    common = {
        "level": row.level,
        "opened_at": ticket.opened_at,
        "now": now,
        "next_step": next_step,
        "snooze_minutes": ticket_snooze_minutes(ticket.pk),
        "ticket_pk": ticket.pk,
        "ticket_id": ticket.helpdesk_ticket_id,
        "tier": ticket.channel.tier.name,
        "priority": ticket.priority,
        "time_zone": ticket.channel.tier.time_zone,
    }
    provider = (delivery.message.payload or {}).get("provider", "")
    details = {"paged": provider, "page_key": delivery.message.key, "cycle": row.cycle}
    if delivery.status == DeliveryStatus.SENT:
        paged = f"{label}: incident `{delivery.reference}`"
        template = (row.message_template or PAGED_TEMPLATE).replace("{paged}", _literal(paged))
        message = render_escalation(template=template, mentions=[], note="", **common)
        notified = [{"name": f"{label} (incident {delivery.reference})", "pager": details["paged"],
                     "reference": delivery.reference}]
        return PageDraft(message.text, message.blocks, notified, {**details, "reference": delivery.reference})
    # Failed for good (refused, or no credential on this server): a person must know.
    fallback = resolve_target(kind=TargetKind.HEAD_OF_SUCCESS, at=now)
    template = (
        NOT_PAGED_TEMPLATE.replace("{pager}", _literal(label)).replace("{error}", _literal(delivery.error))
    )
    message = render_escalation(template=template, mentions=fallback.mentions, note=fallback.note, **common)
    return PageDraft(message.text, message.blocks, fallback.notified,
                     {**details, "page_error": delivery.error, "mentions": fallback.mentions})


def _literal(text: str) -> str:
    """Text put into a template before it is formatted: its braces are not placeholders."""
    return text.replace("{", "{{").replace("}", "}}")


# --- resolving --------------------------------------------------------------------------


def _pages_of(ticket_id: int):
    first, cycles = keys.page_keys_prefixes(ticket_id)
    return OutboxMessage.objects.filter(
        Q(key__startswith=first) | Q(key__startswith=cycles), purpose=OutboxPurpose.PAGE
    )


def ticket_pages_resolve_record(*, ticket_id: int, why: str = "Answered") -> int:
    """Write down a resolve for every page of the ticket, in the caller's transaction
    (the response, or the close), and send them after commit. Returns how many."""
    resolved = set(_pages_of(ticket_id).filter(key__endswith=RESOLVE_SUFFIX).values_list("key", flat=True))
    triggers = [
        page for page in _pages_of(ticket_id)
        if not page.key.endswith(RESOLVE_SUFFIX) and not _never_sent(page)
        and page.key + RESOLVE_SUFFIX not in resolved  # resolved when an earlier cycle ended
    ]
    for trigger in triggers:
        payload = trigger.payload or {}
        event = PageEvent.from_json(payload.get("event") or {})
        page_record(
            key=trigger.key + RESOLVE_SUFFIX,
            provider=payload.get("provider", ""),
            credential=payload.get("credential", ""),
            event=replace(event, action=RESOLVE, title=f"{why}: {event.title}"),
            channel=trigger.channel,
            thread_ts=trigger.thread_ts,
            context={**(trigger.context or {}), "reference": ""},
        )
    if triggers:
        task_send_on_commit(RESOLVE_TASK, args=(ticket_id,), why_safe="the beat job 'resolve pages' sends it")
    return len(triggers)


def _never_sent(page: OutboxMessage) -> bool:
    """Given up before any attempt (refused by a missing credential, or skipped)."""
    return page.status == OutboxStatus.FAILED and page.attempts == 0


@dataclass
class ResolveResult:
    sent: int = 0
    waiting: int = 0  # its page is being sent right now: try again shortly
    skipped: int = 0  # its page never left: nothing to resolve
    failed: int = 0  # retried later (rate limit, outage) or given up (refused)


def ticket_pages_resolve(*, ticket_id: int, now: datetime | None = None) -> ResolveResult:
    """Send the recorded resolves of a ticket whose pages may have been sent."""
    now = now or timezone.now()
    result = ResolveResult()
    pending = _pages_of(ticket_id).filter(
        key__endswith=RESOLVE_SUFFIX, status__in=(OutboxStatus.NEW, OutboxStatus.RETRY, OutboxStatus.SENDING)
    )
    for resolve in pending.order_by("pk"):
        trigger = OutboxMessage.objects.filter(key=resolve.key.removesuffix(RESOLVE_SUFFIX)).first()
        level = (resolve.context or {}).get("level")
        cycle = (resolve.context or {}).get("cycle") or 1
        if trigger is None or _never_sent(trigger):
            page_skip(resolve, reason="its page was never sent")
            result.skipped += 1
            continue
        firing = Escalation.objects.filter(ticket_id=ticket_id, cycle=cycle, level=level,
                                           state=EscalationState.FIRING)
        if page_in_flight(trigger) or firing.exists():
            result.waiting += 1
            continue
        if page_certainly_unsent(trigger):
            # Its level was cancelled by the response before the page left: it never will.
            if page_skip(trigger, reason="the ticket was answered before the page was sent"):
                page_skip(resolve, reason="its page was never sent")
                result.skipped += 1
            else:
                result.waiting += 1
            continue
        delivery = page_send(resolve)
        if delivery.status == DeliveryStatus.SENT:
            result.sent += 1
            _resolved_note(ticket_id=ticket_id, level=level, trigger=trigger, delivery=delivery, now=now)
        elif delivery.status == DeliveryStatus.IN_FLIGHT:
            result.waiting += 1
        else:
            result.failed += 1
    return result


def _resolved_note(*, ticket_id: int, level, trigger: OutboxMessage, delivery: PageDelivery, now) -> None:
    if delivery.recovered:
        return  # noted by the attempt that sent it
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        return
    reference = (trigger.context or {}).get("reference") or delivery.reference
    label = provider_label((trigger.payload or {}).get("provider", ""))
    timeline_record(
        ticket=ticket,
        kind=TicketEventKind.NOTE,
        at=now,
        level=level if isinstance(level, int) else None,
        actor="system",
        details={"note": f"Resolved the {label} incident {reference}: the ticket was answered or closed.",
                 "page_key": delivery.message.key},
    )


def pages_resolve_pending(*, now: datetime | None = None, limit: int = 200) -> ResolveResult:
    """The beat job: send every resolve still waiting, whatever happened to its task."""
    total = ResolveResult()
    contexts = OutboxMessage.objects.filter(
        purpose=OutboxPurpose.PAGE, key__endswith=RESOLVE_SUFFIX,
        status__in=(OutboxStatus.NEW, OutboxStatus.RETRY, OutboxStatus.SENDING),
    ).order_by("updated_at").values_list("context", flat=True)[:limit]
    ticket_ids = sorted({c.get("ticket") for c in contexts if isinstance(c, dict) and c.get("ticket")})
    for ticket_id in ticket_ids:
        result = ticket_pages_resolve(ticket_id=ticket_id, now=now)
        for name in ("sent", "waiting", "skipped", "failed"):
            setattr(total, name, getattr(total, name) + getattr(result, name))
    return total
