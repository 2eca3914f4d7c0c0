"""The ``/sla`` slash command: ``setup``, ``add-engineer``, ``oncall``, ``status``, ``help``.

Answered inside the request (Slack waits 3 seconds): read-only subcommands
answer with an ephemeral message (only the person who asked sees it); the two
that change configuration open a modal with ``views.open`` right away, since
the ``trigger_id`` expires within seconds, and only for staff
(slackbot/staff.py). Everyone else gets a clear refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from slackbot.modal_engineer import add_engineer_view
from slackbot.modal_kit import modal_open
from slackbot.modal_setup import setup_view
from slackbot.readouts import armed_tickets_in, armed_tickets_text, roster_readout, roster_text
from slackbot.staff import REFUSAL_TEXT, slack_user_is_staff
from tickets.models import WatchedChannel

HELP_TEXT = (
    "*SLA Buddy's `/sla` command*\n"
    "• `/sla oncall`: who is on shift and who is embedded right now, and why.\n"
    "• `/sla status`: the armed tickets in this channel, each with its next level, due time and target.\n"
    "• `/sla setup` (admins): watch this channel, choose its tier, intake and response modes, "
    "and edit the tier's escalation ladder.\n"
    "• `/sla add-engineer` (admins): add a Slack user to the support roster, or update them.\n"
    "• `/sla help`: this message.\n"
    "In a ticket's thread, `@SLA Buddy` snoozes its escalations."
)
ALIASES = {
    "": "help", "help": "help", "?": "help",
    "setup": "setup", "set-up": "setup",
    "add-engineer": "add-engineer", "add_engineer": "add-engineer", "addengineer": "add-engineer",
    "engineer": "add-engineer",
    "oncall": "oncall", "on-call": "oncall", "on_call": "oncall", "shift": "oncall",
    "status": "status",
}
STAFF_ONLY = ("setup", "add-engineer")


class CommandMalformed(ValueError):
    """A slash command without the fields Slack always sends."""


@dataclass(frozen=True)
class SlashCommand:
    command: str
    text: str
    user_id: str
    user_name: str
    channel_id: str
    channel_name: str
    trigger_id: str
    team_domain: str = ""

    @property
    def workspace_url(self) -> str | None:
        """The workspace's address, from the command itself (no call to Slack within its 3 s)."""
        domain = self.team_domain.strip().lower()
        if domain and all(ch.isalnum() or ch == "-" for ch in domain):
            return f"https://{domain}.slack.com/"
        return None

    @property
    def subcommand(self) -> str:
        words = self.text.strip().lower().split()
        return ALIASES.get(words[0] if words else "", "unknown")


def slash_command_parse(form: dict[str, list[str]]) -> SlashCommand:
    def one(name: str) -> str:
        values = form.get(name) or [""]
        return values[-1][:3000]

    command = SlashCommand(
        command=one("command"), text=one("text"), user_id=one("user_id"), user_name=one("user_name"),
        channel_id=one("channel_id"), channel_name=one("channel_name"), trigger_id=one("trigger_id"),
        team_domain=one("team_domain"),
    )
    if not command.command or not command.user_id:
        raise CommandMalformed("a slash command needs command and user_id")
    return command


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


def slash_command_handle(*, command: SlashCommand, now: datetime) -> dict[str, Any] | None:
    """The JSON answer for Slack (an ephemeral message), or None for an empty 200 (a modal opened)."""
    sub = command.subcommand
    if sub == "unknown":
        word = command.text.strip().split()[0]
        return _ephemeral(f"I do not know `{word[:40]}`.\n{HELP_TEXT}")
    if sub == "help":
        return _ephemeral(HELP_TEXT)
    if sub == "oncall":
        return _ephemeral(roster_text(roster_readout(now)))
    if sub == "status":
        return _ephemeral(_status_text(command, now=now))
    if sub in STAFF_ONLY and not slack_user_is_staff(command.user_id):
        return _ephemeral(REFUSAL_TEXT)
    if not command.trigger_id:
        return _ephemeral("Slack sent no trigger_id, so I cannot open the form. Please try again.")
    if sub == "setup":
        if not command.channel_id.startswith(("C", "G")):
            return _ephemeral("Run `/sla setup` in the channel you want me to watch.")
        view = setup_view(channel_id=command.channel_id, channel_name=command.channel_name)
        if view is None:
            return _ephemeral(f"There is no tier yet: add one in the admin ({settings.SITE_URL}/admin/).")
    else:
        view = add_engineer_view()
    error = modal_open(trigger_id=command.trigger_id, view=view)
    if error:
        return _ephemeral(f"I could not open the form (Slack said: {error}). Please run the command again.")
    return None


def _status_text(command: SlashCommand, *, now: datetime) -> str:
    channel = WatchedChannel.objects.filter(slack_channel_id=command.channel_id).first()
    if channel is None or not channel.active:
        return "This channel is not watched, so it has no tickets. An admin can watch it with `/sla setup`."
    tickets = armed_tickets_in(command.channel_id)
    body = armed_tickets_text(tickets, now=now, empty="No armed ticket: every ticket here has its answer.",
                              workspace_url=command.workspace_url)
    return f"*Armed tickets in #{channel.name}* ({channel.tier})\n{body}"
