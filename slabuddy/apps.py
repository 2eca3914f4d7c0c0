from django.apps import AppConfig


class SlabuddyConfig(AppConfig):
    name = "slabuddy"
    verbose_name = "SLA Buddy"
