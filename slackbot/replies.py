"""The bot's answers in Slack threads (snooze confirmations, help, notices), through the outbox.

A reply is keyed by what it answers (``mention:<channel>:<ts>``, a button's
action key), so a mention that reaches us twice (a Slack retry, or both
``app_mention`` and ``message``) is answered once, and a reply whose sender
died mid-post is looked up in the thread before it is posted again. A rate
limit or an ambiguous failure raises ``SlackRetryLater`` for the Celery task
to reschedule: no sleeping.
"""

from __future__ import annotations

import logging
from typing import Any

from base.models import OutboxMessage, OutboxPurpose
from base.outbox import DeliveryStatus, outbox_post
from base.slack_api import PermanentSlackError, RateLimited, SlackError
from escalation.duplicates import outbox_duplicates_check_queue

logger = logging.getLogger("slabuddy.replies")


class SlackRetryLater(Exception):
    """Slack asked us to come back later (429) or may not have done it (5xx, timeout)."""

    def __init__(self, message: str, retry_after: float = 30):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


def slack_error_raise(exc: SlackError, *, what: str) -> None:
    """A failed Slack read or update: SlackRetryLater to try again, or log a permanent one and return."""
    if isinstance(exc, RateLimited):
        raise SlackRetryLater(f"{what}: rate limited", exc.retry_after) from exc
    if isinstance(exc, PermanentSlackError):
        logger.warning("slack_permanent_error what=%s error=%s", what, exc.describe())
        return
    raise SlackRetryLater(f"{what}: {exc.describe()}") from exc


def bot_reply_post(
    *, key: str, channel: str, thread_ts: str, text: str, blocks: list[dict[str, Any]] | None = None
) -> OutboxMessage:
    """Post a reply once per key. Raises SlackRetryLater when it should be tried again."""
    delivery = outbox_post(key=key, purpose=OutboxPurpose.REPLY, channel=channel, thread_ts=thread_ts,
                           text=text, blocks=blocks)
    if delivery.status == DeliveryStatus.RATE_LIMITED:
        raise SlackRetryLater("chat.postMessage: rate limited", delivery.retry_after)
    if delivery.status == DeliveryStatus.AMBIGUOUS:
        # It may still land: come back once it cannot (the outbox refuses earlier attempts anyway).
        wait = delivery.retry_after + 1 if delivery.not_before else 30
        raise SlackRetryLater(f"chat.postMessage: {delivery.error}", wait)
    if delivery.status == DeliveryStatus.SENT:
        # Sent after an attempt that may have landed: look again for a duplicate a little later.
        outbox_duplicates_check_queue(message_id=delivery.message.pk, at=delivery.verify_at)
    if delivery.status == DeliveryStatus.PERMANENT:
        logger.warning("slack_permanent_error what=chat.postMessage key=%s error=%s", key, delivery.error)
    return delivery.message
