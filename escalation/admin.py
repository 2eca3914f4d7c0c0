from django import forms
from django.contrib import admin

from base.admin_history import HistoryAdmin
from escalation.models import Escalation, EscalationStep, SlaPolicy, SnoozeRequest, TicketSla
from tickets.models import Priority, Tier


class EscalationStepForm(forms.ModelForm):
    page_priorities = forms.MultipleChoiceField(
        choices=Priority.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Page target only: page tickets of these priorities (none ticked: every priority).",
    )

    class Meta:
        model = EscalationStep
        fields = ("level", "delay", "target_kind", "target_ref", "engineer", "message_template",
                  "page_provider", "page_credential", "page_priorities")

    def clean_page_priorities(self):
        return list(self.cleaned_data.get("page_priorities") or [])


class EscalationStepInline(admin.StackedInline):
    model = EscalationStep
    form = EscalationStepForm
    extra = 0
    fields = (
        ("level", "delay", "target_kind"),
        ("target_ref", "engineer"),
        "message_template",
        ("page_provider", "page_credential", "page_priorities"),
    )
    autocomplete_fields = ("engineer",)


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
class EscalationAdmin(HistoryAdmin):
    """Per-ticket levels. Read-only: they are history, changed only by the engine."""

    list_display = (
        "ticket", "level", "state", "due_at", "fired_at", "fired_via", "attempts", "last_error"
    )
    list_filter = ("state", "level", "fired_via", "ticket__channel__tier")
    search_fields = ("ticket__helpdesk_ticket_id", "ticket__slack_ts", "last_error")
    date_hierarchy = "due_at"
    list_select_related = ("ticket", "ticket__channel")


@admin.register(TicketSla)
class TicketSlaAdmin(HistoryAdmin):
    """The policy each ticket was armed with, as it was then."""

    list_display = ("ticket", "policy_name", "snooze_minutes", "armed_at")
    search_fields = ("ticket__helpdesk_ticket_id", "policy_name")
    list_select_related = ("ticket", "ticket__channel")


@admin.register(SnoozeRequest)
class SnoozeRequestAdmin(HistoryAdmin):
    list_display = ("request_key", "ticket", "actor", "at", "applied")
    list_filter = ("applied",)
    search_fields = ("request_key", "actor")
    list_select_related = ("ticket", "ticket__channel")
