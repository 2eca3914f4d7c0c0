"""The admin as the team's console: a ticket's timeline, its next level, "breached".

Used by ops/admin.py (TicketAdmin). Read-only presentation of the rows the
intake and the escalation engine write; nothing here changes state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import IsNull, LessThan
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from base.formatting import duration_precise
from calendars.targets import TargetKind
from escalation.models import Escalation
from escalation.transitions import EscalationState
from tickets.models import Ticket, TicketEventKind

FIRED_STATES = (EscalationState.FIRED, EscalationState.FAILED)
WAITING_STATES = ("pending", "firing")


def _when(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _levels_due(levels: dict, zone: ZoneInfo) -> str:
    """{"1": "2026-03-02T10:10:00+00:00", ...} -> "level 1 due 11:10, level 2 due 11:20 (CET)"."""
    parts = []
    for level, due in sorted(levels.items(), key=lambda item: int(item[0]) if str(item[0]).isdigit() else 0):
        try:
            at = due if isinstance(due, datetime) else datetime.fromisoformat(str(due))
            shown = at.astimezone(zone).strftime("%H:%M %Z") if at.tzinfo else str(due)
        except ValueError:
            shown = str(due)
        parts.append(f"level {level} due {shown}")
    return ", ".join(parts)


def _people(notified) -> str:
    names = []
    for entry in notified or []:
        if isinstance(entry, dict):
            if entry.get("user_group"):
                names.append(f"user group {entry['user_group']}")
            else:
                names.append(entry.get("name") or entry.get("slack_user_id") or str(entry))
        else:
            names.append(str(entry))
    return ", ".join(names) or "nobody"


def _describe(ticket: Ticket, event, escalations: dict[int, Escalation]) -> str:
    details = event.details if isinstance(event.details, dict) else {}
    kind = event.kind
    zone = ticket.channel.tier.zone
    if kind == TicketEventKind.OPENED:
        text = f"Ticket opened in {ticket.channel}"
        seen = details.get("source")
        if seen:
            text += f" (seen through {seen})"
        return text
    if kind == TicketEventKind.ARMED:
        levels = details.get("levels")
        policy = details.get("policy") or ""
        text = "Armed" + (f" with {policy}" if policy else "")
        if isinstance(levels, dict) and levels:
            text += ": " + _levels_due(levels, zone)
        elif levels:
            text += f", {levels} level(s)"
        return text
    if kind == TicketEventKind.LEVEL_FIRED:
        row = escalations.get(event.level or -1)
        notified = details.get("notified") or (row.notified if row else [])
        text = f"Level {event.level} posted in the thread, notified {_people(notified)}"
        note = details.get("note")
        if note:
            text += f" — {note}"
        via = details.get("via") or (row.fired_via if row else "")
        if via:
            text += f" (by the {via})"
        return text
    if kind == TicketEventKind.LEVEL_FAILED:
        row = escalations.get(event.level or -1)
        error = details.get("error") or (row.last_error if row else "")
        return f"Level {event.level} could not be posted" + (f": {error}" if error else "")
    if kind == TicketEventKind.SNOOZED:
        minutes = details.get("minutes")
        text = f"Snoozed by {event.actor or 'someone'}"
        if minutes:
            text += f" for {minutes} min"
        due_times = details.get("due_times")
        if isinstance(due_times, dict) and due_times:
            text += "; now " + _levels_due(due_times, zone)
        return text
    if kind == TicketEventKind.RESPONDED:
        path = details.get("path") or ticket.response_path
        label = dict(Ticket._meta.get_field("response_path").choices).get(path, path) or "unknown path"
        return f"Responded ({label}) by {event.actor or ticket.responded_by or 'unknown'}"
    if details.get("note"):
        return str(details["note"])
    extra = ", ".join(f"{k}: {v}" for k, v in details.items())
    return event.get_kind_display() + (f" — {extra}" if extra else "")


def ticket_timeline(ticket: Ticket) -> list[dict[str, str]]:
    """The ticket's story, oldest first, as rows for people."""
    zone = ticket.channel.tier.zone
    escalations = {e.level: e for e in ticket.escalations.all()}
    events = list(ticket.events.all().order_by("at", "id"))
    rows = []
    if not any(e.kind == TicketEventKind.OPENED for e in events):
        rows.append(
            {
                "at": _when(ticket.opened_at, zone),
                "after": "0 s",
                "what": "Opened",
                "actor": ticket.author_slack_id,
                "text": f"Ticket opened in {ticket.channel}",
            }
        )
    for event in events:
        rows.append(
            {
                "at": _when(event.at, zone),
                "after": duration_precise(event.at - ticket.opened_at),
                "what": event.get_kind_display() + (f" (level {event.level})" if event.level else ""),
                "actor": event.actor,
                "text": _describe(ticket, event, escalations),
            }
        )
    return rows


def ticket_timeline_html(ticket: Ticket) -> SafeString:
    rows = ticket_timeline(ticket)
    body = format_html_join(
        "",
        '<tr class="sb-event"><td>{}</td><td>+{}</td><td><b>{}</b></td><td>{}</td><td>{}</td></tr>',
        ((r["at"], r["after"], r["what"], r["actor"], r["text"]) for r in rows),
    )
    return format_html(
        '<table class="sb-timeline" id="sb-timeline"><thead><tr><th>when</th><th>after opening</th>'
        "<th>what</th><th>who</th><th>details</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


def ticket_next_level(ticket: Ticket, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    if ticket.state != "armed":
        return f"none: {ticket.get_state_display().lower()}"
    row = ticket.escalations.filter(state__in=WAITING_STATES).order_by("due_at", "level").first()
    if row is None:
        return "none: every level has run"
    zone = ticket.channel.tier.zone
    target = dict(TargetKind.choices).get(row.target_kind, row.target_kind)
    if row.target_ref:
        target += f" ({row.target_ref})"
    delta = row.due_at - now
    gap = duration_precise(delta)
    when = f"in {gap}" if delta.total_seconds() >= 0 else f"overdue by {gap}"
    return f"Level {row.level} due {_when(row.due_at, zone)} ({when}) → {target}"


def breached_q(now: datetime | None = None) -> Q:
    """A ticket is breached when one of its levels fired (or failed to post),
    or a level's due time passed before the response (or before now, while no
    response came). Levels cancelled by a response before they were due, and
    tickets without a policy, are not breaches.

    Written as two scalar subqueries with LIMIT 1 rather than EXISTS: PostgreSQL
    runs them per ticket on the (ticket, due_at) and posted-levels indexes, where
    an EXISTS becomes a join that reads the whole escalation table (100,000 armed
    tickets are 400,000 level rows)."""
    now = now or datetime.now(UTC)
    levels = Escalation.objects.filter(ticket=OuterRef("pk"))
    first_due = Subquery(levels.order_by("due_at").values("due_at")[:1])
    posted = Subquery(levels.filter(state__in=FIRED_STATES).order_by().values("pk")[:1])
    deadline = Coalesce(F("responded_at"), Value(now))
    return Q(LessThan(first_due, deadline)) | Q(IsNull(posted, False))


def ticket_is_breached(ticket: Ticket, now: datetime | None = None) -> bool:
    return Ticket.objects.filter(pk=ticket.pk).filter(breached_q(now)).exists()


class BreachedFilter(admin.SimpleListFilter):
    title = "breached"
    parameter_name = "breached"

    def lookups(self, request, model_admin):
        return (
            ("yes", "Breached (a level fired, or was due before the response)"),
            ("no", "Within SLA so far"),
        )

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(breached_q())
        if self.value() == "no":
            return queryset.exclude(breached_q())
        return queryset


class TicketConsoleMixin:
    """Read-only console fields for TicketAdmin: timeline, state, next level."""

    console_fields = ("current_state", "next_level", "timeline")

    @admin.display(description="current state")
    def current_state(self, obj: Ticket) -> str:
        if obj.pk is None:
            return "-"
        text = obj.get_state_display()
        if obj.responded_at:
            text += f" after {duration_precise(obj.responded_at - obj.opened_at)}"
        return text + (" — breached" if ticket_is_breached(obj) else " — within SLA")

    @admin.display(description="next level")
    def next_level(self, obj: Ticket) -> str:
        return ticket_next_level(obj) if obj.pk else "-"

    @admin.display(description="timeline")
    def timeline(self, obj: Ticket) -> SafeString:
        return ticket_timeline_html(obj) if obj.pk else format_html("-")
