import json
from typing import Any

from django.contrib import admin
from django.utils.html import format_html

from base.admin_history import HistoryAdmin
from slackbot.models import ChannelScanProgress, SlackInbound

# Slack's legacy verification token, and the response URLs an interaction carries (each one
# lets its holder post into the channel): kept in the stored payload, never shown.
HIDDEN_KEYS = frozenset({"token", "response_url", "response_urls"})


def payload_for_display(value: Any) -> Any:
    """The payload with every hidden key's value replaced, at any depth."""
    if isinstance(value, dict):
        return {k: "(hidden)" if k in HIDDEN_KEYS else payload_for_display(v) for k, v in value.items()}
    if isinstance(value, list):
        return [payload_for_display(item) for item in value]
    return value


@admin.register(SlackInbound)
class SlackInboundAdmin(HistoryAdmin):
    """Slack deliveries as received: to see what arrived and why one failed. Read-only."""

    list_display = ("key", "kind", "state", "received_at", "retry_num", "attempts", "last_error")
    list_filter = ("kind", "state")
    search_fields = ("key",)
    date_hierarchy = "received_at"
    exclude = ("payload",)
    readonly_fields = ("shown_payload",)

    @admin.display(description="payload")
    def shown_payload(self, obj: SlackInbound) -> str:
        text = json.dumps(payload_for_display(obj.payload), indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)

    def has_delete_permission(self, request, obj=None):
        # Old deliveries may be cleared by hand; they are also pruned after 14 days.
        return admin.ModelAdmin.has_delete_permission(self, request, obj)


@admin.register(ChannelScanProgress)
class ChannelScanProgressAdmin(HistoryAdmin):
    """Channel scans that stopped at their page cap or a rate limit; the next run carries on."""

    list_display = ("channel", "pages", "runs", "not_before", "started_at", "updated_at")
    list_select_related = ("channel",)
