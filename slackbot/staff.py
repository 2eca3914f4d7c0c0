"""Who may change SLA Buddy's configuration from Slack, and the record of every change they make.

Staff in Slack: an active roster engineer marked *admin*, or a Slack user
listed in ``SLACK_ADMIN_USER_IDS``. Everyone else may read (``/sla oncall``,
``/sla status``) but not change anything.

A change made from Slack is written to Django's admin log (``LogEntry``),
exactly where an edit in the admin is, so an object's *History* page shows
both. A log entry needs a Django user: each Slack user who changes something
gets one of their own, ``slack-U…``, which can never log in (inactive, no
usable password) and exists only to say who did it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.db.models import Model

from calendars.models import Engineer

REFUSAL_TEXT = (
    ":no_entry: Only SLA Buddy's admins can change its configuration from Slack: an engineer marked "
    "*admin* on the roster, or a Slack user listed in `SLACK_ADMIN_USER_IDS`. "
    "`/sla oncall`, `/sla status` and `/sla help` work for everyone."
)
ADDED, CHANGED, DELETED = ADDITION, CHANGE, DELETION


@dataclass(frozen=True)
class SlackActor:
    """The Slack user behind a command or a form."""

    user_id: str
    name: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.user_id})" if self.name and self.name != self.user_id else self.user_id


def slack_user_is_staff(user_id: str) -> bool:
    if not user_id:
        return False
    if user_id in settings.SLACK_ADMIN_USER_IDS:
        return True
    return Engineer.objects.filter(slack_user_id=user_id, active=True, is_admin=True).exists()


def slack_actor_user(actor: SlackActor):
    """The Django user that stands for a Slack user in the admin log (created once)."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=f"slack-{actor.user_id}"[:150],
        defaults={"is_active": False, "first_name": (actor.name or "")[:150],
                  "last_name": "(from Slack)"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    elif actor.name and user.first_name != actor.name[:150]:
        user_model.objects.filter(pk=user.pk).update(first_name=actor.name[:150])
    return user


def config_change_record(*, actor: SlackActor, obj: Model, action: int, message: str) -> LogEntry:
    """One admin-log row for one object changed from Slack (call it in the change's transaction)."""
    user = slack_actor_user(actor)
    text = f"{message} — from Slack by {actor.label}"
    return LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[obj], action_flag=action, change_message=text, single_object=True
    )
