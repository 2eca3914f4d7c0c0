from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: health, metrics, the admin console, demo mode, management commands."""

    name = "ops"
    verbose_name = "Operations"
