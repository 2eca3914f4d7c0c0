"""The one seam through which SLA Buddy talks to Slack's Web API.

Everything (posting, scanning, replying) gets its client here, so tests,
benchmarks and demo mode point ``SLACK_API_BASE_URL`` at a local stand-in
(``slabuddy.fake_slack``) and nothing else changes. No retry handlers are
installed: a 429 is rescheduled by the caller, never slept on in a worker.
"""

from __future__ import annotations

import functools

from django.conf import settings
from slack_sdk import WebClient

DEMO_TOKEN = "xoxb-demo-mode"


def slack_client() -> WebClient:
    client = WebClient(
        token=settings.SLACK_BOT_TOKEN or DEMO_TOKEN,
        base_url=settings.SLACK_API_BASE_URL,
        timeout=settings.SLACK_TIMEOUT_SECONDS,
    )
    client.retry_handlers = []  # we reschedule ourselves; a worker never sleeps on Slack
    return client


@functools.cache
def _auth_test_user_id(base_url: str, token: str) -> str:
    return slack_client().auth_test()["user_id"]


def bot_user_id() -> str:
    """The bot's own Slack user id: from SLACK_BOT_USER_ID, else ``auth.test``.

    Cached per process; it is the same answer in every process, so the cache
    cannot make two workers disagree.
    """
    if settings.SLACK_BOT_USER_ID:
        return settings.SLACK_BOT_USER_ID
    return _auth_test_user_id(settings.SLACK_API_BASE_URL, settings.SLACK_BOT_TOKEN or DEMO_TOKEN)
