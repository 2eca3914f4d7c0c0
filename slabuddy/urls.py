from django.conf import settings
from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "SLA Buddy"
admin.site.site_title = "SLA Buddy"
admin.site.index_title = "Tickets, escalations and shifts"
admin.site.index_template = "reports/admin_index.html"  # the index links the reports area

urlpatterns = [
    path("", include("ops.urls")),
    path("admin/reports/", include("reports.urls")),
    path("admin/", admin.site.urls),
    path("", include("slackbot.urls")),
]

# Demo mode only (no Slack token, never production): the demo page and its actions.
if settings.DEMO_MODE:
    urlpatterns.append(path("", include("ops.demo.urls")))
