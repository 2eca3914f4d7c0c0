"""Building Slack modals and reading what people typed into them.

A modal is opened inside the slash command's own request: Slack's
``trigger_id`` expires about 3 seconds after the command, so there is no time
for a queue. The call gets a short timeout of its own
(``MODAL_TIMEOUT_SECONDS``) and a failure is answered in words, never retried.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_sdk import WebClient

from base.slack_api import SlackError, slack_call, slack_client

logger = logging.getLogger("slabuddy.modals")

MODAL_TIMEOUT_SECONDS = 2.5  # inside the 3 s a trigger_id lives, and Slack's 3 s for our answer
ACTION = "value"  # every input's action_id: blocks are told apart by their block_id


def modal_client() -> WebClient:
    client = slack_client()
    client.timeout = MODAL_TIMEOUT_SECONDS
    return client


def modal_open(*, trigger_id: str, view: dict[str, Any]) -> str:
    """Open a modal; returns '' or what went wrong (for the person who asked)."""
    client = modal_client()
    try:
        slack_call(client.views_open, trigger_id=trigger_id, view=view)
    except SlackError as exc:
        logger.warning("views_open_failed callback=%s error=%s", view.get("callback_id"), exc.describe())
        return exc.describe()
    return ""


def modal_update(*, view_id: str, view_hash: str, view: dict[str, Any]) -> str:
    client = modal_client()
    try:
        slack_call(client.views_update, view_id=view_id, hash=view_hash or None, view=view)
    except SlackError as exc:
        logger.warning("views_update_failed callback=%s error=%s", view.get("callback_id"), exc.describe())
        return exc.describe()
    return ""


# --- Block Kit ----------------------------------------------------------------------


def plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": (text or " ")[:limit], "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": (text or " ")[:3000]}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(text)]}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(text)}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def option(value: str, label: str) -> dict[str, Any]:
    return {"text": plain(label, 75), "value": value}


def select_input(block_id: str, label: str, options: list[tuple[str, str]], *, initial: str | None = None,
                 optional: bool = False, dispatch: bool = False, hint: str = "") -> dict[str, Any]:
    element: dict[str, Any] = {"type": "static_select", "action_id": ACTION,
                               "options": [option(v, text) for v, text in options][:100]}
    chosen = [option(v, text) for v, text in options if v == initial]
    if chosen:
        element["initial_option"] = chosen[0]
    return _input(block_id, label, element, optional=optional, dispatch=dispatch, hint=hint)


def text_input(block_id: str, label: str, *, initial: str = "", multiline: bool = False,
               optional: bool = False, placeholder: str = "", hint: str = "",
               max_length: int = 3000) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": ACTION, "multiline": multiline,
                               "max_length": max_length}
    if initial:
        element["initial_value"] = initial[:max_length]
    if placeholder:
        element["placeholder"] = plain(placeholder)
    return _input(block_id, label, element, optional=optional, hint=hint)


def user_input(block_id: str, label: str) -> dict[str, Any]:
    return _input(block_id, label, {"type": "users_select", "action_id": ACTION,
                                    "placeholder": plain("Pick a person")})


def checkbox_input(block_id: str, label: str, choice: str, *, checked: bool,
                   hint: str = "") -> dict[str, Any]:
    element: dict[str, Any] = {"type": "checkboxes", "action_id": ACTION, "options": [option("yes", choice)]}
    if checked:
        element["initial_options"] = [option("yes", choice)]
    return _input(block_id, label, element, optional=True, hint=hint)


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = False,
           dispatch: bool = False, hint: str = "") -> dict[str, Any]:
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "label": plain(label),
                             "element": element, "optional": optional}
    if dispatch:
        block["dispatch_action"] = True
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def modal(*, callback_id: str, title: str, blocks: list[dict[str, Any]], submit: str | None = "Save",
          metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, 24),
        "close": plain("Close" if submit is None else "Cancel", 24),
        "blocks": blocks[:100],
        "private_metadata": json.dumps(metadata or {}, separators=(",", ":"))[:3000],
    }
    if submit is not None:
        view["submit"] = plain(submit, 24)
    return view


def notice_view(*, callback_id: str, title: str, text: str) -> dict[str, Any]:
    """A modal that only says something (a result, or a refusal)."""
    return modal(callback_id=callback_id, title=title, blocks=[section(text)], submit=None)


# --- reading a submitted view ---------------------------------------------------------


def view_metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def form_values(view: dict[str, Any]) -> dict[str, Any]:
    """block_id -> what was entered: a string, a list (checkboxes), or None when empty."""
    values = ((view.get("state") or {}).get("values")) or {}
    found: dict[str, Any] = {}
    if not isinstance(values, dict):
        return found
    for block_id, actions in values.items():
        if not isinstance(actions, dict) or not actions:
            continue
        element = actions.get(ACTION) or next(iter(actions.values()))
        found[block_id] = _element_value(element) if isinstance(element, dict) else None
    return found


def _element_value(element: dict[str, Any]) -> Any:
    kind = element.get("type")
    if kind == "static_select":
        selected = element.get("selected_option")
        return selected.get("value") if isinstance(selected, dict) else None
    if kind == "users_select":
        return element.get("selected_user")
    if kind == "checkboxes":
        return [o.get("value") for o in element.get("selected_options") or [] if isinstance(o, dict)]
    value = element.get("value")
    return value if isinstance(value, str) else None
