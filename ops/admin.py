"""The ticket page of the admin: the team's console (state, next level, timeline, breached)."""

from django.contrib import admin

from base.admin_history import HistoryInline
from escalation.models import Escalation, TicketCycle, TicketPause
from ops.console import BreachedFilter, TicketConsoleMixin
from tickets.models import Ticket, TicketEvent


class TicketCycleInline(HistoryInline):
    """The first response and each next-response cycle: when the customer started waiting, the
    target, and how the cycle ended (answered, closed, or still open)."""

    model = TicketCycle
    verbose_name_plural = "Response cycles"
    fields = ("number", "kind", "started_at", "started_by", "reopened", "breach_at", "responded_at",
              "responded_by", "closed_at", "closed_via", "closed_by")
    readonly_fields = fields


class TicketPauseInline(HistoryInline):
    model = TicketPause
    verbose_name_plural = "Waiting on customer (pauses)"
    fields = ("cycle", "paused_at", "paused_via", "paused_by", "resumed_at", "resumed_via", "resumed_by",
              "remaining")
    readonly_fields = fields


class EscalationInline(HistoryInline):
    model = Escalation
    fields = ("cycle", "level", "state", "target_kind", "due_at", "fired_at", "notified", "last_error")
    readonly_fields = fields


class TicketEventInline(HistoryInline):
    model = TicketEvent
    verbose_name_plural = "Timeline"
    fields = ("at", "kind", "level", "actor", "details")
    readonly_fields = fields


@admin.register(Ticket)
class TicketAdmin(TicketConsoleMixin, admin.ModelAdmin):
    """Tickets are history: what arrived and what happened is not editable."""

    list_display = (
        "__str__", "priority", "state", "opened_at", "responded_at", "response_path"
    )
    list_filter = ("state", "channel__tier", BreachedFilter, "priority", "channel")
    search_fields = ("helpdesk_ticket_id", "slack_ts", "text")
    date_hierarchy = "opened_at"
    list_select_related = ("channel", "channel__tier")
    inlines = [TicketCycleInline, TicketPauseInline, EscalationInline, TicketEventInline]
    ticket_fields = (
        "channel", "slack_ts", "helpdesk_ticket_id", "priority", "ticket_type", "text",
        "author_slack_id", "opened_at", "armed_policy", "state", "responded_at", "response_path",
        "responded_by", "waiting_since", "closed_at", "closed_via", "closed_by", "helpdesk_status",
        "created_at",
    )
    readonly_fields = ticket_fields + TicketConsoleMixin.console_fields
    fieldsets = (
        ("Now", {"fields": TicketConsoleMixin.console_fields}),
        ("Ticket", {"fields": ticket_fields}),
    )

    @admin.display(description="policy")
    def armed_policy(self, obj: Ticket) -> str:
        sla = getattr(obj, "sla", None) if obj.pk else None
        return sla.policy_name if sla is not None else "-"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
