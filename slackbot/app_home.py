"""The App Home tab: the viewer's open pages, who is on shift and embedded now, and the
viewer's own status. Published with ``views.publish`` each time the viewer opens the tab
(``app_home_opened``); nothing polls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from base.slack_api import SlackError, slack_call, slack_client
from calendars.models import Engineer
from slackbot.modal_kit import context, divider, header, section
from slackbot.readouts import armed_tickets_text, roster_readout, roster_text, slack_when, tickets_paged_for
from slackbot.replies import slack_error_raise
from slackbot.staff import slack_user_is_staff


def _own_status(user_id: str, readout) -> str:
    engineer = Engineer.objects.filter(slack_user_id=user_id).first()
    if engineer is None or not engineer.active:
        return ("You are not on SLA Buddy's roster, so escalations never name you. "
                "An admin can add you with `/sla add-engineer`.")
    line = next((line for line in readout.lines if line.engineer.pk == engineer.pk), None)
    if line is None:
        return (f"You are on the roster as {engineer.get_role_display().lower()}: shifts and embedded "
                "support are a support engineer's.")
    shift = "on shift" if line.on_shift else "off shift"
    text = f"You are *{shift}* ({line.shift_reason})"
    if line.embedded_in:
        text += f", *embedded* with {line.embedded_in} ({line.embedded_reason})"
    return text + "."


def app_home_view(*, user_id: str, now: datetime) -> dict[str, Any]:
    readout = roster_readout(now)
    paged = tickets_paged_for(user_id)
    staff = " You are an SLA Buddy admin: `/sla setup` in a channel, `/sla add-engineer`." if (
        slack_user_is_staff(user_id)) else ""
    blocks = [
        header("SLA Buddy"),
        section(_own_status(user_id, readout) + staff),
        divider(),
        section("*Open tickets you were paged on*\n" + armed_tickets_text(
            paged, now=now, empty="None right now: no armed ticket has named you.")),
        divider(),
        section(roster_text(readout)),
        context(f"Updated {slack_when(now)}, when you opened this tab. `/sla help` lists the commands."),
    ]
    return {"type": "home", "blocks": blocks}


def app_home_opened_handle(*, event: dict[str, Any], now: datetime) -> str:
    """Publish a fresh Home tab for the viewer (the Messages tab is left alone)."""
    user = event.get("user")
    if event.get("tab", "home") != "home":
        return "not the home tab"
    if not isinstance(user, str) or not user:
        return "no user"
    try:
        slack_call(slack_client().views_publish, user_id=user, view=app_home_view(user_id=user, now=now))
    except SlackError as exc:
        slack_error_raise(exc, what="views.publish")  # raises SlackRetryLater unless permanent
        return f"home not published: {exc.describe()}"
    return "home published"
