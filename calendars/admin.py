from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from calendars.models import (
    CalendarInterval,
    CalendarSource,
    Engineer,
    HolidayDate,
    RosterOverride,
    SourceKind,
    UnmatchedEvent,
)
from calendars.resolve import stale_sources
from calendars.roster_columns import RosterNowColumnsMixin
from calendars.sync import calendar_source_sync


@admin.register(Engineer)
class EngineerAdmin(RosterNowColumnsMixin, admin.ModelAdmin):
    list_display = ("name", "email", "slack_user_id", "role", "active", "is_admin") + (
        RosterNowColumnsMixin.roster_columns
    )
    list_filter = ("role", "active", "is_admin")
    search_fields = ("name", "display_name", "email", "slack_user_id")

    def changelist_view(self, request, extra_context=None):
        # The on-shift columns come from the calendars: say when they may be out of date.
        if request.method == "GET":
            _stale_message(request)
        return super().changelist_view(request, extra_context)


def _stale_message(request) -> None:
    for source in CalendarSource.objects.filter(active=True).exclude(sync_warnings=""):
        messages.warning(
            request,
            f"Calendar “{source.name}”: the last sync skipped what it could not read (kept from the "
            f"sync before): {'; '.join(source.sync_warnings.splitlines())}",
        )
    for source in stale_sources():
        messages.warning(
            request,
            f"Calendar “{source.name}” has not synced successfully in the last "
            f"{settings.CALENDAR_STALE_AFTER_MINUTES} minutes: escalation messages say the roster may be "
            "out of date." + (f" Last error: {source.last_error}" if source.last_error else ""),
        )


@admin.register(CalendarSource)
class CalendarSourceAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "purpose",
        "kind",
        "where",
        "active",
        "status",
        "last_success_at",
        "last_event_count",
        "unmatched",
    )
    list_filter = ("purpose", "kind", "active")
    search_fields = ("name", "google_calendar_id")
    actions = ("sync_now",)
    readonly_fields = (
        "status",
        "last_attempt_at",
        "last_success_at",
        "last_error_at",
        "last_error",
        "last_event_count",
        "last_unmatched_count",
        "sync_warnings",
    )
    fieldsets = (
        (None, {"fields": ("name", "purpose", "kind", "active")}),
        ("Google Calendar", {"fields": ("google_calendar_id", "google_subject")}),
        ("iCal feed", {"fields": ("ical_url",)}),
        ("Reading events", {"fields": ("title_patterns", "default_product", "time_zone")}),
        ("Sync status", {"fields": readonly_fields}),
    )

    @admin.display(description="calendar")
    def where(self, obj: CalendarSource) -> str:
        if obj.kind == SourceKind.GOOGLE:
            return obj.google_calendar_id
        # A secret iCal address is a credential: show the host only.
        return urlsplit(obj.ical_url.strip()).hostname or ""

    @admin.display(description="status")
    def status(self, obj: CalendarSource) -> str:
        if obj.pk is None:
            return "not synced yet"
        if obj.is_stale(timezone.now()):
            detail = f": {obj.last_error[:200]}" if obj.last_error else ""
            return format_html('<strong style="color:#ba2121">⚠ stale{}</strong>', detail)
        if obj.last_error:
            return format_html('<span style="color:#a06000">last try failed: {}</span>', obj.last_error[:200])
        if obj.sync_warnings:
            skipped = obj.sync_warnings.splitlines()
            return format_html('<span style="color:#a06000">⚠ partial: {} skipped ({})</span>',
                               len(skipped), skipped[0][:200])
        return "fresh"

    @admin.display(description="unmatched events")
    def unmatched(self, obj: CalendarSource):
        if not obj.last_unmatched_count:
            return 0
        url = reverse("admin:calendars_unmatchedevent_changelist") + f"?source__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.last_unmatched_count)

    @admin.action(description="Sync the selected calendars now")
    def sync_now(self, request, queryset):
        for source in queryset:
            result = calendar_source_sync(source=source)
            if result.partial:
                self.message_user(
                    request,
                    f"{source}: {result.events} events, {result.unmatched} unmatched; skipped what it could "
                    f"not read (its last good data is kept): {'; '.join(result.warnings)}",
                    messages.WARNING,
                )
            elif result.ok:
                self.message_user(
                    request,
                    f"{source}: {result.events} events, {result.unmatched} unmatched.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"{source}: sync failed: {result.error}", messages.ERROR)

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            _stale_message(request)
        return super().changelist_view(request, extra_context)


class _ReadOnlyIntervalAdmin(admin.ModelAdmin):
    """Synced rows are replaced by every sync: view them, fix the roster or the calendar instead."""

    date_hierarchy = "starts_at"
    list_select_related = ("source", "engineer")
    search_fields = ("title", "attendees", "unmatched_name")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CalendarInterval)
class CalendarIntervalAdmin(_ReadOnlyIntervalAdmin):
    list_display = (
        "title",
        "engineer",
        "purpose",
        "product",
        "starts_at",
        "ends_at",
        "all_day",
        "matched_by",
        "source",
    )
    list_filter = ("purpose", "source", "matched_by", "all_day")


@admin.register(UnmatchedEvent)
class UnmatchedEventAdmin(_ReadOnlyIntervalAdmin):
    """Events that matched no engineer: add the attendee's email or the name to the roster, then sync."""

    list_display = ("title", "unmatched_name", "attendees", "starts_at", "ends_at", "source")
    list_filter = ("source", "purpose")


@admin.register(HolidayDate)
class HolidayDateAdmin(admin.ModelAdmin):
    """Closed days read from holiday calendar sources; replaced by every sync."""

    list_display = ("date", "name", "source", "synced_at")
    list_filter = ("source",)
    search_fields = ("name",)
    date_hierarchy = "date"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RosterOverride)
class RosterOverrideAdmin(admin.ModelAdmin):
    list_display = ("engineer", "kind", "product", "starts_at", "ends_at", "in_force", "note")
    list_filter = ("kind", "product")
    search_fields = ("engineer__name", "product", "note")
    autocomplete_fields = ("engineer",)
    fields = ("engineer", "kind", "product", "starts_at", "ends_at", "note")

    @admin.display(description="in force now", boolean=True)
    def in_force(self, obj: RosterOverride) -> bool:
        now = timezone.now()
        return obj.starts_at <= now and (obj.ends_at is None or obj.ends_at > now)

    def get_changeform_initial_data(self, request):
        return {"starts_at": timezone.now(), **super().get_changeform_initial_data(request)}

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            _stale_message(request)
        return super().changelist_view(request, extra_context)
