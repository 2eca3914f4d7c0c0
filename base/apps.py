from django.apps import AppConfig


class BaseConfig(AppConfig):
    """The bottom layer: the Slack client, its one error model and the outbox. Imports no app."""

    name = "base"
    verbose_name = "Slack outbox"
