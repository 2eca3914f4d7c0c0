"""The vocabulary of escalation targets: whom a level can notify, narrowest first.

Resolved against the roster by ``calendars.resolve.resolve_target``; the
engine's steps and per-ticket levels store one of these kinds. A ``page``
level pages a pager instead (the engine's paging branch); it resolves to
nobody in Slack.
"""

from __future__ import annotations

from django.db import models


class TargetKind(models.TextChoices):
    ON_SHIFT_NOT_EMBEDDED = "on_shift_not_embedded", "Support engineers on shift, not embedded"
    ON_SHIFT = "on_shift", "Every support engineer on shift"
    USER_GROUP = "user_group", "Slack user group"
    HEAD_OF_SUCCESS = "head_of_success", "Head of success"
    ENGINEER = "engineer", "A specific engineer"
    # Outside Slack: PagerDuty, Grafana OnCall or a webhook (base/pages.py); the
    # level also says so in the thread. Nobody in Slack is mentioned.
    PAGE = "page", "Page outside Slack (PagerDuty, OnCall, webhook)"


# Widest last. A kind falls through to the kinds after it.
LADDER = (
    TargetKind.ON_SHIFT_NOT_EMBEDDED,
    TargetKind.ON_SHIFT,
    TargetKind.USER_GROUP,
    TargetKind.HEAD_OF_SUCCESS,
)
# How a message names each kind ("level 2 (support engineers on shift) at 14:35").
LABELS = {
    TargetKind.ON_SHIFT_NOT_EMBEDDED: "support engineers on shift who are not embedded",
    TargetKind.ON_SHIFT: "support engineers on shift",
    TargetKind.USER_GROUP: "the support user group",
    TargetKind.HEAD_OF_SUCCESS: "the head of success",
    TargetKind.ENGINEER: "the named engineer",
    TargetKind.PAGE: "a page outside Slack",
}
# Kinds that mention people in Slack (the ones a Slack form can offer without more fields).
SLACK_KINDS = LADDER
