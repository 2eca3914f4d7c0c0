"""The bot's own bot id (``B…``), so that its own messages are never tickets.

A message the bot posts carries its user id, but a classic ``bot_message``
(posted by the app's bot without a user, or through an incoming webhook of the
app) carries only the bot id. It comes from ``SLACK_BOT_ID`` or, once per
process, from ``auth.test``: the same answer in every process, so the cache
cannot make two workers disagree. Asked only for messages that have a bot id.
"""

from __future__ import annotations

import functools

from django.conf import settings

from base.slack_api import DEMO_TOKEN, SlackError, slack_call, slack_client
from slackbot.replies import slack_error_raise

_asked: set[tuple[str, str]] = set()  # the Slacks whose answer is cached in this process


@functools.cache
def _auth_test_bot_id(base_url: str, token: str) -> str:
    # Keyed by the Slack it asks (tests and demo mode point at a stand-in); failures are not cached.
    return str(slack_call(slack_client().auth_test).get("bot_id") or "")


def own_bot_id_known() -> bool:
    """Whether ``own_bot_id()`` can answer without asking Slack (so it may run inside a transaction)."""
    if settings.SLACK_BOT_ID:
        return True
    return (settings.SLACK_API_BASE_URL, settings.SLACK_BOT_TOKEN or DEMO_TOKEN) in _asked


def own_bot_id() -> str:
    """``SLACK_BOT_ID``, else ``auth.test``'s ``bot_id``. Raises SlackRetryLater when Slack cannot say now."""
    if settings.SLACK_BOT_ID:
        return settings.SLACK_BOT_ID
    key = (settings.SLACK_API_BASE_URL, settings.SLACK_BOT_TOKEN or DEMO_TOKEN)
    try:
        answer = _auth_test_bot_id(*key)
    except SlackError as exc:
        slack_error_raise(exc, what="auth.test")  # rate limit or outage: try the message again later
        return ""  # a permanent error (invalid_auth): nothing is posted either, and the user id still counts
    _asked.add(key)
    return answer
