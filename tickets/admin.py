from django.contrib import admin

from tickets.models import WatchedChannel


@admin.register(WatchedChannel)
class WatchedChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "slack_channel_id", "tier", "intake_mode", "response_mode", "active")
    list_filter = ("tier", "intake_mode", "response_mode", "active")
    search_fields = ("name", "slack_channel_id")
    readonly_fields = ("last_seen_ts", "created_at")
