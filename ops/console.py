"""The admin as the team's console: a ticket's timeline, its next level, "breached".

Used by ops/admin.py (TicketAdmin). Read-only presentation of the rows the
intake and the escalation engine write; nothing here changes state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.db.models import Exists, QuerySet
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from base.formatting import duration_precise
from calendars.targets import TargetKind
from escalation import breach
from escalation.models import Escalation, TicketSla
from tickets.models import CLOSED_HOW, Ticket, TicketEventKind, TicketState, TicketVia

WAITING_STATES = ("pending", "firing")


def _when(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _clock_time(value, zone: ZoneInfo) -> str:
    """An ISO time from a timeline entry as '11:10 CET' in the tier's zone."""
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return at.astimezone(zone).strftime("%H:%M %Z") if at.tzinfo else str(value)
    except ValueError:
        return str(value)


def _levels_due(levels: dict, zone: ZoneInfo) -> str:
    """{"1": "2026-03-02T10:10:00+00:00", ...} -> "level 1 due 11:10, level 2 due 11:20 (CET)"."""
    parts = []
    for level, due in sorted(levels.items(), key=lambda item: int(item[0]) if str(item[0]).isdigit() else 0):
        parts.append(f"level {level} due {_clock_time(due, zone)}")
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


def _via(value) -> str:
    return dict(TicketVia.choices).get(value, value or "unknown").lower()


def _describe_lifecycle(ticket: Ticket, event, details: dict, zone: ZoneInfo) -> str | None:
    """Closes, pauses, resumes and next-response cycles, or None for other kinds."""
    kind, who = event.kind, event.actor or "someone"
    if kind == TicketEventKind.CLOSED:
        text = f"Closed by {who} ({_via(details.get('via'))})"
        text += " without a reply" if details.get("without_reply") else " after its answer"
        cancelled = details.get("cancelled_levels") or []
        return text + (f"; cancelled levels {', '.join(map(str, cancelled))}" if cancelled else "")
    if kind == TicketEventKind.PAUSED:
        remaining = details.get("remaining") or {}
        left = ", ".join(f"level {lvl} had {duration_precise(timedelta(seconds=float(s)))} left"
                         for lvl, s in sorted(remaining.items(), key=lambda item: int(item[0])))
        text = f"Waiting on customer, marked by {who} ({_via(details.get('via'))})"
        return text + (f": {left}" if left else "")
    if kind == TicketEventKind.RESUMED:
        text = f"Resumed by {who} ({_via(details.get('via'))})"
        if details.get("paused_for") is not None:
            text += f" after {duration_precise(timedelta(seconds=float(details['paused_for'])))} waiting"
        due = details.get("due_times")
        if isinstance(due, dict) and due:
            text += "; now " + _levels_due(due, zone)
        return text
    if kind == TicketEventKind.CYCLE_STARTED:
        text = f"Next-response cycle {details.get('cycle')}: the customer wrote again"
        if details.get("reopened"):
            text += " after the close (reopened)"
        levels = details.get("levels")
        if isinstance(levels, dict) and levels:
            text += ": " + _levels_due(levels, zone)
        if details.get("breach_at"):
            text += "; target " + _clock_time(details["breach_at"], zone)
        return text
    return None


def _describe(ticket: Ticket, event, escalations: dict[tuple[int, int], Escalation]) -> str:
    details = event.details if isinstance(event.details, dict) else {}
    kind = event.kind
    zone = ticket.channel.tier.zone
    lifecycle = _describe_lifecycle(ticket, event, details, zone)
    if lifecycle is not None:
        return lifecycle
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
        if details.get("clock") == "business":
            text += " (business hours)"
        if isinstance(levels, dict) and levels:
            text += ": " + _levels_due(levels, zone)
        elif levels:
            text += f", {levels} level(s)"
        if details.get("breach_at"):
            text += "; first-response target " + _clock_time(details["breach_at"], zone)
        return text
    cycle = details.get("cycle") or 1
    if kind == TicketEventKind.LEVEL_FIRED:
        row = escalations.get((cycle, event.level or -1))
        notified = details.get("notified") or (row.notified if row else [])
        text = f"Level {event.level} posted in the thread, notified {_people(notified)}"
        if cycle != 1:
            text = f"Next-response cycle {cycle}: {text[0].lower()}{text[1:]}"
        note = details.get("note")
        if note:
            text += f" — {note}"
        via = details.get("via") or (row.fired_via if row else "")
        if via:
            text += f" (by the {via})"
        return text
    if kind == TicketEventKind.LEVEL_FAILED:
        row = escalations.get((cycle, event.level or -1))
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
        if details.get("breach_at"):
            text += "; target moved to " + _clock_time(details["breach_at"], zone)
        return text
    if kind == TicketEventKind.RESPONDED:
        path = details.get("path") or ticket.response_path
        label = dict(Ticket._meta.get_field("response_path").choices).get(path, path) or "unknown path"
        text = f"Responded ({label}) by {event.actor or ticket.responded_by or 'unknown'}"
        return text + (f" (next-response cycle {details['cycle']})" if details.get("cycle") else "")
    if details.get("note"):
        return str(details["note"])
    extra = ", ".join(f"{k}: {v}" for k, v in details.items())
    return event.get_kind_display() + (f" — {extra}" if extra else "")


def ticket_timeline(ticket: Ticket) -> list[dict[str, str]]:
    """The ticket's story, oldest first, as rows for people."""
    zone = ticket.channel.tier.zone
    escalations = {(e.cycle, e.level): e for e in ticket.escalations.all()}
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
    if ticket.state == TicketState.WAITING and ticket.waiting_since:
        zone = ticket.channel.tier.zone
        since = _when(ticket.waiting_since, zone)
        return f"none while waiting on the customer (since {since}): levels paused"
    if ticket.state != TicketState.ARMED:
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


def breached_q(now: datetime | None = None) -> Exists:
    """Breached: the ticket's breach time (its first-response target, set at arming) passed
    before its response, or before now while none came (escalation/breach.py)."""
    return breach.breached_q(now or datetime.now(UTC))


def ticket_is_breached(ticket: Ticket, now: datetime | None = None) -> bool:
    return Ticket.objects.filter(pk=ticket.pk).filter(breached_q(now)).exists()


def ticket_target(ticket: Ticket, now: datetime | None = None) -> str:
    """'Breaches 2026-11-30 09:30:00 CET (breaches in 5 min)', or how it ended."""
    now = now or datetime.now(UTC)
    sla = TicketSla.objects.filter(ticket=ticket).first()
    if sla is None or sla.breach_at is None:
        return "none: no first-response target"
    zone = ticket.channel.tier.zone
    clock = " on business hours" if sla.clock == "business" else ""
    when = _when(sla.breach_at, zone)
    if ticket.responded_at is not None:
        margin = duration_precise(sla.breach_at - ticket.responded_at)
        if ticket.responded_at <= sla.breach_at:
            return f"Met: answered {margin} before the target ({when}{clock})"
        return f"Missed: answered {margin} after the target ({when}{clock})"
    return f"{when}{clock}: {breach.breach_text(sla.breach_at, now=now)}"


class BreachedFilter(admin.SimpleListFilter):
    title = "breached"
    parameter_name = "breached"

    def lookups(self, request, model_admin):
        return (
            ("yes", "Breached (first-response target passed before the response)"),
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

    console_fields = ("current_state", "first_response_target", "next_level", "timeline")

    @admin.display(description="current state")
    def current_state(self, obj: Ticket) -> str:
        if obj.pk is None:
            return "-"
        text = obj.get_state_display()
        if obj.responded_at and obj.state == TicketState.RESPONDED:
            text += f" after {duration_precise(obj.responded_at - obj.opened_at)}"
        elif obj.responded_at:
            text += f" (first answered after {duration_precise(obj.responded_at - obj.opened_at)})"
        if obj.state == TicketState.CLOSED and obj.closed_at:
            how = CLOSED_HOW.get(obj.closed_via, "")
            text += f" {how} after {duration_precise(obj.closed_at - obj.opened_at)}".replace("  ", " ")
        cycles = obj.cycles.count()
        if cycles > 1:
            text += f", {cycles} response cycles"
        return text + (" — breached" if ticket_is_breached(obj) else " — within SLA")

    @admin.display(description="first-response target")
    def first_response_target(self, obj: Ticket) -> str:
        return ticket_target(obj) if obj.pk else "-"

    @admin.display(description="next level")
    def next_level(self, obj: Ticket) -> str:
        return ticket_next_level(obj) if obj.pk else "-"

    @admin.display(description="timeline")
    def timeline(self, obj: Ticket) -> SafeString:
        return ticket_timeline_html(obj) if obj.pk else format_html("-")
