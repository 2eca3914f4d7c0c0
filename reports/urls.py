"""Staff pages of the reports app, mounted under /admin/reports/ by slabuddy/urls.py."""

from django.urls import path

from reports import views
from reports.replay.views import replay_page

app_name = "reports"
urlpatterns: list = [
    path("sla/", views.report_page, name="sla_report"),
    path("sla/<str:section>.csv", views.report_csv, name="sla_report_csv"),
    path("replay/", replay_page, name="replay"),
]
