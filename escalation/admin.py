from django.contrib import admin

from escalation.models import (
    Escalation,
    EscalationStep,
    OutgoingMessage,
    SlaPolicy,
    SnoozeRequest,
    Tier,
)


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    extra = 0
    fields = ("level", "delay", "target_kind", "target_ref", "engineer", "message_template")
    autocomplete_fields = ("engineer",)


class _ReadOnlyAdmin(admin.ModelAdmin):
    """History written only by the engine: nobody edits it by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "tier", "priority", "snooze_minutes", "active")
    list_filter = ("tier", "priority", "active")
    inlines = [EscalationStepInline]


class SlaPolicyInline(admin.TabularInline):
    model = SlaPolicy
    extra = 0
    fields = ("name", "priority", "snooze_minutes", "active")
    show_change_link = True


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone")
    search_fields = ("name",)
    inlines = [SlaPolicyInline]


@admin.register(Escalation)
class EscalationAdmin(_ReadOnlyAdmin):
    """Per-ticket levels. Read-only: they are history, changed only by the engine."""

    list_display = (
        "ticket", "level", "state", "due_at", "fired_at", "fired_via", "attempts", "last_error"
    )
    list_filter = ("state", "level", "fired_via", "ticket__channel__tier")
    search_fields = ("ticket__helpdesk_ticket_id", "ticket__slack_ts", "last_error")
    date_hierarchy = "due_at"
    list_select_related = ("ticket", "ticket__channel")


@admin.register(OutgoingMessage)
class OutgoingMessageAdmin(_ReadOnlyAdmin):
    """Every escalation post, recorded before it was sent (idempotency key = ticket + level)."""

    list_display = (
        "idempotency_key", "status", "channel", "slack_ts", "attempts", "last_error", "updated_at"
    )
    list_filter = ("status",)
    search_fields = ("idempotency_key", "channel", "slack_ts", "last_error")


@admin.register(SnoozeRequest)
class SnoozeRequestAdmin(_ReadOnlyAdmin):
    list_display = ("request_key", "ticket", "actor", "at", "applied")
    list_filter = ("applied",)
    search_fields = ("request_key", "actor")
    list_select_related = ("ticket", "ticket__channel")
