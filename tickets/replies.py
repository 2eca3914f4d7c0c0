"""The bot's answers in Slack threads (snooze confirmations, help), posted at most once each.

A reply is recorded (keyed by the message it answers) before it is sent, so a
mention delivered twice is answered once. Rate limits and Slack outages are
raised as ``SlackRetryLater`` for the Celery task to reschedule: no sleeping.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from slabuddy.slack import slack_client
from tickets.models import BotReply, BotReplyState

logger = logging.getLogger("slabuddy.replies")

# Slack errors that will not go away by trying again.
PERMANENT_SLACK_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "account_inactive",
    "token_revoked", "no_permission", "missing_scope", "thread_not_found", "message_not_found",
    "cant_update_message", "msg_too_long", "invalid_blocks",
})


class SlackRetryLater(Exception):
    """Slack asked us to come back later (429) or is down (5xx, timeout)."""

    def __init__(self, message: str, retry_after: int = 30):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


def slack_error_raise(exc: Exception, *, what: str) -> None:
    """Turn a transport/API error into SlackRetryLater, or log it as permanent and return."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 200)
        error = (response.get("error") if hasattr(response, "get") else None) or "unknown"
        if status == 429:
            headers = getattr(response, "headers", {}) or {}
            retry_after = headers.get("Retry-After") or headers.get("retry-after") or 30
            try:
                seconds = int(retry_after)
            except (TypeError, ValueError):
                seconds = 30
            raise SlackRetryLater(f"{what}: rate limited", seconds) from exc
        if status >= 500 or error not in PERMANENT_SLACK_ERRORS:
            raise SlackRetryLater(f"{what}: {status} {error}") from exc
        logger.warning("slack_permanent_error what=%s error=%s", what, error)
        return
    raise SlackRetryLater(f"{what}: {type(exc).__name__}") from exc


def bot_reply_post(
    *, key: str, channel: str, thread_ts: str, text: str, blocks: list[dict[str, Any]] | None = None
) -> BotReply:
    reply, created = BotReply.objects.get_or_create(
        key=key, defaults={"channel": channel, "thread_ts": thread_ts, "text": text}
    )
    if not created:
        # Sent, or being sent (or lost mid-send by a crash): never post twice.
        # Only a recorded failure may be retried, by whoever claims it first.
        if reply.state != BotReplyState.FAILED:
            return reply
        if not BotReply.objects.filter(pk=reply.pk, state=BotReplyState.FAILED).update(
            state=BotReplyState.SENDING, text=text
        ):
            return reply
    try:
        response = slack_client().chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=text, blocks=blocks, unfurl_links=False
        )
    except Exception as exc:  # recorded, then retried later or given up as permanent
        BotReply.objects.filter(pk=reply.pk).update(
            state=BotReplyState.FAILED, last_error=f"{type(exc).__name__}: {exc}"[:1000]
        )
        slack_error_raise(exc, what="chat.postMessage")
        reply.refresh_from_db()
        return reply
    BotReply.objects.filter(pk=reply.pk).update(
        state=BotReplyState.SENT, posted_ts=str(response.get("ts") or ""), last_error=""
    )
    reply.refresh_from_db()
    return reply
