from django.urls import path

from ops import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/sla-config.yaml", views.sla_config_download, name="sla_config_download"),
]
