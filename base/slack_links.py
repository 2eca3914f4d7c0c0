"""Links to Slack messages, for places outside Slack (a page's message, the App Home).

A permalink is the workspace's URL + ``/archives/<channel>/p<ts without the dot>``.
The workspace URL comes from ``auth.test`` (once per process, like the bot's
user id: every process gets the same answer). If Slack cannot be asked, the
link falls back to Slack's own redirect, which opens the right workspace for
anyone signed in.
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings

from base.slack_api import DEMO_TOKEN, SlackError, slack_call, slack_client

logger = logging.getLogger("slabuddy.slack")

FALLBACK_WORKSPACE_URL = "https://slack.com/"


@functools.cache
def _workspace_url(base_url: str, token: str) -> str:
    client = slack_client()
    answer = slack_call(client.auth_test)
    url = str(answer.get("url") or "")
    if not url.startswith(("https://", "http://")):
        raise SlackError("auth.test answered without a workspace url")
    return url if url.endswith("/") else url + "/"


def slack_workspace_url() -> str:
    try:
        return _workspace_url(settings.SLACK_API_BASE_URL, settings.SLACK_BOT_TOKEN or DEMO_TOKEN)
    except SlackError as exc:
        logger.warning("slack_workspace_url_unknown error=%s", exc.describe())
        return FALLBACK_WORKSPACE_URL


def slack_message_url(*, channel: str, ts: str, workspace_url: str | None = None) -> str:
    """The permalink of a message (a ticket's message is its thread's link)."""
    base = workspace_url or slack_workspace_url()
    return f"{base}archives/{channel}/p{ts.replace('.', '')}"
