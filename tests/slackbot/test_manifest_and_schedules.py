"""The Slack app manifest matches the routes and events the code handles; the beat jobs exist."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import yaml
from django.urls import resolve

from ops.management.commands.check_deployment import REQUIRED_SCOPES
from ops.schedules import default_schedules
from slackbot import views
from slackbot.dispatch import HANDLED_EVENT_TYPES

MANIFEST = Path(__file__).resolve().parents[2] / "slack" / "manifest.yml"


def test_manifest_urls_events_and_scopes():
    manifest = yaml.safe_load(MANIFEST.read_text())
    settings = manifest["settings"]
    events_path = urlparse(settings["event_subscriptions"]["request_url"]).path
    interactions_path = urlparse(settings["interactivity"]["request_url"]).path
    assert resolve(events_path).func is views.slack_events
    assert resolve(interactions_path).func is views.slack_interactions
    assert settings["interactivity"]["is_enabled"] is True
    bot_events = set(settings["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.channels", "message.groups"} <= bot_events
    assert {event.split(".")[0] for event in bot_events} <= set(HANDLED_EVENT_TYPES)
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "channels:history", "groups:history", "chat:write"} <= scopes
    assert "reactions:read" in scopes
    assert {"reaction_added", "reaction_removed"} <= bot_events


def test_manifest_slash_command_app_home_and_their_scopes():
    manifest = yaml.safe_load(MANIFEST.read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/sla"
    assert resolve(urlparse(command["url"]).path).func is views.slack_commands
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "users:read", "users:read.email"} <= scopes
    assert set(REQUIRED_SCOPES) <= scopes  # what check_deployment asks of a token, the manifest grants


def test_ticket_schedules_point_at_real_tasks():
    from slackbot import tasks

    ours = [s for s in default_schedules() if s.task.startswith("slackbot.")]
    assert {s.task for s in ours} == {
        "slackbot.tasks.channel_scan_all", "slackbot.tasks.helpdesk_poll",
        "slackbot.tasks.slack_inbound_sweep", "slackbot.tasks.slack_threads_poll"}
    for schedule in ours:
        assert getattr(tasks, schedule.task.rsplit(".", 1)[1]).name == schedule.task
