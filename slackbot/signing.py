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
ZENDESK_SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"


def webhook_signature(*, secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def zendesk_webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """Zendesk's native webhook signing: base64(HMAC-SHA256(secret, timestamp + body))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_signature_verify(
    *,
    secret: str | None,
    body: bytes,
    signature: str | None,
    zendesk_signature: str | None = None,
    zendesk_timestamp: str | None = None,
) -> SignatureCheck:
    """``X-SlaBuddy-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``, or Zendesk's own headers."""
    if not secret:
        return SignatureCheck(False, 403, "HELPDESK_WEBHOOK_SECRET is not configured")
    if signature:
        expected = webhook_signature(secret=secret, body=body)
        if hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
            return _ok()
        return SignatureCheck(False, 403, "signature mismatch")
    if zendesk_signature and zendesk_timestamp:
        expected = zendesk_webhook_signature(secret=secret, timestamp=zendesk_timestamp, body=body)
        if hmac.compare_digest(expected.encode(), zendesk_signature.strip().encode("utf-8", "replace")):
            return _ok()
        return SignatureCheck(False, 403, "signature mismatch")
    return SignatureCheck(False, 401, f"missing {WEBHOOK_SIGNATURE_HEADER}")
