"""``/sla add-engineer``: put a Slack user on the roster (or update them) from a modal.

Name, display name and email are read from Slack with ``users.info`` when the
form is submitted (with the modal's short timeout: Slack waits 3 seconds for
the answer). An engineer already on the roster with that Slack id, or with
that email (say, added from a calendar), is updated rather than duplicated.
The change is recorded in the admin log with who made it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from base.slack_api import SlackError, slack_call
from calendars.models import Engineer, Role
from slackbot.modal_kit import (
    checkbox_input,
    context,
    form_values,
    modal,
    modal_client,
    notice_view,
    select_input,
    user_input,
)
from slackbot.staff import ADDED, CHANGED, SlackActor, config_change_record

CALLBACK_ID = "slabuddy_add_engineer"


def add_engineer_view() -> dict[str, Any]:
    blocks = [
        user_input("user", "Who"),
        select_input("role", "Role", list(Role.choices), initial=Role.SUPPORT_ENGINEER),
        checkbox_input("admin", "Admin", "May change SLA Buddy's configuration from Slack", checked=False),
        context("Their name, display name and email are read from Slack. Someone already on the roster "
                "(with this Slack account or this email) is updated, not added twice."),
    ]
    return modal(callback_id=CALLBACK_ID, title="Add an engineer", blocks=blocks, submit="Add")


def _profile(user: dict[str, Any]) -> tuple[str, str, str]:
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    name = profile.get("real_name") or user.get("real_name") or user.get("name") or user.get("id", "")
    return str(name)[:200], str(profile.get("display_name") or "")[:200], str(profile.get("email") or "")


def add_engineer_submission(*, payload: dict[str, Any], actor: SlackActor) -> dict[str, Any]:
    values = form_values(payload.get("view") or {})
    user_id, role = values.get("user"), values.get("role")
    if not isinstance(user_id, str) or not user_id:
        return {"response_action": "errors", "errors": {"user": "Pick the person to add."}}
    if role not in Role.values:
        return {"response_action": "errors", "errors": {"role": "Choose a role."}}
    try:
        user = slack_call(modal_client().users_info, user=user_id)["user"]
    except SlackError as exc:
        return {"response_action": "errors",
                "errors": {"user": f"Slack could not tell me who this is ({exc.describe()}); try again."}}
    if user.get("is_bot") or user.get("deleted"):
        return {"response_action": "errors",
                "errors": {"user": "Pick a person: this is a bot or a deactivated account."}}
    name, display_name, email = _profile(user)
    with transaction.atomic():
        engineer, error = _engineer_for(user_id=user_id, email=email)
        if error:
            return {"response_action": "errors", "errors": {"user": error}}
        created = engineer.pk is None
        before = {f: getattr(engineer, f) for f in ("name", "display_name", "email", "role", "is_admin",
                                                     "active", "slack_user_id")}
        engineer.slack_user_id, engineer.name, engineer.display_name = user_id, name, display_name
        engineer.email = email or engineer.email
        engineer.role, engineer.is_admin, engineer.active = role, "yes" in (values.get("admin") or []), True
        engineer.save()
        if created:
            config_change_record(actor=actor, obj=engineer, action=ADDED,
                                 message="Added (/sla add-engineer).")
        else:
            changed = [str(Engineer._meta.get_field(f).verbose_name) for f, old in before.items()
                       if getattr(engineer, f) != old]
            if changed:
                config_change_record(actor=actor, obj=engineer, action=CHANGED,
                                     message=f"Changed {', '.join(changed)} (/sla add-engineer).")
    verb = "Added" if created else "Updated"
    about = ", ".join(filter(None, [f"@{display_name}" if display_name else "", email]))
    text = (f":white_check_mark: {verb} <@{user_id}> ({name}{', ' + about if about else ''}) as "
            f"{engineer.get_role_display().lower()}{' and admin' if engineer.is_admin else ''}.")
    return {"response_action": "update",
            "view": notice_view(callback_id=CALLBACK_ID + "_saved", title="Roster updated", text=text)}


def _engineer_for(*, user_id: str, email: str) -> tuple[Engineer, str]:
    """The roster row to update (or a new one), or why neither is possible."""
    by_slack = Engineer.objects.select_for_update().filter(slack_user_id=user_id).first()
    by_email = Engineer.objects.select_for_update().filter(email__iexact=email).first() if email else None
    if by_slack is not None:
        if by_email is not None and by_email.pk != by_slack.pk:
            return by_slack, f"{email} already belongs to {by_email.name} on the roster: fix it in the admin."
        return by_slack, ""
    if by_email is not None:
        if by_email.slack_user_id and by_email.slack_user_id != user_id:
            return by_email, (f"{email} belongs to {by_email.name}, who has another Slack account "
                              f"(<@{by_email.slack_user_id}>): fix it in the admin.")
        return by_email, ""
    return Engineer(), ""
