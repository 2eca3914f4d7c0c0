"""Periodic jobs of the Slack app (created by ``manage.py ensure_schedules``)."""

from __future__ import annotations

from base.schedules import Schedule


def schedules() -> list[Schedule]:
    return [
        Schedule(
            name="Scan watched channels",
            task="slackbot.tasks.channel_scan_all",
            every_seconds=60,
            description="Backfill tickets the Events API missed: conversations.history since the "
            "last message seen, up to 50 pages per channel per run, carrying on where it stopped.",
        ),
        Schedule(
            name="Poll helpdesks for first replies",
            task="slackbot.tasks.helpdesk_poll",
            every_seconds=120,
            description="Ask Zendesk/Freshdesk whether armed tickets have had an agent's first reply, and "
            "for the status of armed, waiting and answered ones (closes, pauses, resumes, next responses).",
        ),
        Schedule(
            name="Read Slack threads of armed tickets",
            task="slackbot.tasks.slack_threads_poll",
            every_seconds=300,
            description="Backfill engineers' thread replies the Events API missed (Slack-native channels).",
        ),
        Schedule(
            name="Re-queue pending Slack deliveries",
            task="slackbot.tasks.slack_inbound_sweep",
            every_seconds=15,
            description="Queue a drain for stored Slack events still waiting (their drain task was "
            "lost: broker flushed, worker killed); prune old ones.",
        ),
    ]
