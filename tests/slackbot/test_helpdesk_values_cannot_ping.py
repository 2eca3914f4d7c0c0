"""Values a helpdesk writes into its Slack message (ticket id, type, priority, ...) reach our own
escalation messages only as text: `*Ticket ID*: <<!channel>>` can never ping a channel.

Through the real path: the helpdesk bot's message arrives as a signed event, becomes a ticket, a
level fires, and we read what the fake Slack received."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from calendars.factories import EngineerFactory
from escalation.arming import ticket_arm
from escalation.firing import escalation_fire
from escalation.models import Escalation, EscalationStep
from slackbot.parsing import _unlink, extract_fields
from tests.support.slack_requests import deliver
from tickets.factories import TicketFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

TEMPLATE = "Level {level} for ticket {ticket_id} ({priority}, {tier}): {mentions} please look."
# Anything Slack would turn into a ping, a user/channel mention or a link.
CONTROL = re.compile(r"<[!@#]|<https?:")


@pytest.fixture
def templated(channel):
    EscalationStep.objects.filter(policy__tier=channel.tier).update(message_template=TEMPLATE)
    EngineerFactory(slack_user_id="UENG1", name="Ana")
    return channel


def fire_level_1(ticket) -> str:
    row = Escalation.objects.get(ticket=ticket, level=1)
    assert escalation_fire(escalation_id=row.pk, version=row.version,
                           now=row.due_at + timedelta(seconds=1)) == "fired"
    return row


def posted_text(fake_slack, ticket) -> str:
    [posted] = fake_slack.posts(thread_ts=ticket.slack_ts)
    section = posted["blocks"][0]["text"]["text"]
    return posted["text"] + "\n" + section


def helpdesk_event(text: str, **extra) -> dict:
    return {"type": "message", "subtype": "bot_message", "bot_id": "BZENDESK", "channel": "CSUPPORT1",
            "text": text, "ts": f"{time.time() - 60:.6f}", **extra}


@pytest.mark.parametrize("ticket_line", [
    "*Ticket ID*: <<!channel>>",
    "*Ticket ID*: <<<!here>>>",
    "*Ticket ID*: <<@UBOSS>|4711>",
    "*Ticket ID*: 4711 <!subteam^S0ALL>",
])
def test_helpdesk_text_fields_never_ping_through_a_fired_level(client, slack_secrets, templated, fake_slack,
                                                               ticket_line):
    event = helpdesk_event(f"New ticket\n{ticket_line}\n*Ticket priority*: High\n*Type*: <<!everyone>>")
    deliver(client, event)
    ticket = Ticket.objects.get()
    fire_level_1(ticket)
    text = posted_text(fake_slack, ticket)
    assert "<@UENG1>" in text  # the resolved target is still mentioned
    assert CONTROL.findall(text.replace("<@UENG1>", "")) == []


def test_helpdesk_attachment_fields_never_ping_through_a_fired_level(client, slack_secrets, templated,
                                                                     fake_slack):
    event = helpdesk_event("", attachments=[{"fallback": "New ticket", "fields": [
        {"title": "Ticket ID", "value": "<!channel> & <https://evil.example|click>", "short": True},
        {"title": "Type", "value": "<!here>", "short": True},
    ]}])
    deliver(client, event)
    ticket = Ticket.objects.get()
    fire_level_1(ticket)
    text = posted_text(fake_slack, ticket)
    assert CONTROL.findall(text.replace("<@UENG1>", "")) == []
    assert "&amp;" in text and " & " not in text  # a bare & is escaped too


def test_a_stored_value_with_angle_brackets_is_escaped_when_posted(slack_secrets, templated, fake_slack):
    """Tickets stored before intake cleaned their fields still cannot ping."""
    ticket = TicketFactory(channel=templated, helpdesk_ticket_id="<!channel> <@UBOSS> R&D",
                           slack_ts=f"{time.time() - 60:.6f}")
    ticket_arm(ticket=ticket, now=ticket.opened_at)
    fire_level_1(ticket)
    text = posted_text(fake_slack, ticket)
    assert CONTROL.findall(text.replace("<@UENG1>", "")) == []
    assert "&lt;!channel&gt; &lt;@UBOSS&gt; R&amp;D" in text


@pytest.mark.parametrize("raw", ["<<!channel>>", "<<<!here>>>", "<<!here|x>>", "<<@U1>>", "<a<!channel>b>"])
def test_unlink_leaves_no_mention_after_one_pass(raw):
    assert "<" not in _unlink(raw) and ">" not in _unlink(raw)


def test_unlink_still_reads_links_and_labels():
    assert _unlink("<https://acme.zendesk.com/tickets/12|#12>") == "#12"
    assert _unlink("<https://x.example/>") == "https://x.example/"
    assert extract_fields({"text": "*Ticket ID*: <<!channel>>"})["ticket_id"] == "!channel"
