"""The ticket page of the admin: the team's console (state, next level, timeline, breached)."""

from django.contrib import admin

from base.admin_history import HistoryInline
from escalation.models import Escalation
from ops.console import BreachedFilter, TicketConsoleMixin
from tickets.models import Ticket, TicketEvent


class EscalationInline(HistoryInline):
    model = Escalation
    fields = ("level", "state", "target_kind", "due_at", "fired_at", "notified", "last_error")
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
    inlines = [EscalationInline, TicketEventInline]
    readonly_fields = (
        "channel", "slack_ts", "helpdesk_ticket_id", "priority", "ticket_type", "text",
        "author_slack_id", "opened_at", "armed_policy", "state", "responded_at", "response_path",
        "responded_by", "created_at",
    ) + TicketConsoleMixin.console_fields
    fieldsets = (
        ("Now", {"fields": TicketConsoleMixin.console_fields}),
        ("Ticket", {"fields": (
            "channel", "slack_ts", "helpdesk_ticket_id", "priority", "ticket_type", "text",
            "author_slack_id", "opened_at", "armed_policy", "state", "responded_at", "response_path",
            "responded_by", "created_at",
        )}),
    )

    @admin.display(description="policy")
    def armed_policy(self, obj: Ticket) -> str:
        sla = getattr(obj, "sla", None) if obj.pk else None
        return sla.policy_name if sla is not None else "-"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
