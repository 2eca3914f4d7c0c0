from django.apps import AppConfig


class SlackbotConfig(AppConfig):
    """Slack I/O on top of the engine: signed requests in, intake, replies, response detection."""

    name = "slackbot"
    verbose_name = "Slack"
