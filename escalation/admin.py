from datetime import datetime

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from base.admin_history import HistoryAdmin
from calendars.targets import LABELS
from escalation.clock import ClockError
from escalation.models import (
    Escalation,
    EscalationStep,
    LifecycleRequest,
    NextResponseStep,
    SlaPolicy,
    SnoozeRequest,
    TicketSla,
)
from escalation.preview import next_friday_evening, policy_preview
from tickets.models import Priority, Tier, TierHoliday


class EscalationStepForm(forms.ModelForm):
    page_priorities = forms.MultipleChoiceField(
        choices=Priority.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Page target only: page tickets of these priorities (none ticked: every priority).",
    )

    class Meta:
        model = EscalationStep
        fields = ("level", "delay", "target_kind", "target_ref", "engineer", "outside_hours",
                  "message_template", "page_provider", "page_credential", "page_priorities")

    def clean_page_priorities(self):
        return list(self.cleaned_data.get("page_priorities") or [])


class NextResponseStepForm(EscalationStepForm):
    class Meta(EscalationStepForm.Meta):
        model = NextResponseStep


class EscalationStepInline(admin.StackedInline):
    model = EscalationStep
    form = EscalationStepForm
    extra = 0
    fields = (
        ("level", "delay", "target_kind"),
        ("target_ref", "engineer", "outside_hours"),
        "message_template",
        ("page_provider", "page_credential", "page_priorities"),
    )
    autocomplete_fields = ("engineer",)


class NextResponseStepInline(EscalationStepInline):
    """After an answer, a customer who writes again starts a cycle of these levels, timed from
    that message (empty: customers writing again start no cycle)."""

    model = NextResponseStep
    form = NextResponseStepForm
    verbose_name = "next-response step (delay after the customer's new message)"
    verbose_name_plural = "next-response ladder: after an answer, a customer who writes again starts a cycle"


def _preview_table(policy: SlaPolicy, *, title: str, opened_at: datetime) -> SafeString:
    try:
        preview = policy_preview(policy=policy, opened_at=opened_at)
    except ClockError as exc:
        return format_html("<p><b>{}</b>: {}</p>", title, exc)
    zone = policy.tier.zone

    def shown(iso: str | None) -> str:
        return datetime.fromisoformat(iso).astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z") if iso else "-"

    rows = format_html_join(
        "", "<tr><td>level {}</td><td>{}</td><td>{}</td></tr>",
        ((level["level"], shown(level["due_at"]), LABELS.get(level["notify"], level["notify"]))
         for level in preview["levels"]),
    )
    return format_html(
        '<div class="sb-preview"><p><b>{}</b> ({}), {} clock; first-response target (breach): <b>{}</b></p>'
        "<table><thead><tr><th>level</th><th>due</th><th>notifies</th></tr></thead><tbody>{}</tbody>"
        "</table></div>",
        title, opened_at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z"), preview["clock"],
        shown(preview["breach_at"]), rows,
    )


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "tier", "priority", "clock", "first_response_target", "snooze_minutes",
                    "active")
    list_filter = ("tier", "priority", "clock", "active")
    inlines = [EscalationStepInline, NextResponseStepInline]
    readonly_fields = ("preview",)
    fields = ("tier", "priority", "name", "clock", "first_response_target", "snooze_minutes",
              "snoozes_extend_target", "max_total_snooze", "exclude_types", "next_response_target", "active",
              "preview")

    @admin.display(description="preview (saved policy)")
    def preview(self, obj: SlaPolicy) -> SafeString | str:
        """When the levels would fire: the same code that arms tickets (escalation/planning.py)."""
        if obj.pk is None:
            return "Save the policy to preview it."
        if not obj.steps.exists():
            return "No steps yet."
        now = timezone.now()
        return format_html(
            "{}{}",
            _preview_table(obj, title="A ticket opened now", opened_at=now),
            _preview_table(obj, title="A ticket opened Friday 17:30",
                           opened_at=next_friday_evening(now=now, tier=obj.tier)),
        )


class SlaPolicyInline(admin.TabularInline):
    model = SlaPolicy
    extra = 0
    fields = ("name", "priority", "clock", "first_response_target", "snooze_minutes", "active")
    show_change_link = True


class TierHolidayInline(admin.TabularInline):
    model = TierHoliday
    extra = 0
    fields = ("date", "name")
    verbose_name = "holiday (closed all day)"
    verbose_name_plural = "holidays entered by hand (closed all day)"


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone", "hours", "holiday_country")
    search_fields = ("name",)
    fields = ("name", "description", "time_zone", "business_hours", "holiday_country", "holiday_subdivision",
              "holiday_calendar")
    inlines = [TierHolidayInline, SlaPolicyInline]

    @admin.display(description="business hours")
    def hours(self, obj: Tier) -> str:
        if not obj.business_hours:
            return "around the clock"
        return "; ".join(f"{days} {', '.join(times)}" for days, times in obj.business_hours.items())


@admin.register(Escalation)
class EscalationAdmin(HistoryAdmin):
    """Per-ticket levels. Read-only: they are history, changed only by the engine."""

    list_display = (
        "ticket", "cycle", "level", "state", "due_at", "fired_at", "fired_via", "attempts", "last_error"
    )
    list_filter = ("state", "level", "cycle", "fired_via", "ticket__channel__tier")
    search_fields = ("ticket__helpdesk_ticket_id", "ticket__slack_ts", "last_error")
    date_hierarchy = "due_at"
    list_select_related = ("ticket", "ticket__channel")


@admin.register(TicketSla)
class TicketSlaAdmin(HistoryAdmin):
    """The policy each ticket was armed with, as it was then."""

    list_display = ("ticket", "policy_name", "clock", "breach_at", "snooze_minutes", "armed_at")
    list_filter = ("clock",)
    search_fields = ("ticket__helpdesk_ticket_id", "policy_name")
    list_select_related = ("ticket", "ticket__channel")


@admin.register(LifecycleRequest)
class LifecycleRequestAdmin(HistoryAdmin):
    """Each close, pause, resume or cycle asked for from Slack, by the request's key (applied once)."""

    list_display = ("request_key", "action", "ticket", "actor", "at", "applied")
    list_filter = ("action", "applied")
    search_fields = ("request_key", "actor")
    list_select_related = ("ticket", "ticket__channel")


@admin.register(SnoozeRequest)
class SnoozeRequestAdmin(HistoryAdmin):
    list_display = ("request_key", "ticket", "actor", "at", "applied", "refused")
    list_filter = ("applied",)
    search_fields = ("request_key", "actor")
    list_select_related = ("ticket", "ticket__channel")
