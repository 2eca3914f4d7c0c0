"""Staff pages of the reports app, mounted under /admin/reports/ by slabuddy/urls.py."""

from django.urls import path  # noqa: F401  (routes are added beside the pages they serve)

app_name = "reports"
urlpatterns: list = []
