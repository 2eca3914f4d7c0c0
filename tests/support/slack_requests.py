"""Signed requests as Slack and the helpdesks send them, and running what they stored.

Import these helpers in tests; the fixtures that use them live in conftest files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from base.fake_slack import BOT_USER_ID
from escalation.thread_state import thread_updates_send_pending
from slackbot.models import InboundState, SlackInbound
from slackbot.tasks import slack_inbound_process

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example secret
WEBHOOK_SECRET = "helpdesk-webhook-test-secret"


def slack_headers(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None,
                  retry_num: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + body
    headers = {
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": stamp,
        "HTTP_X_SLACK_SIGNATURE": "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest(),
    }
    if retry_num is not None:
        headers["HTTP_X_SLACK_RETRY_NUM"] = str(retry_num)
        headers["HTTP_X_SLACK_RETRY_REASON"] = "http_timeout"
    return headers


def post_event(client, payload, **kwargs):
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return client.post("/slack/events", data=body, content_type="application/json",
                       **slack_headers(body, **kwargs))


def event_callback(event: dict, *, event_id: str = "Ev0001") -> dict:
    return {
        "token": "unused", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()), "event": event,
        "authorizations": [{"user_id": BOT_USER_ID, "is_bot": True}],
    }


_seq = iter(range(1, 10**6))


def now_ts(minutes_ago: float = 0) -> str:
    return f"{time.time() - minutes_ago * 60:.0f}.{next(_seq):06d}"


def helpdesk_message(ts: str | None = None, ticket_id: str = "4711", channel: str = "CSUPPORT1") -> dict:
    return {
        "type": "message", "subtype": "bot_message", "bot_id": "BZENDESK", "channel": channel,
        "text": f"*Ticket ID*: {ticket_id}\n*Ticket priority*: High\n*Type*: Incident",
        "ts": ts or now_ts(), "event_ts": ts,
    }


def deliver(client, event, *, event_id=None, **kwargs):
    """Post a signed event and run its processing the way the worker would."""
    response = post_event(client, event_callback(event, event_id=event_id or f"Ev{next(_seq)}"), **kwargs)
    assert response.status_code == 200, response.content
    process_pending()
    return response


def button_payload(ticket, posted, *, user="UAMY", action_ts=None, value=None, action_id="snooze"):
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "amy", "name": "amy", "team_id": "T1"},
        "api_app_id": "A1", "token": "unused", "trigger_id": "1.2.3",
        "team": {"id": "T1", "domain": "acme"},
        "container": {"type": "message", "message_ts": posted["ts"], "channel_id": "CSUPPORT1",
                      "is_ephemeral": False, "thread_ts": ticket.slack_ts},
        "channel": {"id": "CSUPPORT1", "name": "support-acme"},
        "message": {"type": "message", "ts": posted["ts"], "text": posted["text"],
                    "blocks": posted["blocks"], "thread_ts": ticket.slack_ts},
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
        "actions": [{"action_id": action_id, "block_id": "act", "type": "button",
                     "value": str(ticket.pk) if value is None else value,
                     "text": {"type": "plain_text", "text": "Snooze 30 min"},
                     "action_ts": action_ts or f"{time.time():.6f}"}],
    }


def post_interaction(client, payload, **kwargs):
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return client.post("/slack/interactions", data=body,
                       content_type="application/x-www-form-urlencoded", **slack_headers(body, **kwargs))


def process_pending():
    """Run what the worker would: the stored deliveries, then the thread updates they queued."""
    for inbound in SlackInbound.objects.filter(state=InboundState.PENDING).order_by("pk"):
        slack_inbound_process(inbound.pk)
    thread_updates_send_pending(older_than=timedelta(0))


def hook_headers(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict:
    """SLA Buddy's webhook signature: HMAC-SHA256 of ``<timestamp>.<raw body>``, as README.md documents."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"HTTP_X_SLABUDDY_TIMESTAMP": stamp, "HTTP_X_SLABUDDY_SIGNATURE": f"sha256={digest}"}


def legacy_hook_headers(body: bytes, *, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """The old body-only form, accepted only with HELPDESK_WEBHOOK_ALLOW_LEGACY_SIGNATURE."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"HTTP_X_SLABUDDY_SIGNATURE": f"sha256={digest}"}


def zendesk_hook_headers(body: bytes, *, secret: str = WEBHOOK_SECRET, at: datetime | None = None) -> dict:
    """Zendesk's own signing: base64(HMAC-SHA256(secret, timestamp + body)), an ISO 8601 timestamp."""
    stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {"HTTP_X_ZENDESK_WEBHOOK_SIGNATURE": base64.b64encode(digest).decode(),
            "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE_TIMESTAMP": stamp}


def post_hook(client, provider, payload, *, secret=WEBHOOK_SECRET, headers=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if headers is None:
        headers = hook_headers(body, secret=secret)
    return client.post(f"/hooks/helpdesk/{provider}", data=body, content_type="application/json", **headers)
