from django.urls import path

from slackbot import views

urlpatterns = [
    path("slack/events", views.slack_events, name="slack-events"),
    path("slack/interactions", views.slack_interactions, name="slack-interactions"),
    path("slack/commands", views.slack_commands, name="slack-commands"),
    path("hooks/helpdesk/<str:provider>", views.helpdesk_webhook, name="helpdesk-webhook"),
]
