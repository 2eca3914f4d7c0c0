from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from slabuddy import views

admin.site.site_header = "SLA Buddy"
admin.site.site_title = "SLA Buddy"
admin.site.index_title = "Tickets, escalations and shifts"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("", include("tickets.urls")),
]

# Demo mode only (no Slack token, never production): the demo page and its actions.
if settings.DEMO_MODE:
    urlpatterns.append(path("", include("slabuddy.demo.urls")))
