from django.contrib import admin

from base.admin_history import HistoryAdmin
from slackbot.models import SlackInbound


@admin.register(SlackInbound)
class SlackInboundAdmin(HistoryAdmin):
    """Slack deliveries as received: to see what arrived and why one failed. Read-only."""

    list_display = ("key", "kind", "state", "received_at", "retry_num", "attempts", "last_error")
    list_filter = ("kind", "state")
    search_fields = ("key",)
    date_hierarchy = "received_at"

    def has_delete_permission(self, request, obj=None):
        # Old deliveries may be cleared by hand; they are also pruned after 14 days.
        return admin.ModelAdmin.has_delete_permission(self, request, obj)
