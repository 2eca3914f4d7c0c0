"""Paging outside Slack: PagerDuty Events API v2, Grafana OnCall's formatted webhook, a signed webhook.

Pages use the outbox's table and its rules (``base.models.OutboxMessage``,
purpose ``page``), not its Slack sender:

1. ``page_record`` writes the page down under its key
   (``page:ticket:12:level:3``, ``…:resolve``) before anything is sent. The
   row holds the provider, the *name* of the credential setting and the
   provider-neutral event; never a credential.
2. ``page_send`` (never inside a transaction) takes the row with a
   conditional update and a lease, reads the credential from settings, and
   makes one HTTP call through ``page_http_post`` (the one network seam).
3. It records what happened, with one error model (``PageError``): sent;
   rate limited (nothing happened, retry later); ambiguous (5xx, timeout:
   it may have been accepted, so the row stays "sending" and the next attempt
   sends again: every provider de-duplicates on the key we send, PagerDuty's
   ``dedup_key``, OnCall's ``alert_uid``, the webhook's ``X-SlaBuddy-Idempotency-Key``);
   or permanent (failed, not retried).

There is no way to ask a pager whether an earlier attempt landed, so the
providers' de-duplication is what makes a retry safe: one incident however
often a timed-out trigger is sent again. Retrying is the caller's business;
nothing here sleeps. Credentials and webhook URLs never appear in the row,
in an error or in a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from base import page_credentials
from base.models import OutboxMessage, OutboxPurpose, OutboxStatus
from base.outbox import DeliveryStatus, outbox_record

logger = logging.getLogger("slabuddy.pages")

MAX_RESPONSE_BYTES = 100_000
DEFAULT_RETRY_AFTER = 30.0
TRIGGER, RESOLVE = "trigger", "resolve"
WEBHOOK_TIMESTAMP_HEADER = "X-SlaBuddy-Timestamp"
WEBHOOK_SIGNATURE_HEADER = "X-SlaBuddy-Signature"
WEBHOOK_KEY_HEADER = "X-SlaBuddy-Idempotency-Key"


class PageProvider(models.TextChoices):
    PAGERDUTY = page_credentials.PAGERDUTY, "PagerDuty"
    ONCALL = page_credentials.ONCALL, "Grafana OnCall"
    WEBHOOK = page_credentials.WEBHOOK, "Webhook"


# PagerDuty severities by ticket priority; OnCall and webhooks get the same word.
SEVERITY = {"urgent": "critical", "high": "error", "normal": "warning", "low": "info"}


class PageError(Exception):
    """A page that did not go through. ``permanent``: retrying cannot help.
    Otherwise it may be retried, after ``retry_after`` seconds when the
    provider said so (a rate limit: nothing happened) or at once-ish
    (ambiguous: it may have been accepted; the provider de-duplicates)."""

    def __init__(self, error: str, *, permanent: bool, retry_after: float | None = None,
                 status: int | None = None):
        super().__init__(error)
        self.error, self.permanent, self.retry_after, self.status = error, permanent, retry_after, status

    @property
    def rate_limited(self) -> bool:
        return not self.permanent and self.retry_after is not None

    def describe(self) -> str:
        return f"{self.error} (HTTP {self.status})" if self.status else self.error


@dataclass(frozen=True)
class PageEvent:
    """What a page says, whatever the provider. Stored in the outbox row as JSON."""

    action: str  # "trigger" or "resolve"
    dedup_key: str  # ticket and level: the same for every attempt and for the resolve
    title: str
    message: str = ""
    severity: str = "warning"
    helpdesk_url: str = ""
    thread_url: str = ""
    admin_url: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageEvent:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


@dataclass(frozen=True)
class PageDelivery:
    status: DeliveryStatus
    message: OutboxMessage
    reference: str = ""  # what the provider calls it (PagerDuty's dedup_key, OnCall's alert_uid)
    recovered: bool = False  # sent by an earlier attempt
    retry_after: float = 0.0
    error: str = ""

    @property
    def provider_label(self) -> str:
        return provider_label((self.message.payload or {}).get("provider", ""))


def provider_label(provider: str) -> str:
    return dict(PageProvider.choices).get(provider, provider or "the pager")


# --- the network seam ------------------------------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    retry_after: str | None = None  # the Retry-After header, if any


def page_http_post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> HttpAnswer:
    """POST one JSON document; returns any HTTP answer. A failure before an
    answer raises an ambiguous ``PageError`` that names the kind of failure,
    never the URL (it may hold a token). The one network seam of paging."""
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json",
                 "User-Agent": "SLA-Buddy", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (URL from settings)
            return HttpAnswer(response.status, response.read(MAX_RESPONSE_BYTES))
    except urllib.error.HTTPError as exc:
        data = exc.read(MAX_RESPONSE_BYTES) if exc.fp is not None else b""
        return HttpAnswer(exc.code, data, exc.headers.get("Retry-After") if exc.headers else None)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kind = "timeout" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else "unreachable"
        raise PageError(f"{kind}: {type(reason).__name__}", permanent=False) from None


def _retry_after(value: str | None) -> float:
    try:
        return max(float(value), 0.0) if value else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _classify(answer: HttpAnswer) -> None:
    """Raise the PageError an HTTP answer means; return for a 2xx."""
    status = answer.status
    if 200 <= status < 300:
        return
    if status == 429:
        raise PageError("rate limited", permanent=False, retry_after=_retry_after(answer.retry_after),
                        status=status)
    if status >= 500 or status == 408:
        raise PageError("server error", permanent=False, status=status)
    detail = ""
    try:
        parsed = json.loads(answer.body or b"{}")
        if isinstance(parsed, dict):
            errors = parsed.get("errors")
            detail = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(
                parsed.get("message") or "")
    except ValueError:
        pass
    raise PageError(f"refused{': ' + detail[:300] if detail else ''}", permanent=True, status=status)


def _post_json(url: str, body: dict[str, Any], *, timeout: float, headers: dict[str, str] | None = None
               ) -> HttpAnswer:
    answer = page_http_post(url, body=json.dumps(body).encode(), headers=headers or {}, timeout=timeout)
    _classify(answer)
    return answer


# --- one small transport per provider ---------------------------------------------


class PagerDutyTransport:
    """PagerDuty Events API v2: ``trigger`` / ``resolve`` with our ``dedup_key``."""

    def __init__(self, *, routing_key: str, url: str, timeout: float):
        self.routing_key, self.url, self.timeout = routing_key, url, timeout

    def body(self, event: PageEvent) -> dict[str, Any]:
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": event.action,
            "dedup_key": event.dedup_key,
        }
        if event.action == TRIGGER:
            body["payload"] = {
                "summary": event.title[:1024],
                "source": "SLA Buddy",
                "severity": event.severity,
                "component": str(event.details.get("tier") or "")[:100] or None,
                "group": str(event.details.get("channel") or "")[:100] or None,
                "class": "unanswered support ticket",
                "custom_details": {**event.details, "message": event.message},
            }
            body["payload"] = {k: v for k, v in body["payload"].items() if v is not None}
            links = [("Helpdesk ticket", event.helpdesk_url), ("Slack thread", event.thread_url)]
            body["links"] = [{"href": href, "text": text} for text, href in links if href]
            body["client"] = "SLA Buddy"
            if event.admin_url:
                body["client_url"] = event.admin_url
        return body

    def send(self, event: PageEvent, *, key: str) -> str:
        answer = _post_json(self.url, self.body(event), timeout=self.timeout)
        try:
            data = json.loads(answer.body or b"{}")
        except ValueError:
            data = {}
        return str((data if isinstance(data, dict) else {}).get("dedup_key") or event.dedup_key)


class OnCallTransport:
    """Grafana OnCall's formatted webhook: ``alert_uid`` groups the alerts of one
    ticket and level, ``state`` is ``alerting`` and then ``ok`` (the value its
    default auto-resolve template recognises)."""

    def __init__(self, *, url: str, timeout: float):
        self.url, self.timeout = url, timeout

    @staticmethod
    def body(event: PageEvent) -> dict[str, Any]:
        return {
            "alert_uid": event.dedup_key,
            "title": event.title,
            "state": "alerting" if event.action == TRIGGER else "ok",
            "link_to_upstream_details": event.helpdesk_url or event.thread_url,
            "message": event.message,
        }

    def send(self, event: PageEvent, *, key: str) -> str:
        _post_json(self.url, self.body(event), timeout=self.timeout)
        return event.dedup_key


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256(secret, ``<timestamp>.<raw body>``)."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class WebhookTransport:
    """Any JSON endpoint, signed with HMAC-SHA256 over a timestamp and the body."""

    def __init__(self, *, url: str, secret: str, timeout: float):
        self.url, self.secret, self.timeout = url, secret, timeout

    @staticmethod
    def body(event: PageEvent, *, key: str) -> dict[str, Any]:
        fields = {name: value for name, value in event.as_json().items() if name != "action"}
        return {"id": key, "event": event.action, **fields}

    def send(self, event: PageEvent, *, key: str) -> str:
        raw = json.dumps(self.body(event, key=key), sort_keys=True).encode()
        stamp = str(int(time.time()))  # signed afresh on every attempt: receivers keep a replay window
        headers = {
            WEBHOOK_TIMESTAMP_HEADER: stamp,
            WEBHOOK_SIGNATURE_HEADER: webhook_signature(secret=self.secret, timestamp=stamp, body=raw),
            WEBHOOK_KEY_HEADER: key,
        }
        _classify(page_http_post(self.url, body=raw, headers=headers, timeout=self.timeout))
        return key


Transport = PagerDutyTransport | OnCallTransport | WebhookTransport


def page_transport(*, provider: str, credential: str) -> Transport:
    """The transport for a provider with the credential setting a step names.
    A missing or misnamed credential is a permanent PageError naming the setting."""
    problem = page_credentials.credential_name_error(provider=provider, credential=credential)
    if problem:
        raise PageError(problem, permanent=True)
    name = page_credentials.credential_name_for(provider=provider, credential=credential)
    value = settings.PAGE_CREDENTIALS.get(name)
    if not value:
        raise PageError(f"{name} is not set on this server", permanent=True)
    timeout = settings.PAGE_TIMEOUT_SECONDS
    if provider == PageProvider.PAGERDUTY:
        return PagerDutyTransport(routing_key=value, url=settings.PAGERDUTY_EVENTS_URL, timeout=timeout)
    if provider == PageProvider.ONCALL:
        return OnCallTransport(url=value, timeout=timeout)
    secret_name = page_credentials.webhook_secret_name(name)
    secret = settings.PAGE_CREDENTIALS.get(secret_name)
    if not secret:
        raise PageError(f"{secret_name} is not set on this server", permanent=True)
    return WebhookTransport(url=value, secret=secret, timeout=timeout)


# --- recording and sending -------------------------------------------------------------


def page_lease() -> timedelta:
    return timedelta(seconds=max(30, 3 * settings.PAGE_TIMEOUT_SECONDS))


def page_record(
    *,
    key: str,
    provider: str,
    credential: str,
    event: PageEvent,
    channel: str,
    thread_ts: str,
    context: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Write a page down before it is sent; idempotent per key (an existing row keeps
    its event once it may have been sent). Stores the credential's name, never its value."""
    return outbox_record(
        key=key,
        purpose=OutboxPurpose.PAGE,
        channel=channel,
        thread_ts=thread_ts,
        text=event.title,
        payload={"provider": provider, "credential": credential, "event": event.as_json()},
        context=context,
    )


def _claim(message: OutboxMessage, *, held: bool) -> OutboxMessage | None:
    now = timezone.now()
    free = Q() if held else Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    won = OutboxMessage.objects.filter(
        Q(pk=message.pk, purpose=OutboxPurpose.PAGE),
        Q(status__in=(OutboxStatus.NEW, OutboxStatus.RETRY, OutboxStatus.SENDING)),
        free,
    ).update(lease_until=now + page_lease(), updated_at=now)
    if not won:
        return None
    message.refresh_from_db()
    return message


def _finish(message: OutboxMessage, **changes: Any) -> None:
    changes.setdefault("lease_until", None)
    changes["updated_at"] = timezone.now()
    OutboxMessage.objects.filter(pk=message.pk).update(**changes)
    message.refresh_from_db()


def _reference(message: OutboxMessage) -> str:
    return str((message.context or {}).get("reference") or "")


def _scrub(text: str) -> str:
    """Belt and braces: no credential value ever leaves in an error text."""
    for secret in settings.PAGE_CREDENTIALS.values():
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def page_send(message: OutboxMessage, *, held: bool = False) -> PageDelivery:
    """Send a recorded page (call it outside any transaction).

    ``held``: the caller holds an exclusive claim covering this page (the
    engine's claim on its level), so a lease left by a sender that died is
    taken over at once.
    """
    claimed = _claim(message, held=held)
    if claimed is None:
        message.refresh_from_db()
        if message.status == OutboxStatus.SENT:
            return PageDelivery(DeliveryStatus.SENT, message, reference=_reference(message), recovered=True)
        if message.status == OutboxStatus.FAILED:
            return PageDelivery(DeliveryStatus.PERMANENT, message, error=message.last_error)
        return PageDelivery(DeliveryStatus.IN_FLIGHT, message)
    message = claimed
    payload = message.payload or {}
    event = PageEvent.from_json(payload.get("event") or {})
    may_have_landed = message.status == OutboxStatus.SENDING and message.attempts > 0
    try:
        transport = page_transport(provider=payload.get("provider", ""),
                                   credential=payload.get("credential", ""))
    except PageError as exc:
        return _failed(message, exc, may_have_landed=may_have_landed)
    _finish(message, status=OutboxStatus.SENDING, attempts=F("attempts") + 1,
            lease_until=timezone.now() + page_lease())
    try:
        reference = transport.send(event, key=message.key)
    except PageError as exc:
        return _failed(message, exc, may_have_landed=may_have_landed)
    context = {**(message.context or {}), "reference": reference}
    _finish(message, status=OutboxStatus.SENT, last_error="", context=context)
    logger.info("page_sent key=%s provider=%s reference=%s recovered=%s", message.key,
                payload.get("provider"), reference, may_have_landed)
    return PageDelivery(DeliveryStatus.SENT, message, reference=reference)


def _failed(message: OutboxMessage, exc: PageError, *, may_have_landed: bool) -> PageDelivery:
    error = _scrub(exc.describe())
    if exc.permanent:
        _finish(message, status=OutboxStatus.FAILED, last_error=error)
        logger.error("page_failed key=%s error=%s", message.key, error)
        return PageDelivery(DeliveryStatus.PERMANENT, message, error=error)
    if exc.rate_limited:
        # Nothing happened this time; an earlier ambiguous attempt still may have.
        _finish(message, status=OutboxStatus.SENDING if may_have_landed else OutboxStatus.RETRY,
                last_error=error)
        return PageDelivery(DeliveryStatus.RATE_LIMITED, message, retry_after=exc.retry_after or 0.0,
                            error=error)
    _finish(message, status=OutboxStatus.SENDING, last_error=error)
    logger.warning("page_ambiguous key=%s error=%s", message.key, error)
    return PageDelivery(DeliveryStatus.AMBIGUOUS, message, error=error)


def page_certainly_unsent(message: OutboxMessage) -> bool:
    """No attempt of this page can have reached the provider."""
    return message.status in (OutboxStatus.NEW, OutboxStatus.RETRY) or (
        message.status == OutboxStatus.SENDING and message.attempts == 0
    )


def page_skip(message: OutboxMessage, *, reason: str) -> bool:
    """Give up a page that was never sent (its ticket was answered first). False if it
    may have been sent meanwhile, or a sender holds it right now."""
    now = timezone.now()
    never = Q(status__in=(OutboxStatus.NEW, OutboxStatus.RETRY)) | Q(status=OutboxStatus.SENDING, attempts=0)
    skipped = OutboxMessage.objects.filter(
        Q(pk=message.pk, purpose=OutboxPurpose.PAGE), never,
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
    ).update(status=OutboxStatus.FAILED, last_error=f"not sent: {reason}", lease_until=None, updated_at=now)
    if skipped:
        message.refresh_from_db()
    return bool(skipped)


def page_in_flight(message: OutboxMessage) -> bool:
    """A sender holds the page right now."""
    return message.lease_until is not None and message.lease_until > timezone.now()
