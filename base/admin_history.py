"""Admin pages for history that only SLA Buddy writes: shown, never edited by hand."""

from __future__ import annotations

from django.contrib import admin


class HistoryAdmin(admin.ModelAdmin):
    """Rows written by the engine or the Slack app: viewable, not addable, editable or deletable."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class HistoryInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
