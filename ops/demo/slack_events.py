"""Act like Slack for the demo: post as a person, then deliver the signed event.

The message goes into the stand-in Slack (so the thread shows it) and the
event goes, signed with the signing secret, through HTTP into our own
``POST /slack/events``: the same path a real Slack workspace uses.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
import urllib.request

from django.conf import settings

from base.slack_api import slack_client
from slackbot.signing import slack_signature


def demo_post_as(*, channel: str, user: str, text: str, thread_ts: str | None = None) -> dict:
    args = {"channel": channel, "user": user, "text": text}
    if thread_ts:
        args["thread_ts"] = thread_ts
    response = slack_client().api_call("fake.postMessage", json=args)
    return response["message"]


def demo_fake_call(method: str, **args) -> dict:
    """One of the stand-in Slack's own methods (``fake.*``: post as a bot, edit, react)."""
    return slack_client().api_call(f"fake.{method}", json=args)


def _signed_post(url: str, body: bytes, content_type: str) -> int:
    secret = settings.SLACK_SIGNING_SECRET
    if not secret:
        raise RuntimeError("SLACK_SIGNING_SECRET is not set: start the demo with `make run`.")
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": slack_signature(secret=secret, timestamp=timestamp, body=body),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def demo_press_button(*, interactions_url: str, channel: str, user: str, message: dict,
                      action_id: str) -> int:
    """Press one of the buttons of a bot message, as Slack delivers a click (block_actions, signed)."""
    button = next(e for b in message.get("blocks") or [] if b.get("type") == "actions"
                  for e in b.get("elements") or [] if e.get("action_id") == action_id)
    payload = {
        "type": "block_actions", "user": {"id": user, "team_id": "TFAKETEAM1"}, "api_app_id": "ADEMOAPP01",
        "team": {"id": "TFAKETEAM1", "domain": "demo"}, "trigger_id": "demo.trigger",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel,
                      "is_ephemeral": False, "thread_ts": message.get("thread_ts", "")},
        "channel": {"id": channel}, "message": message,
        "actions": [{**button, "block_id": "slabuddy_actions", "action_ts": f"{time.time():.6f}"}],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return _signed_post(interactions_url, body, "application/x-www-form-urlencoded")


def demo_deliver_event(*, events_url: str, event: dict) -> int:
    body = json.dumps(
        {
            "token": "demo",
            "team_id": "TFAKETEAM1",
            "api_app_id": "ADEMOAPP01",
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(8).upper(),
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()
    return _signed_post(events_url, body, "application/json")


def message_event(*, channel: str, message: dict, event_type: str = "message") -> dict:
    event = {
        "type": event_type,
        "channel": channel,
        "channel_type": "channel",
        "user": message["user"],
        "text": message["text"],
        "ts": message["ts"],
        "event_ts": message["ts"],
    }
    if message.get("thread_ts"):
        event["thread_ts"] = message["thread_ts"]
    return event
