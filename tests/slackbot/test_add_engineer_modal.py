"""/sla add-engineer: a Slack user picked in a modal joins the roster (or is updated), with the
name, display name and email Slack's users.info gives; recorded in the admin log."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

from calendars.factories import EngineerFactory
from calendars.models import Engineer, Role
from tests.support.slack_forms import post_command, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def form(client, slack_secrets, fake_slack, settings):
    """The add-engineer modal as a staff user opened it."""
    settings.SLACK_ADMIN_USER_IDS = ["UADMIN"]
    fake_slack.add_user("UNEWBIE01", name="ana", real_name="Ana Lima", display_name="ana.l",
                        email="ana@acme.example")
    assert post_command(client, "add-engineer", user="UADMIN").content == b""
    [view] = fake_slack.opened_views()
    return view


def test_a_picked_user_is_added_with_what_slack_knows_of_them(client, form, fake_slack):
    answer = submit(client, form, as_user="UADMIN", role=Role.SUPPORT_ENGINEER, admin=["yes"],
                    user="UNEWBIE01")
    assert answer.json()["response_action"] == "update"
    assert "Added <@UNEWBIE01> (Ana Lima, @ana.l, ana@acme.example)" in json.dumps(answer.json()["view"])
    [call] = fake_slack.calls("users.info")
    assert call.args["user"] == "UNEWBIE01"
    engineer = Engineer.objects.get(slack_user_id="UNEWBIE01")
    assert (engineer.name, engineer.display_name, engineer.email, engineer.role, engineer.is_admin,
            engineer.active) == ("Ana Lima", "ana.l", "ana@acme.example", Role.SUPPORT_ENGINEER, True, True)
    [entry] = LogEntry.objects.all()
    assert (entry.action_flag, entry.object_id, entry.user.username) == (ADDITION, str(engineer.pk),
                                                                        "slack-UADMIN")


def test_someone_already_on_the_roster_by_email_is_updated_not_added_twice(client, form):
    known = EngineerFactory(name="Ana (calendar)", email="ANA@acme.example", slack_user_id=None)
    submit(client, form, as_user="UADMIN", role=Role.HEAD_OF_SUCCESS, user="UNEWBIE01")
    known.refresh_from_db()
    assert Engineer.objects.filter(email__iexact="ana@acme.example").count() == 1
    assert (known.slack_user_id, known.name, known.role) == ("UNEWBIE01", "Ana Lima", Role.HEAD_OF_SUCCESS)
    [entry] = LogEntry.objects.all()
    assert entry.action_flag == CHANGE and "Changed" in entry.get_change_message()


def test_an_email_belonging_to_another_slack_account_is_a_field_error(client, form):
    EngineerFactory(name="Other Ana", email="ana@acme.example", slack_user_id="UOTHER001")
    answer = submit(client, form, as_user="UADMIN", user="UNEWBIE01").json()
    assert answer["response_action"] == "errors" and "belongs to Other Ana" in answer["errors"]["user"]
    assert not Engineer.objects.filter(slack_user_id="UNEWBIE01").exists()
    assert not LogEntry.objects.exists()


def test_a_bot_cannot_join_the_roster(client, form, fake_slack):
    fake_slack.add_user("UBOT00001", name="zendesk", real_name="Zendesk", is_bot=True)
    answer = submit(client, form, as_user="UADMIN", user="UBOT00001").json()
    assert answer == {"response_action": "errors",
                      "errors": {"user": "Pick a person: this is a bot or a deactivated account."}}
    assert not Engineer.objects.filter(slack_user_id="UBOT00001").exists()


def test_slack_failing_to_describe_the_user_writes_nothing(client, form, fake_slack):
    fake_slack.fail_next("users.info", status=500)
    answer = submit(client, form, as_user="UADMIN", user="UNEWBIE01").json()
    assert answer["response_action"] == "errors" and "try again" in answer["errors"]["user"]
    assert not Engineer.objects.filter(slack_user_id="UNEWBIE01").exists()
    assert not LogEntry.objects.exists()
