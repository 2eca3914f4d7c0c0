"""The one Slack Web API client of SLA Buddy, and the one way its failures are classified.

Everything that talks to Slack (the outbox, the channel scan, thread reads,
``chat.update``) gets its client from ``slack_client()``, so tests, benchmarks
and demo mode point ``SLACK_API_BASE_URL`` at a local stand-in
(``base.fake_slack``) and nothing else changes. No retry handlers are
installed: a 429 is rescheduled by the caller, never slept on in a worker.

Each call has a total deadline of ``SLACK_TIMEOUT_SECONDS``: slack_sdk's
``timeout`` bounds one socket operation, so a Slack that drips its answer (or
connects, then hangs, then drips) could hold a worker thread much longer.
``DeadlineWebClient`` shuts the call's sockets down when the deadline passes
(``base.outbound_http.SocketDeadline``); the call then fails as a timeout,
which is ambiguous like any other.

``slack_call`` turns every failure into one of three errors:

- ``RateLimited``: Slack refused the call (429); nothing happened. Retry
  after ``retry_after`` seconds, by re-queuing, never by sleeping.
- ``AmbiguousSlackError``: 5xx, timeout, dropped connection, or one of
  Slack's own "try again" answers. A write may or may not have happened, so
  the next attempt looks before it writes again.
- ``PermanentSlackError``: retrying cannot help (``channel_not_found``,
  ``not_in_channel``, ``invalid_auth``, or any error Slack does not document
  as temporary). Recorded, not retried.
"""

from __future__ import annotations

import functools
import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from base.outbound_http import SocketDeadline

DEMO_TOKEN = "xoxb-demo-mode"

# Slack's own "try again later" answers that arrive with HTTP 200 and ok: false.
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
DEFAULT_RETRY_AFTER = 1.0


class _SocketsOf(threading.local):
    """The sockets the current thread's call has opened (a client may be shared by threads)."""

    def __init__(self) -> None:
        self.open: list[socket.socket] = []


class _TrackedHTTPConnection(http.client.HTTPConnection):
    tracker: _SocketsOf

    def connect(self) -> None:
        super().connect()
        self.tracker.open.append(self.sock)


class _TrackedHTTPSConnection(http.client.HTTPSConnection):
    tracker: _SocketsOf

    def connect(self) -> None:
        super().connect()
        self.tracker.open.append(self.sock)


class _TrackedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, tracker: _SocketsOf):
        super().__init__()
        self.connection = type("Connection", (_TrackedHTTPConnection,), {"tracker": tracker})

    def http_open(self, req):
        return self.do_open(self.connection, req)


class _TrackedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, tracker: _SocketsOf, context):
        super().__init__(context=context)
        self.connection = type("Connection", (_TrackedHTTPSConnection,), {"tracker": tracker})

    def https_open(self, req):
        return self.do_open(self.connection, req, context=self._context)


class DeadlineWebClient(WebClient):
    """slack_sdk's WebClient, every call of which ends within ``deadline`` seconds in total
    (connecting, sending, waiting, reading; slack_sdk's own retries, if any, included)."""

    def __init__(self, *args: Any, deadline: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self._sockets = _SocketsOf()

    def api_call(self, *args: Any, **kwargs: Any) -> Any:
        self._sockets.open = sockets = []
        guard = SocketDeadline(self.deadline, lambda: list(sockets))
        try:
            with guard:
                return super().api_call(*args, **kwargs)
        except (OSError, http.client.HTTPException, json.JSONDecodeError) as exc:
            if guard.expired:
                raise TimeoutError(f"no answer within {self.deadline:g} s") from exc
            raise
        finally:
            for sock in sockets:
                try:
                    sock.close()
                except OSError:
                    pass

    def _perform_urllib_http_request_internal(self, url: str, req: urllib.request.Request) -> dict[str, Any]:
        # slack_sdk's own, with an opener whose connections report their sockets to the deadline.
        if not url.lower().startswith("http"):
            raise SlackRequestError(f"Invalid URL detected: {url}")
        handlers: list[Any] = [_TrackedHTTPHandler(self._sockets),
                               _TrackedHTTPSHandler(self._sockets, self.ssl)]
        if isinstance(self.proxy, str):
            handlers.insert(0, urllib.request.ProxyHandler({"http": self.proxy, "https": self.proxy}))
        resp = urllib.request.build_opener(*handlers).open(req, timeout=self.timeout)
        if resp.headers.get_content_type() == "application/gzip":
            return {"status": resp.code, "headers": resp.headers, "body": resp.read()}
        charset = resp.headers.get_content_charset() or "utf-8"
        return {"status": resp.code, "headers": resp.headers, "body": resp.read().decode(charset)}


def slack_client() -> WebClient:
    client = DeadlineWebClient(
        token=settings.SLACK_BOT_TOKEN or DEMO_TOKEN,
        base_url=settings.SLACK_API_BASE_URL,
        timeout=settings.SLACK_TIMEOUT_SECONDS,
        deadline=settings.SLACK_TIMEOUT_SECONDS,
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


class SlackError(Exception):
    def __init__(self, error: str, *, status: int | None = None):
        super().__init__(error)
        self.error = error
        self.status = status
        # Raised as the failure is seen: a retry's wait counts from here, not from before the call.
        self.observed_at = timezone.now()

    def describe(self) -> str:
        return f"{self.error} (HTTP {self.status})" if self.status and self.status != 200 else self.error


class RateLimited(SlackError):
    def __init__(self, error: str, *, status: int | None = 429, retry_after: float):
        super().__init__(error, status=status)
        self.retry_after = retry_after


class AmbiguousSlackError(SlackError):
    """The call may or may not have taken effect in Slack."""


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


def _from_api_error(exc: SlackApiError) -> SlackError:
    response = exc.response
    status = getattr(response, "status_code", None)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    error = error or (f"http_{status}" if status else "unknown_error")
    if status == 429 or error == "ratelimited":
        return RateLimited(error, status=status, retry_after=_retry_after(response.headers))
    if (status is not None and status >= 500) or error in TRANSIENT_ERRORS:
        return AmbiguousSlackError(error, status=status)
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


def slack_call(method: Callable[..., Any], **kwargs: Any) -> Any:
    """Call one Web API method of a ``slack_client()``; failures raise a ``SlackError``."""
    try:
        return method(**kwargs)
    except SlackApiError as exc:
        raise _from_api_error(exc) from exc
    except _NETWORK_ERRORS as exc:
        raise AmbiguousSlackError(f"{type(exc).__name__}: {exc}") from exc
