"""Slash commands and modal forms as Slack sends them: signed, form-encoded, with the values a
person typed into the view Slack holds (the fake Slack's ``views.open`` / ``views.update``)."""

from __future__ import annotations

import json
from itertools import count
from typing import Any
from urllib.parse import urlencode

from tests.support.slack_requests import post_interaction, slack_headers

_triggers = count(1)


def post_command(client, text: str, *, user: str = "UADMIN", channel: str = "CSUPPORT1",
                 channel_name: str = "support-acme", **kwargs):
    fields = {
        "token": "unused", "team_id": "T1", "team_domain": "acme", "channel_id": channel,
        "channel_name": channel_name, "user_id": user, "user_name": user.lower(), "command": "/sla",
        "text": text, "api_app_id": "A1", "response_url": "https://hooks.slack.com/commands/T1/1/x",
        "trigger_id": f"{next(_triggers)}.1.abcdef",
    }
    body = urlencode(fields).encode()
    return client.post("/slack/commands", data=body, content_type="application/x-www-form-urlencoded",
                       **slack_headers(body, **kwargs))


def _state_entry(element: dict[str, Any], value: Any) -> dict[str, Any]:
    kind = element["type"]
    if kind == "static_select":
        chosen = next((o for o in element["options"] if o["value"] == value), None)
        return {"type": kind, "selected_option": chosen}
    if kind == "users_select":
        return {"type": kind, "selected_user": value}
    if kind == "checkboxes":
        chosen = [o for o in element["options"] if o["value"] in (value or [])]
        return {"type": kind, "selected_options": chosen}
    return {"type": kind, "value": value or None}


def _initial(element: dict[str, Any]) -> Any:
    if element["type"] == "static_select":
        return (element.get("initial_option") or {}).get("value")
    if element["type"] == "checkboxes":
        return [o["value"] for o in element.get("initial_options") or []]
    return element.get("initial_value")


def filled(view: dict[str, Any], **typed: Any) -> dict[str, Any]:
    """The view as submitted: every input keeps what it showed unless ``typed`` (by block id) says
    otherwise. Block ids with dots are passed through a dict: ``filled(view, **{"t1.l1.delay": "5m"})``."""
    unknown = set(typed) - {b.get("block_id") for b in view["blocks"]}
    assert not unknown, f"no such input in the view: {unknown}"
    values = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        value = typed.get(block["block_id"], _initial(element))
        values[block["block_id"]] = {element["action_id"]: _state_entry(element, value)}
    return {**view, "state": {"values": values}}


def submit(client, view: dict[str, Any], *, as_user: str = "UADMIN", **typed: Any):
    payload = {
        "type": "view_submission", "team": {"id": "T1", "domain": "acme"},
        "user": {"id": as_user, "username": as_user.lower(), "name": as_user.lower(), "team_id": "T1"},
        "api_app_id": "A1", "token": "unused", "trigger_id": f"{next(_triggers)}.2.abcdef",
        "view": filled(view, **typed),
    }
    return post_interaction(client, payload)


def pick(client, view: dict[str, Any], *, block_id: str, value: str, as_user: str = "UADMIN"):
    """Choose an option of a select that dispatches its action at once (block_actions from a modal)."""
    submitted = filled(view, **{block_id: value})
    element = next(b["element"] for b in view["blocks"] if b.get("block_id") == block_id)
    payload = {
        "type": "block_actions", "team": {"id": "T1", "domain": "acme"},
        "user": {"id": as_user, "username": as_user.lower(), "name": as_user.lower(), "team_id": "T1"},
        "api_app_id": "A1", "token": "unused", "trigger_id": f"{next(_triggers)}.3.abcdef",
        "container": {"type": "view", "view_id": view["id"]},
        "view": submitted,
        "actions": [{"type": "static_select", "action_id": element["action_id"], "block_id": block_id,
                     "selected_option": submitted["state"]["values"][block_id][element["action_id"]][
                         "selected_option"], "action_ts": "1790000000.000200"}],
    }
    return post_interaction(client, payload)


def command_text(response) -> str:
    """The ephemeral answer's text."""
    data = json.loads(response.content)
    assert data["response_type"] == "ephemeral"
    return data["text"]
