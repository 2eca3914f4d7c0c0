from django.contrib import admin

from reports.models import DigestChannel, DigestSent


@admin.register(DigestChannel)
class DigestChannelAdmin(admin.ModelAdmin):
    list_display = ("__str__", "slack_channel_id", "tier_names", "enabled")
    list_filter = ("enabled",)
    filter_horizontal = ("tiers",)

    @admin.display(description="Tiers")
    def tier_names(self, obj: DigestChannel) -> str:
        return ", ".join(obj.tiers.order_by("name").values_list("name", flat=True)) or "every tier"


@admin.register(DigestSent)
class DigestSentAdmin(admin.ModelAdmin):
    list_display = ("digest", "week_start", "outbox_key", "created_at")
    readonly_fields = ("digest", "week_start", "outbox_key", "created_at")

    def has_add_permission(self, request) -> bool:
        return False
