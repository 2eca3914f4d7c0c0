from django.contrib import admin

from escalation.models import Escalation
from slabuddy.console import BreachedFilter, TicketConsoleMixin
from tickets.models import BotReply, SlackInbound, Ticket, TicketEvent, WatchedChannel


@admin.register(WatchedChannel)
class WatchedChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "slack_channel_id", "tier", "intake_mode", "response_mode", "active")
    list_filter = ("tier", "intake_mode", "response_mode", "active")
    search_fields = ("name", "slack_channel_id")
    readonly_fields = ("last_seen_ts", "created_at")


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EscalationInline(ReadOnlyInline):
    model = Escalation
    fields = ("level", "state", "target_kind", "due_at", "fired_at", "notified", "last_error")
    readonly_fields = fields


class TicketEventInline(ReadOnlyInline):
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
        "author_slack_id", "opened_at", "policy", "state", "responded_at", "response_path",
        "responded_by", "created_at",
    ) + TicketConsoleMixin.console_fields
    fieldsets = (
        ("Now", {"fields": TicketConsoleMixin.console_fields}),
        ("Ticket", {"fields": (
            "channel", "slack_ts", "helpdesk_ticket_id", "priority", "ticket_type", "text",
            "author_slack_id", "opened_at", "policy", "state", "responded_at", "response_path",
            "responded_by", "created_at",
        )}),
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(SlackInbound)
class SlackInboundAdmin(admin.ModelAdmin):
    """Slack deliveries as received: to see what arrived and why one failed. Read-only."""

    list_display = ("key", "kind", "state", "received_at", "retry_num", "attempts", "last_error")
    list_filter = ("kind", "state")
    search_fields = ("key",)
    date_hierarchy = "received_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BotReply)
class BotReplyAdmin(admin.ModelAdmin):
    """The bot's thread replies (snooze confirmations, help), one per message answered. Read-only."""

    list_display = ("key", "state", "channel", "thread_ts", "created_at", "last_error")
    list_filter = ("state",)
    search_fields = ("key", "channel", "thread_ts")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
