"""What a modal sends back to ``/slack/interactions``: a submitted form, or a tier picked.

Answered inside the request (Slack waits 3 seconds): a submission is
validated and either shown its field errors (``response_action: errors``) or
saved and answered with the result. Only staff may submit: the check is made
again here, because a form can outlive its author's rights.
"""

from __future__ import annotations

from typing import Any

from slackbot.modal_engineer import CALLBACK_ID as ADD_ENGINEER
from slackbot.modal_engineer import add_engineer_submission
from slackbot.modal_kit import notice_view
from slackbot.modal_setup import CALLBACK_ID as SETUP
from slackbot.modal_setup import setup_submission, setup_tier_changed
from slackbot.staff import REFUSAL_TEXT, SlackActor, slack_user_is_staff

OUR_CALLBACKS = (SETUP, ADD_ENGINEER)


def _view(payload: dict[str, Any]) -> dict[str, Any]:
    view = payload.get("view")
    return view if isinstance(view, dict) else {}


def modal_interaction(payload: dict[str, Any]) -> bool:
    """Whether a (signed, parsed) interaction payload comes from one of our modals."""
    return payload.get("type") in ("view_submission", "view_closed", "block_actions") and (
        _view(payload).get("callback_id") in OUR_CALLBACKS
    )


def _actor(payload: dict[str, Any]) -> SlackActor | None:
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str) or not user["id"]:
        return None
    name = user.get("name") or user.get("username") or ""
    return SlackActor(user["id"], name if isinstance(name, str) else "")


def modal_interaction_handle(*, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON answer for Slack, or None for an empty 200."""
    kind, callback = payload.get("type"), _view(payload).get("callback_id")
    actor = _actor(payload)
    if kind == "view_closed" or actor is None:
        return None
    if kind == "block_actions":
        if callback == SETUP and slack_user_is_staff(actor.user_id):
            setup_tier_changed(payload=payload)
        return None
    if not slack_user_is_staff(actor.user_id):
        refused = notice_view(callback_id=f"{callback}_refused", title="Not allowed", text=REFUSAL_TEXT)
        return {"response_action": "update", "view": refused}
    if callback == SETUP:
        return setup_submission(payload=payload, actor=actor)
    return add_engineer_submission(payload=payload, actor=actor)
