"""POST /slack/commands: /sla is signed like every Slack request; oncall and status answer
everyone, from the same resolution and rows as the admin; help and unknown words explain."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin as django_admin

from calendars.factories import EngineerFactory, RosterOverrideFactory
from calendars.models import Engineer, OverrideKind, Role
from escalation.models import Escalation
from ops.console import ticket_next_level
from tests.support.engine import fire
from tests.support.slack_forms import command_text, post_command
from tests.support.slack_requests import deliver, helpdesk_message, now_ts, slack_headers
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def test_an_unsigned_forged_or_replayed_command_is_refused(client, slack_secrets, fake_slack):
    assert post_command(client, "oncall", secret="not-the-secret").status_code == 403
    stale = int(datetime.now(UTC).timestamp()) - 600
    assert post_command(client, "oncall", timestamp=stale).status_code == 403
    unsigned = client.post("/slack/commands", data=b"command=%2Fsla&text=oncall&user_id=U1",
                           content_type="application/x-www-form-urlencoded")
    assert unsigned.status_code == 401
    assert post_command(client, "oncall").status_code == 200


def test_a_body_that_is_not_a_slash_command_is_a_400(client, slack_secrets):
    body = b"text=oncall"
    answer = client.post("/slack/commands", data=body, content_type="application/x-www-form-urlencoded",
                         **slack_headers(body))
    assert answer.status_code == 400


@pytest.mark.parametrize("text", ["", "help", "HELP"])
def test_help_lists_every_subcommand(client, slack_secrets, fake_slack, text):
    answer = command_text(post_command(client, text, user="UANYONE"))
    for sub in ("/sla oncall", "/sla status", "/sla setup", "/sla add-engineer", "/sla help"):
        assert sub in answer


def test_an_unknown_word_is_named_and_answered_with_help(client, slack_secrets, fake_slack):
    answer = command_text(post_command(client, "escalate-everyone now", user="UANYONE"))
    assert answer.startswith("I do not know `escalate-everyone`.") and "/sla oncall" in answer


def _listed(text: str, heading: str) -> dict[str, str]:
    """'• <@U1>: reason' lines under a heading, as {slack id: reason}."""
    section = text.split(f"*{heading}*\n", 1)[1].split("\n*", 1)[0]
    return dict(re.findall(r"^• <@(\w+)>: (.*)$", section, re.MULTILINE))


def test_oncall_names_who_is_on_shift_and_embedded_as_the_admin_does(
    client, slack_secrets, fake_slack, staff_client
):
    EngineerFactory(name="Alice", slack_user_id="UALICE")
    bob = EngineerFactory(name="Bob", slack_user_id="UBOB")
    carol = EngineerFactory(name="Carol", slack_user_id="UCAROL")
    EngineerFactory(name="Hana", slack_user_id="UHANA", role=Role.HEAD_OF_SUCCESS)
    RosterOverrideFactory(engineer=bob, kind=OverrideKind.EMBEDDED, product="Storage", note="Q3 rotation")
    RosterOverrideFactory(engineer=carol, kind=OverrideKind.OFF_SHIFT, note="holiday")

    answer = command_text(post_command(client, "oncall", user="USOMEONE"))  # read-only: anyone may ask
    on_shift, embedded = _listed(answer, "On shift now"), _listed(answer, "Embedded now")
    columns = django_admin.site._registry[Engineer]
    support = Engineer.objects.filter(role=Role.SUPPORT_ENGINEER)
    admin_on_shift = {e.slack_user_id for e in support if columns.on_shift_now(e)}
    assert set(on_shift) == admin_on_shift == {"UALICE", "UBOB"}
    assert {uid: reason.split(" (")[0] for uid, reason in embedded.items()} == {
        e.slack_user_id: f"with {columns.embedded_now(e)}" for e in support if columns.embedded_now(e)}
    assert embedded["UBOB"] == "with Storage (override: Q3 rotation)"
    assert on_shift["UALICE"] == "no shift calendar"
    assert "would notify: <@UALICE>" in answer  # level 1: on shift and not embedded
    assert staff_client.get("/admin/calendars/engineer/").status_code == 200


def test_status_lists_the_channels_armed_tickets_with_the_admins_next_level(
    client, slack_secrets, fake_slack, channel, staff_client
):
    EngineerFactory(name="Alice", slack_user_id="UALICE")
    deliver(client, helpdesk_message(now_ts(minutes_ago=15), ticket_id="101"))
    deliver(client, helpdesk_message(now_ts(minutes_ago=2), ticket_id="102"))
    deliver(client, helpdesk_message(now_ts(minutes_ago=1), ticket_id="103"))
    older, newer, answered = (Ticket.objects.get(helpdesk_ticket_id=i) for i in ("101", "102", "103"))
    fire(Escalation.objects.get(ticket=older, level=1), at=datetime.now(UTC))
    answered.state = "responded"
    answered.save(update_fields=["state"])

    asked_before = len(fake_slack.calls("auth.test"))  # intake may ask it for the bot's own id
    answer = command_text(post_command(client, "status", user="UANYONE"))
    assert answer.startswith("*Armed tickets in #support-acme* (Enterprise test)")
    lines = [line for line in answer.splitlines() if line.startswith("• ")]
    assert len(lines) == 2 and "#103" not in answer
    for ticket, line in zip((older, newer), lines, strict=True):
        admin_says = ticket_next_level(ticket)
        level, target = re.match(r"Level (\d+) due .* → (.*)$", admin_says).groups()
        row = Escalation.objects.get(ticket=ticket, level=int(level))
        assert f"next level {level} due <!date^{int(row.due_at.timestamp())}^" in line
        assert line.endswith(f"→ {target}")
        link = f"https://acme.slack.com/archives/CSUPPORT1/p{ticket.slack_ts.replace('.', '')}"
        assert f"<{link}|#{ticket.helpdesk_ticket_id} (high)>" in line
        page = staff_client.get(f"/admin/tickets/ticket/{ticket.pk}/change/").content.decode()
        assert f"Level {level} due" in page
    assert "next level 2" in lines[0] and "next level 1" in lines[1]
    # The workspace's address came with the command: Slack was not asked while answering it.
    assert len(fake_slack.calls("auth.test")) == asked_before


def test_status_in_a_channel_that_is_not_watched_says_so(client, slack_secrets, fake_slack):
    answer = command_text(post_command(client, "status", channel="COTHER001"))
    assert answer.startswith("This channel is not watched")


def test_status_with_nothing_armed_says_so(client, slack_secrets, fake_slack, channel):
    assert "No armed ticket" in command_text(post_command(client, "status"))


def test_due_times_are_shown_in_each_readers_time_zone(client, slack_secrets, fake_slack, channel):
    deliver(client, helpdesk_message(now_ts(minutes_ago=1), ticket_id="201"))
    row = Escalation.objects.get(ticket__helpdesk_ticket_id="201", level=1)
    answer = command_text(post_command(client, "status"))
    fallback = (row.due_at.astimezone(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    assert f"|{fallback}>" in answer and row.due_at - row.ticket.opened_at == timedelta(minutes=10)


def test_slacks_certificate_check_is_answered_without_running_anything(client, slack_secrets, fake_slack):
    body = b"ssl_check=1&token=unused"
    answer = client.post("/slack/commands", data=body, content_type="application/x-www-form-urlencoded",
                         **slack_headers(body))
    assert (answer.status_code, answer.content) == (200, b"")
    assert fake_slack.calls() == []
