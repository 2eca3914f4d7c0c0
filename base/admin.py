from django.contrib import admin

from base.admin_history import HistoryAdmin
from base.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(HistoryAdmin):
    """Everything the bot posted or tried to post, one row per key. Read-only history."""

    list_display = ("key", "purpose", "status", "channel", "slack_ts", "attempts", "last_error", "updated_at")
    list_filter = ("purpose", "status")
    search_fields = ("key", "channel", "thread_ts", "slack_ts", "last_error")
    date_hierarchy = "created_at"
