"""Request signatures: Slack's (v0, 5-minute window) and the helpdesk webhook's.

Checked on the raw body before anything is parsed or written. Secrets are
never logged, not even on failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    status: int  # 200 when ok; 401 missing/unsigned, 403 wrong or stale
    reason: str


def _ok() -> SignatureCheck:
    return SignatureCheck(True, 200, "ok")


def slack_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_signature_verify(
    *,
    secret: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    max_age_seconds: int,
    now: float | None = None,
) -> SignatureCheck:
    """Slack's scheme: ``v0=`` + HMAC-SHA256(secret, ``v0:<timestamp>:<raw body>``)."""
    if not secret:
        return SignatureCheck(False, 403, "SLACK_SIGNING_SECRET is not configured")
    if not timestamp or not signature:
        return SignatureCheck(False, 401, "missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        return SignatureCheck(False, 401, "timestamp is not an integer")
    current = time.time() if now is None else now
    if abs(current - sent_at) > max_age_seconds:  # replayed (or badly skewed) request
        return SignatureCheck(False, 403, "timestamp outside the allowed window")
    expected = slack_signature(secret=secret, timestamp=timestamp, body=body)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return SignatureCheck(False, 403, "signature mismatch")
    return _ok()


WEBHOOK_SIGNATURE_HEADER = "X-SlaBuddy-Signature"
WEBHOOK_TIMESTAMP_HEADER = "X-SlaBuddy-Timestamp"
ZENDESK_SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"


def webhook_signature(*, secret: str, body: bytes, timestamp: str | None = None) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``<timestamp>.<raw body>`` (of the body alone in the legacy form)."""
    signed = body if timestamp is None else timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def zendesk_webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """Zendesk's native webhook signing: base64(HMAC-SHA256(secret, timestamp + body))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _epoch_seconds(raw: str) -> float | None:
    """Our header: integer Unix seconds. Zendesk's: ISO 8601 (``2026-11-27T10:12:00Z``)."""
    raw = raw.strip()
    if raw.isdigit() and len(raw) <= 12:
        return float(raw)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def _fresh(raw: str, *, max_age_seconds: int, now: float) -> SignatureCheck | None:
    """None when the timestamp is within the window, else the refusal."""
    sent_at = _epoch_seconds(raw)
    if sent_at is None:
        return SignatureCheck(False, 401, "timestamp is not a time")
    if abs(now - sent_at) > max_age_seconds:  # replayed (or badly skewed) request
        return SignatureCheck(False, 403, "timestamp outside the allowed window")
    return None


def _matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "replace"))


def webhook_signature_verify(
    *,
    secret: str | None,
    body: bytes,
    signature: str | None,
    timestamp: str | None = None,
    zendesk_signature: str | None = None,
    zendesk_timestamp: str | None = None,
    max_age_seconds: int,
    allow_legacy: bool = False,
    now: float | None = None,
) -> SignatureCheck:
    """SLA Buddy's ``X-SlaBuddy-Signature`` over ``<X-SlaBuddy-Timestamp>.<body>``, or Zendesk's headers.

    Both forms sign a timestamp that must lie within ``max_age_seconds`` of now,
    so a captured request cannot be replayed later. The old body-only form
    (no timestamp header) is accepted only when ``allow_legacy`` is set.
    """
    if not secret:
        return SignatureCheck(False, 403, "HELPDESK_WEBHOOK_SECRET is not configured")
    current = time.time() if now is None else now
    if signature:
        if timestamp is None:
            if not allow_legacy:
                return SignatureCheck(False, 401, f"missing {WEBHOOK_TIMESTAMP_HEADER}")
            ok = _matches(webhook_signature(secret=secret, body=body), signature)
            return _ok() if ok else SignatureCheck(False, 403, "signature mismatch")
        stale = _fresh(timestamp, max_age_seconds=max_age_seconds, now=current)
        if stale is not None:
            return stale
        if _matches(webhook_signature(secret=secret, body=body, timestamp=timestamp.strip()), signature):
            return _ok()
        return SignatureCheck(False, 403, "signature mismatch")
    if zendesk_signature and zendesk_timestamp:
        stale = _fresh(zendesk_timestamp, max_age_seconds=max_age_seconds, now=current)
        if stale is not None:
            return stale
        expected = zendesk_webhook_signature(secret=secret, timestamp=zendesk_timestamp, body=body)
        if _matches(expected, zendesk_signature):
            return _ok()
        return SignatureCheck(False, 403, "signature mismatch")
    return SignatureCheck(False, 401, f"missing {WEBHOOK_SIGNATURE_HEADER}")
