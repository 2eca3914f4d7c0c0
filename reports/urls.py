"""Staff pages of the reports app, mounted under /admin/reports/ by slabuddy/urls.py."""

from django.urls import path

from reports.replay.views import replay_page

app_name = "reports"
urlpatterns: list = [
    path("replay/", replay_page, name="replay"),
]
