"""Who counts as support in Slack: active engineers of the roster, by Slack user id."""

from __future__ import annotations

from calendars.models import Engineer


def roster_slack_ids(user_ids: list[str] | None = None) -> set[str]:
    engineers = Engineer.objects.filter(active=True).exclude(slack_user_id=None)
    if user_ids is not None:
        engineers = engineers.filter(slack_user_id__in=user_ids)
    return set(engineers.values_list("slack_user_id", flat=True))
