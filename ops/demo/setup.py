"""The demo's seed data: a Demo tier whose levels fall due within seconds, and whose level 5
pages a stand-in PagerDuty for urgent and high tickets.

Only created in demo mode (no Slack token, not production): ``make run``
calls ``demo_setup`` through ``runall``. Idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction

from base.pages import PageProvider
from calendars.models import Engineer, OverrideKind, Role, RosterOverride
from calendars.targets import TargetKind
from escalation.models import EscalationStep, NextResponseStep, SlaPolicy
from tickets.models import IntakeMode, ResponseMode, Tier, WatchedChannel

DEMO_CHANNEL_ID = "C0DEMO0001"
DEMO_CHANNEL_NAME = "demo-acme-support"
DEMO_CUSTOMER_ID = "UDEMOCUST1"
DEMO_HELPDESK_BOT_ID = "BDEMOHELP1"  # a helpdesk app posting in the channel (its messages need a Ticket ID)
# After an answer, a customer who writes again: next-response levels after 10 and 20 seconds.
DEMO_NEXT_RESPONSE_SECONDS = ((1, 10, TargetKind.ON_SHIFT_NOT_EMBEDDED), (2, 20, TargetKind.HEAD_OF_SUCCESS))
DEMO_USERGROUP_ID = "SDEMOGROUP"
DEMO_LEVEL_SECONDS = (10, 20, 30, 40)
DEMO_PAGE_LEVEL, DEMO_PAGE_SECONDS = 5, 45
DEMO_PAGE_PRIORITIES = ["high", "urgent"]
# Given to the demo's processes by runall, with the stand-in pager's address: never a real key.
DEMO_ROUTING_KEY = "demo0routing0key0for0the0stand0in"


@dataclass(frozen=True)
class DemoPerson:
    slack_user_id: str
    name: str
    role: str


ALICE = DemoPerson("UDEMOALICE", "Alice (demo)", Role.SUPPORT_ENGINEER)
BOB = DemoPerson("UDEMOBOB01", "Bob (demo)", Role.SUPPORT_ENGINEER)
CAROL = DemoPerson("UDEMOCAROL", "Carol (demo)", Role.HEAD_OF_SUCCESS)
PEOPLE = (ALICE, BOB, CAROL)
KINDS = (
    TargetKind.ON_SHIFT_NOT_EMBEDDED,
    TargetKind.ON_SHIFT,
    TargetKind.USER_GROUP,
    TargetKind.HEAD_OF_SUCCESS,
)


@transaction.atomic
def demo_setup() -> WatchedChannel:
    tier, _ = Tier.objects.get_or_create(
        name="Demo", defaults={"description": "Demo mode: levels fall due within seconds."}
    )
    policy, created = SlaPolicy.objects.get_or_create(
        tier=tier, priority="", defaults={"name": "Demo (seconds)", "snooze_minutes": 1}
    )
    if created:
        for level, (seconds, kind) in enumerate(zip(DEMO_LEVEL_SECONDS, KINDS, strict=True), start=1):
            EscalationStep.objects.create(
                policy=policy,
                level=level,
                delay=timedelta(seconds=seconds),
                target_kind=kind,
                target_ref=DEMO_USERGROUP_ID if kind == TargetKind.USER_GROUP else "",
            )
    # Also in demo databases made before paging existed.
    EscalationStep.objects.get_or_create(
        policy=policy,
        level=DEMO_PAGE_LEVEL,
        defaults={
            "delay": timedelta(seconds=DEMO_PAGE_SECONDS),
            "target_kind": TargetKind.PAGE,
            "page_provider": PageProvider.PAGERDUTY,
            "page_priorities": DEMO_PAGE_PRIORITIES,
        },
    )
    for level, seconds, kind in DEMO_NEXT_RESPONSE_SECONDS:  # also in demo databases made before cycles
        NextResponseStep.objects.get_or_create(
            policy=policy, level=level, defaults={"delay": timedelta(seconds=seconds), "target_kind": kind}
        )
    channel, _ = WatchedChannel.objects.get_or_create(
        slack_channel_id=DEMO_CHANNEL_ID,
        defaults={
            "name": DEMO_CHANNEL_NAME,
            "tier": tier,
            "intake_mode": IntakeMode.PLAIN,
            "response_mode": ResponseMode.SLACK_THREAD,
            "lookback_minutes": 60,
        },
    )
    engineers = {}
    for person in PEOPLE:
        engineers[person], _ = Engineer.objects.get_or_create(
            slack_user_id=person.slack_user_id,
            defaults={"name": person.name, "role": person.role},
        )
    # Bob is embedded with the Storage team, so level 1 names Alice only.
    RosterOverride.objects.get_or_create(
        engineer=engineers[BOB],
        kind=OverrideKind.EMBEDDED,
        defaults={
            "product": "Storage",
            "starts_at": datetime(2020, 1, 1, tzinfo=UTC),
            "note": "Demo: embedded until further notice.",
        },
    )
    return channel
