"""Posting escalation messages to Slack, with errors that say what to do next.

One small class over the one client seam (``slabuddy.slack.slack_client``).
Every failure becomes one of three errors:

- ``RateLimited``: Slack refused the call (429); nothing was posted. Retry
  after ``retry_after`` seconds, by re-queuing, never by sleeping.
- ``TransientSlackError``: 5xx, timeout, connection trouble. The post may or
  may not have reached Slack, so the next attempt looks for it first.
- ``PermanentSlackError``: retrying cannot help (``channel_not_found``,
  ``not_in_channel``, ``invalid_auth``, ...). Recorded on the row, not retried.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web import WebClient

from slabuddy.slack import slack_client

METADATA_EVENT_TYPE = "slabuddy_escalation"

# Slack's own "try again later" answers that arrive with HTTP 200 and ok: false.
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
DEFAULT_RETRY_AFTER = 1.0


class SlackError(Exception):
    def __init__(self, error: str, *, status: int | None = None):
        super().__init__(error)
        self.error = error
        self.status = status

    def describe(self) -> str:
        return f"{self.error} (HTTP {self.status})" if self.status and self.status != 200 else self.error


class RateLimited(SlackError):
    def __init__(self, error: str, *, status: int | None = 429, retry_after: float):
        super().__init__(error, status=status)
        self.retry_after = retry_after


class TransientSlackError(SlackError):
    pass


class PermanentSlackError(SlackError):
    pass


def _retry_after(headers: Any) -> float:
    raw = None
    if headers:
        raw = headers.get("Retry-After") or headers.get("retry-after")
        if isinstance(raw, list):
            raw = raw[0] if raw else None
    try:
        return max(float(raw), 0.0) if raw is not None else DEFAULT_RETRY_AFTER
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


def _translate(exc: SlackApiError) -> SlackError:
    response = exc.response
    status = getattr(response, "status_code", None)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    error = error or (f"http_{status}" if status else "unknown_error")
    if status == 429 or error == "ratelimited":
        return RateLimited(error, status=status, retry_after=_retry_after(response.headers))
    if (status is not None and status >= 500) or error in TRANSIENT_ERRORS:
        return TransientSlackError(error, status=status)
    return PermanentSlackError(error, status=status)


# Network-level failures: the request may or may not have been processed.
_NETWORK_ERRORS = (
    urllib.error.URLError,
    http.client.HTTPException,
    socket.timeout,
    TimeoutError,
    ConnectionError,
    OSError,
    json.JSONDecodeError,  # an HTML error page from a proxy in front of Slack
)


class SlackTransport:
    def __init__(self, client: WebClient | None = None):
        self.client = client or slack_client()

    def _call(self, fn, **kwargs):
        try:
            return fn(**kwargs)
        except SlackApiError as exc:
            raise _translate(exc) from exc
        except _NETWORK_ERRORS as exc:
            raise TransientSlackError(f"{type(exc).__name__}: {exc}") from exc

    def post(
        self,
        *,
        channel: str,
        thread_ts: str,
        text: str,
        blocks: list[dict[str, Any]],
        key: str,
        payload: dict[str, Any],
    ) -> str:
        """Post in the thread; the key travels in the message metadata. Returns the ts."""
        response = self._call(
            self.client.chat_postMessage,
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            metadata={"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": key, **payload}},
        )
        return response["ts"]

    def find_posted(self, *, channel: str, thread_ts: str, key: str) -> str | None:
        """The ts of the bot's message carrying ``key`` in the thread, if there is one."""
        cursor = None
        while True:
            try:
                response = self._call(
                    self.client.conversations_replies,
                    channel=channel,
                    ts=thread_ts,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
            except PermanentSlackError as exc:
                if exc.error == "thread_not_found":
                    return None
                raise
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                if (
                    metadata.get("event_type") == METADATA_EVENT_TYPE
                    and (metadata.get("event_payload") or {}).get("key") == key
                ):
                    return message["ts"]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
