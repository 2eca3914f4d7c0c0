"""/sla setup: a staff user watches a channel and edits its tier's ladder from a modal, through
the signed endpoints and the fake Slack's views.open / views.update. Bad input shows field
errors and writes nothing; every change is in the admin log; armed tickets keep their ladder."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry

from base.pages import PageProvider
from calendars.factories import EngineerFactory
from calendars.targets import TargetKind
from escalation.factories import EscalationStepFactory, SlaPolicyFactory
from escalation.models import Escalation, EscalationStep
from tests.support.slack_forms import command_text, pick, post_command, submit
from tests.support.slack_requests import deliver, now_ts
from tickets.factories import TierFactory
from tickets.models import IntakeMode, ResponseMode, Ticket, WatchedChannel

pytestmark = pytest.mark.django_db

NEW_CHANNEL = "CNEWCO001"


@pytest.fixture
def admin(settings):
    settings.SLACK_ADMIN_USER_IDS = ["UADMIN"]
    return "UADMIN"


def opened(fake_slack) -> dict:
    [view] = fake_slack.opened_views()
    return view


def open_setup(client, fake_slack, tier, *, user="UADMIN", channel=NEW_CHANNEL, name="support-newco"):
    """/sla setup, then pick ``tier`` (a new channel starts on the first tier): the view to fill."""
    assert post_command(client, "setup", user=user, channel=channel, channel_name=name).content == b""
    view = opened(fake_slack)
    shown = next(b for b in view["blocks"] if b.get("block_id") == "tier")["element"]["initial_option"]
    if shown["value"] != str(tier.pk):
        pick(client, view, block_id="tier", value=str(tier.pk), as_user=user)
        view = opened(fake_slack)
    return view


def ladder(tier) -> list[tuple[int, timedelta, str, str]]:
    return [(s.level, s.delay, s.target_kind, s.message_template)
            for s in EscalationStep.objects.filter(policy__tier=tier, policy__priority="").order_by("level")]


def block(tier, level, field) -> str:
    return f"t{tier.pk}.l{level}.{field}"


def test_a_staff_user_sets_a_channel_up_and_its_next_ticket_arms_with_the_new_ladder(
    client, slack_secrets, fake_slack, tier, admin
):
    view = open_setup(client, fake_slack, tier)  # the command's answer is empty: the modal is the answer
    [call] = fake_slack.calls("views.open")
    assert call.args["trigger_id"].endswith(".abcdef")
    assert view["callback_id"] == "slabuddy_setup"
    assert "is not watched yet" in json.dumps(view["blocks"])

    answer = submit(client, view, as_user=admin, intake=IntakeMode.PLAIN, lookback="60", **{
        block(tier, 1, "delay"): "5m",
        block(tier, 2, "target"): TargetKind.HEAD_OF_SUCCESS,
        block(tier, 3, "delay"): "",  # emptied: level 3 goes
        block(tier, "new", "delay"): "1h",
        block(tier, "new", "target"): TargetKind.ON_SHIFT,
        block(tier, "new", "message"): "Level {level}: {mentions} please answer.",
    })
    assert answer.status_code == 200
    data = answer.json()
    assert data["response_action"] == "update" and "Saved" in json.dumps(data["view"])

    channel = WatchedChannel.objects.get(slack_channel_id=NEW_CHANNEL)
    assert (channel.name, channel.tier, channel.intake_mode, channel.response_mode, channel.lookback_minutes,
            channel.active) == ("support-newco", tier, IntakeMode.PLAIN, ResponseMode.SLACK_THREAD, 60, True)
    assert ladder(tier) == [
        (1, timedelta(minutes=5), TargetKind.ON_SHIFT, ""),
        (2, timedelta(minutes=20), TargetKind.HEAD_OF_SUCCESS, ""),
        (4, timedelta(hours=1), TargetKind.ON_SHIFT, "Level {level}: {mentions} please answer."),
    ]

    ts = now_ts(minutes_ago=1)
    deliver(client, {"type": "message", "channel": NEW_CHANNEL, "user": "UCUSTOMER",
                     "text": "Our API returns 500s", "ts": ts, "event_ts": ts})
    ticket = Ticket.objects.get(channel=channel)
    assert [(e.level, e.due_at - ticket.opened_at, e.target_kind)
            for e in Escalation.objects.filter(ticket=ticket).order_by("level")] == [
        (1, timedelta(minutes=5), TargetKind.ON_SHIFT),
        (2, timedelta(minutes=20), TargetKind.HEAD_OF_SUCCESS),
        (4, timedelta(hours=1), TargetKind.ON_SHIFT),
    ]


def test_every_change_is_in_the_admin_log_with_who_made_it(client, slack_secrets, fake_slack, tier, admin):
    submit(client, open_setup(client, fake_slack, tier), as_user=admin, **{
        block(tier, 1, "delay"): "7m", block(tier, 3, "delay"): "", block(tier, "new", "delay"): "2h"})
    entries = {(e.content_type.model, e.action_flag, e.object_repr.split(" ")[-1]): e
               for e in LogEntry.objects.all()}
    assert {(model, flag) for model, flag, _ in entries} == {
        ("watchedchannel", ADDITION), ("escalationstep", CHANGE), ("escalationstep", DELETION),
        ("escalationstep", ADDITION)}
    for entry in entries.values():
        assert entry.user.username == "slack-UADMIN" and not entry.user.is_active
        assert not entry.user.has_usable_password()
        assert "from Slack by uadmin (UADMIN)" in entry.get_change_message()
    changed = next(e for (m, f, _), e in entries.items() if f == CHANGE)
    assert "Changed delay" in changed.get_change_message()


def test_a_modal_with_a_bad_delay_shows_a_field_error_and_writes_nothing(
    client, slack_secrets, fake_slack, tier, admin
):
    before = ladder(tier)
    answer = submit(client, open_setup(client, fake_slack, tier), as_user=admin, lookback="90", **{
        block(tier, 1, "delay"): "ten minutes", block(tier, 2, "delay"): "25m"})
    assert answer.status_code == 200
    assert answer.json() == {"response_action": "errors", "errors": {block(tier, 1, "delay"): (
        "'ten minutes' is not a delay. Write a delay like 10m, 1h 30m, 2d or 00:10:00.")}}
    assert not WatchedChannel.objects.filter(slack_channel_id=NEW_CHANNEL).exists()
    assert ladder(tier) == before
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize(("typed", "field", "says"), [
    ({"lookback": "0"}, "lookback", "whole number of minutes"),
    ({"t.l2.delay": "5m"}, "t.l2.delay", "Level 2 (5 min) cannot come before level 1"),
    ({"t.l1.message": "Level {level"}, "t.l1.message", "unmatched {"),
])
def test_each_bad_field_is_named_and_nothing_is_written(client, slack_secrets, fake_slack, tier, admin,
                                                        typed, field, says):
    prefix = f"t{tier.pk}."
    typed = {key.replace("t.", prefix, 1): value for key, value in typed.items()}
    errors = submit(client, open_setup(client, fake_slack, tier), as_user=admin, **typed).json()["errors"]
    assert list(errors) == [field.replace("t.", prefix, 1)] and says in errors[list(errors)[0]]
    assert not WatchedChannel.objects.exists() and not LogEntry.objects.exists()


def test_a_ticket_already_armed_keeps_its_ladder(client, slack_secrets, fake_slack, channel, tier, admin):
    ts = now_ts(minutes_ago=1)
    deliver(client, {"type": "message", "subtype": "bot_message", "bot_id": "BZENDESK",
                     "channel": "CSUPPORT1", "text": "*Ticket ID*: 77\n*Ticket priority*: High",
                     "ts": ts, "event_ts": ts})
    ticket = Ticket.objects.get()
    levels = Escalation.objects.filter(ticket=ticket).values_list("level", "due_at", "target_kind")
    armed = list(levels)
    submit(client, open_setup(client, fake_slack, tier, channel="CSUPPORT1"), as_user=admin, **{
        block(tier, 1, "delay"): "1m", block(tier, 2, "target"): TargetKind.HEAD_OF_SUCCESS})
    assert ladder(tier)[0][1] == timedelta(minutes=1)
    assert list(levels.all()) == armed


def test_a_non_staff_user_is_refused_and_nothing_opens(client, slack_secrets, fake_slack, tier, admin):
    EngineerFactory(slack_user_id="UPLAIN")  # on the roster, but not an admin
    for text in ("setup", "add-engineer"):
        answer = command_text(post_command(client, text, user="UPLAIN"))
        assert answer.startswith(":no_entry: Only SLA Buddy's admins can change its configuration")
    assert fake_slack.calls("views.open") == []


def test_a_submission_from_a_non_staff_user_changes_nothing(client, slack_secrets, fake_slack, tier, admin):
    answer = submit(client, open_setup(client, fake_slack, tier), as_user="UINTRUDER",
                    **{block(tier, 1, "delay"): "1m"})
    assert "Only SLA Buddy's admins" in json.dumps(answer.json()["view"])
    assert not WatchedChannel.objects.exists() and not LogEntry.objects.exists()


def test_an_engineer_marked_admin_may_set_up(client, slack_secrets, fake_slack, tier, settings):
    settings.SLACK_ADMIN_USER_IDS = []
    EngineerFactory(slack_user_id="UENGADMIN", is_admin=True)
    assert post_command(client, "setup", user="UENGADMIN").content == b""
    assert len(fake_slack.calls("views.open")) == 1


def test_picking_another_tier_loads_its_ladder_before_saving(client, slack_secrets, fake_slack, tier, admin):
    teams = TierFactory(name="Teams test")
    policy = SlaPolicyFactory(tier=teams, priority="")
    EscalationStepFactory(policy=policy, level=1, delay=timedelta(hours=1), target_kind=TargetKind.ON_SHIFT)
    first = open_setup(client, fake_slack, tier)
    fake_slack.reset()  # forget the calls so far, keep nothing but what comes next
    fake_slack.state.views[first["id"]] = first
    assert pick(client, first, block_id="tier", value=str(teams.pk)).status_code == 200
    [update] = fake_slack.calls("views.update")
    assert (update.args["view_id"], update.args["hash"]) == (first["id"], first["hash"])
    reloaded = opened(fake_slack)
    delay = next(b for b in reloaded["blocks"] if b.get("block_id") == block(teams, 1, "delay"))
    assert delay["element"]["initial_value"] == "1h"

    stale = submit(client, first, as_user=admin, tier=str(teams.pk))  # the old view, with Enterprise's ladder
    assert "pick this tier again" in stale.json()["errors"]["tier"]
    saved = submit(client, reloaded, as_user=admin, tier=str(teams.pk), **{block(teams, 1, "delay"): "45m"})
    assert saved.json()["response_action"] == "update"
    assert WatchedChannel.objects.get(slack_channel_id=NEW_CHANNEL).tier == teams
    assert ladder(teams) == [(1, timedelta(minutes=45), TargetKind.ON_SHIFT, "")]
    assert ladder(tier)[0][1] == timedelta(minutes=10)  # the first tier's ladder is untouched


def test_a_page_step_is_shown_and_left_alone(client, slack_secrets, fake_slack, tier, admin):
    EscalationStepFactory(policy=tier.policies.get(), level=4, delay=timedelta(minutes=50),
                          target_kind=TargetKind.PAGE, page_provider=PageProvider.PAGERDUTY,
                          page_priorities=["urgent"])
    view = open_setup(client, fake_slack, tier)
    assert "*Level 4* after 50 min pages PagerDuty for urgent tickets" in json.dumps(view["blocks"])
    assert not any(b.get("block_id") == block(tier, 4, "delay") for b in view["blocks"])
    submit(client, view, as_user=admin, **{block(tier, 1, "delay"): "2m"})
    page = EscalationStep.objects.get(policy__tier=tier, level=4)
    assert (page.target_kind, page.page_provider, page.page_priorities) == ("page", "pagerduty", ["urgent"])


def test_a_modal_that_slack_cannot_open_is_explained(client, slack_secrets, fake_slack, tier, admin):
    fake_slack.fail_next("views.open", error="expired_trigger_id")
    answer = command_text(post_command(client, "setup", user=admin))
    assert "I could not open the form (Slack said: expired_trigger_id)" in answer


def test_setup_outside_a_channel_says_where_to_run_it(client, slack_secrets, fake_slack, tier, admin):
    answer = command_text(post_command(client, "setup", user=admin, channel="D0123456"))
    assert "in the channel you want me to watch" in answer
    assert fake_slack.calls("views.open") == []
