from django.contrib import admin
from django.urls import path

from slabuddy import views

admin.site.site_header = "SLA Buddy"
admin.site.site_title = "SLA Buddy"
admin.site.index_title = "Tickets, escalations and shifts"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
