"""What SLA Buddy shows people in Slack about now: who is on shift and why, armed tickets and
their next level. Read-only, from the same sources as the admin and the escalations
(``calendars.resolve.roster_now``, the per-ticket level rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from base.formatting import duration_text
from base.pages import provider_label
from base.slack_links import slack_message_url, slack_workspace_url
from calendars.resolve import RosterLine, resolve_target, roster_now, stale_warnings
from calendars.targets import TargetKind
from escalation.models import Escalation
from escalation.transitions import EscalationState
from tickets.models import Ticket, TicketState

WAITING_STATES = (EscalationState.PENDING, EscalationState.FIRING)  # as the admin's "next level"
MAX_TICKETS = 25


def slack_when(at: datetime) -> str:
    """A date Slack shows in each reader's own time zone (UTC in the fallback text)."""
    at = at.astimezone(UTC)
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def _who(line: RosterLine) -> str:
    engineer = line.engineer
    return f"<@{engineer.slack_user_id}>" if engineer.slack_user_id else engineer.name


@dataclass(frozen=True)
class RosterReadout:
    lines: list[RosterLine]  # every active support engineer
    on_shift: list[RosterLine]
    embedded: list[RosterLine]
    level_one: list[str]  # whom a level-1 step (on shift, not embedded) notifies now
    warnings: list[str]


def roster_readout(at: datetime) -> RosterReadout:
    lines = roster_now(at)
    first = resolve_target(kind=TargetKind.ON_SHIFT_NOT_EMBEDDED, at=at)
    return RosterReadout(
        lines=lines,
        on_shift=[line for line in lines if line.on_shift],
        embedded=[line for line in lines if line.embedded_in],
        level_one=first.mentions,
        warnings=stale_warnings(now=at),
    )


def roster_text(readout: RosterReadout) -> str:
    parts = ["*On shift now*"]
    parts += [f"• {_who(line)}: {line.shift_reason}" for line in readout.on_shift] or ["• nobody"]
    parts.append("*Embedded now*")
    parts += [
        f"• {_who(line)}: with {line.embedded_in} ({line.embedded_reason})" for line in readout.embedded
    ] or ["• nobody"]
    first = " ".join(readout.level_one) or "nobody (it would fall through to a wider audience)"
    parts.append(f"A level-1 escalation (on shift, not embedded) would notify: {first}")
    parts += [f":warning: {warning}" for warning in readout.warnings]
    return "\n".join(parts)


def next_level(ticket: Ticket) -> Escalation | None:
    """The ticket's next level, as the admin's ticket page names it."""
    return (
        Escalation.objects.filter(ticket=ticket, state__in=WAITING_STATES).order_by("due_at", "level").first()
    )


def level_target_text(row: Escalation) -> str:
    """The level's target, named as the admin names it."""
    if row.target_kind == TargetKind.PAGE:
        return f"page {provider_label(row.page_provider)}"
    target = dict(TargetKind.choices).get(row.target_kind, row.target_kind)
    return f"{target} ({row.target_ref})" if row.target_ref else target


def ticket_label(ticket: Ticket) -> str:
    ref = f"#{ticket.helpdesk_ticket_id}" if ticket.helpdesk_ticket_id else "ticket"
    return f"{ref} ({ticket.priority})" if ticket.priority else ref


def ticket_line(ticket: Ticket, *, now: datetime, workspace_url: str) -> str:
    link = slack_message_url(channel=ticket.channel.slack_channel_id, ts=ticket.slack_ts,
                             workspace_url=workspace_url)
    waited = duration_text(now - ticket.opened_at)
    head = f"• <{link}|{ticket_label(ticket)}> in #{ticket.channel.name}, waiting {waited}"
    row = next_level(ticket)
    if row is None:
        return f"{head}: every level has run"
    due = "due now" if row.due_at <= now else f"due {slack_when(row.due_at)}"
    return f"{head}: next level {row.level} {due} → {level_target_text(row)}"


def armed_tickets_text(tickets: list[Ticket], *, now: datetime, empty: str,
                       workspace_url: str | None = None) -> str:
    if not tickets:
        return empty
    workspace_url = workspace_url or slack_workspace_url()
    lines = [ticket_line(t, now=now, workspace_url=workspace_url) for t in tickets[:MAX_TICKETS]]
    if len(tickets) > MAX_TICKETS:
        lines.append(f"…and {len(tickets) - MAX_TICKETS} more (see Tickets in the admin).")
    return "\n".join(lines)


def armed_tickets_in(channel_id: str) -> list[Ticket]:
    return list(
        Ticket.objects.filter(channel__slack_channel_id=channel_id, state=TicketState.ARMED)
        .select_related("channel")
        .order_by("opened_at")[: MAX_TICKETS + 1]
    )


def tickets_paged_for(user_id: str) -> list[Ticket]:
    """Armed tickets where a fired level mentioned ``user_id`` (read in Python: SQLite has
    no JSON containment)."""
    rows = Escalation.objects.filter(
        ticket__state=TicketState.ARMED, state=EscalationState.FIRED
    ).select_related("ticket__channel").order_by("ticket__opened_at", "level")
    found: dict[int, Ticket] = {}
    for row in rows.iterator():
        if any(isinstance(n, dict) and n.get("slack_user_id") == user_id for n in row.notified or []):
            found.setdefault(row.ticket_id, row.ticket)
    return list(found.values())
