from django.contrib import admin

from calendars.models import Engineer


@admin.register(Engineer)
class EngineerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "slack_user_id", "role", "active")
    list_filter = ("role", "active")
    search_fields = ("name", "email", "slack_user_id")
