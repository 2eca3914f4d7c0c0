"""The ticket parser on payloads shaped like Slack's documented message events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slackbot.parsing import (
    MENTIONS_BOT,
    ChannelRules,
    extract_fields,
    message_parse,
    normalize_priority,
    ts_to_datetime,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BOT = "UBOT0001"
HELPDESK = ChannelRules(intake_mode="helpdesk_bot")
PLAIN = ChannelRules(intake_mode="plain")


def ts(minutes_ago: float = 1, seq: int = 100) -> str:
    return f"{int((NOW - timedelta(minutes=minutes_ago)).timestamp())}.{seq:06d}"


def parse(message, rules=HELPDESK, now=NOW):
    return message_parse(message=message, rules=rules, bot_user_id=BOT, now=now)


def helpdesk_text(ticket_id="4711", priority="High", kind="Incident") -> str:
    return (
        "New ticket from Acme\n"
        f"*Ticket ID*: {ticket_id}\n*Ticket priority*: {priority}\n*Type*: {kind}\n"
        "*Subject*: Database unreachable"
    )


# -- helpdesk-bot messages ----------------------------------------------------


def test_bot_message_with_field_lines_in_text_is_a_ticket():
    message = {"type": "message", "subtype": "bot_message", "bot_id": "BHELPDESK", "username": "zendesk",
               "text": helpdesk_text(), "ts": ts()}
    verdict = parse(message)
    assert verdict.ticket is not None, verdict.reason
    assert verdict.ticket.helpdesk_ticket_id == "4711"
    assert verdict.ticket.priority == "high"
    assert verdict.ticket.ticket_type == "Incident"
    assert verdict.ticket.author == "BHELPDESK"
    assert verdict.ticket.opened_at == ts_to_datetime(message["ts"])


@pytest.mark.parametrize("line", [
    "*Ticket ID*: 4711", "*Ticket ID:* 4711", "Ticket ID: 4711", "_Ticket ID_: #4711",
    "  *ticket id*:   4711  ", "*Ticket ID*: <https://acme.zendesk.com/agent/tickets/4711|#4711>",
    "*Ticket ID*: *4711*",
])
def test_ticket_id_line_variants(line):
    assert extract_fields({"text": line})["ticket_id"] == "4711"


@pytest.mark.parametrize(("raw", "expected"), [
    ("Urgent", "urgent"), ("HIGH", "high"), ("normal", "normal"), ("Low", "low"), ("medium", "normal"),
    ("P1", "urgent"), ("critical", "urgent"), ("whenever", ""), ("", ""),
    ("P2", "high"), ("p3", "normal"), ("P4", "low"), ("P 1", "urgent"), ("P5", ""),
    ("Sev 1", "urgent"), ("SEV2", "high"), ("sev-3", "normal"), ("Sev_4", "low"), ("Severity 2", "high"),
    ("*P1*", "urgent"), ("Sev 0", ""),
])
def test_priority_words(raw, expected):
    assert normalize_priority(raw) == expected


def test_block_kit_section_fields_with_the_value_on_the_next_line():
    message = {"bot_id": "B1", "subtype": "bot_message", "ts": ts(), "text": "New ticket", "blocks": [{
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": "*Ticket ID*:\n4711"},
                   {"type": "mrkdwn", "text": "*Priority:*\nP1"},
                   {"type": "mrkdwn", "text": "*Type*:\n\nIncident"}],
    }]}
    verdict = parse(message)
    assert (verdict.ticket.helpdesk_ticket_id, verdict.ticket.priority, verdict.ticket.ticket_type) == (
        "4711", "urgent", "Incident")


def test_a_label_line_never_takes_the_next_field_as_its_value():
    fields = extract_fields({"text": "*Ticket ID*:\n*Ticket priority*: Sev 2\n4711"})
    assert fields == {"priority": "high"}


def test_zendesk_attachment_fields():
    message = {
        "type": "message", "subtype": "bot_message", "bot_id": "BZENDESK", "text": "", "ts": ts(),
        "attachments": [{
            "fallback": "Ticket #1234: Cannot log in",
            "title": "#1234 Cannot log in",
            "title_link": "https://acme.zendesk.com/agent/tickets/1234",
            "color": "#d8d8d8",
            "fields": [
                {"title": "Ticket ID", "value": "1234", "short": True},
                {"title": "Ticket Priority", "value": "Urgent", "short": True},
                {"title": "Type", "value": "Incident", "short": True},
                {"title": "Status", "value": "New", "short": True},
            ],
        }],
    }
    verdict = parse(message)
    assert verdict.ticket is not None
    assert (verdict.ticket.helpdesk_ticket_id, verdict.ticket.priority, verdict.ticket.ticket_type) == (
        "1234", "urgent", "Incident")
    assert "Cannot log in" in verdict.ticket.text


def test_field_lines_inside_attachment_text_and_blocks():
    in_attachment = {"bot_id": "B1", "subtype": "bot_message", "ts": ts(),
                     "attachments": [{"text": helpdesk_text(ticket_id="77")}]}
    in_blocks = {"bot_id": "B1", "subtype": "bot_message", "ts": ts(), "text": "New ticket",
                 "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": helpdesk_text("78")}}]}
    assert parse(in_attachment).ticket.helpdesk_ticket_id == "77"
    assert parse(in_blocks).ticket.helpdesk_ticket_id == "78"


def test_integer_attachment_field_value():
    message = {"bot_id": "B1", "subtype": "bot_message", "ts": ts(),
               "attachments": [{"fields": [{"title": "Ticket ID", "value": 99}]}]}
    assert parse(message).ticket.helpdesk_ticket_id == "99"


def test_bot_message_without_fields_is_not_a_ticket_unless_allow_listed():
    workflow = {"type": "message", "subtype": "bot_message", "bot_id": "BWORKFLOW", "ts": ts(),
                "text": "A new request was submitted: the dashboard is slow"}
    assert parse(workflow).ticket is None
    allowed = ChannelRules(intake_mode="helpdesk_bot", allowed_bot_ids=frozenset({"BWORKFLOW"}))
    verdict = parse(workflow, rules=allowed)
    assert verdict.ticket is not None and verdict.reason == "allow-listed bot"
    assert verdict.ticket.helpdesk_ticket_id == ""


def test_bot_ids_parsing():
    assert ChannelRules.bot_ids(" B1, B2 ,,") == frozenset({"B1", "B2"})
    assert ChannelRules.bot_ids("") == frozenset()


# -- plain mode -----------------------------------------------------------------


def test_plain_mode_human_message_is_a_ticket():
    # Slack's documented example of a message event.
    message = {"type": "message", "channel": "C123ABC456", "user": "U123ABC456", "text": "Hello world",
               "ts": ts()}
    assert parse(message, rules=HELPDESK).ticket is None
    verdict = parse(message, rules=PLAIN)
    assert verdict.ticket is not None
    assert verdict.ticket.author == "U123ABC456" and verdict.ticket.text == "Hello world"


def test_plain_mode_ignores_bots_and_empty_messages():
    bot = {"type": "message", "subtype": "bot_message", "bot_id": "BOTHER", "text": "deploy done", "ts": ts()}
    empty = {"type": "message", "user": "U1", "text": "  ", "ts": ts()}
    assert parse(bot, rules=PLAIN).ticket is None
    assert parse(empty, rules=PLAIN).ticket is None


def test_plain_mode_a_message_mentioning_the_bot_is_a_ticket_the_roster_decides():
    """The parser knows no roster: intake turns a support engineer's mention away (talks to the bot)."""
    to_bot = {"type": "message", "user": "U1", "text": f"<@{BOT}> our database is down", "ts": ts()}
    verdict = parse(to_bot, rules=PLAIN)
    assert verdict.ticket is not None and verdict.reason == MENTIONS_BOT


def test_plain_mode_file_share_is_a_ticket():
    message = {"type": "message", "subtype": "file_share", "user": "U1", "text": "", "ts": ts(),
               "files": [{"id": "F1"}]}
    assert parse(message, rules=PLAIN).ticket is not None


# -- never tickets --------------------------------------------------------------

IGNORED = {
    "message_changed": {
        "type": "message", "subtype": "message_changed", "hidden": True, "channel": "C123ABC456",
        "ts": ts(), "message": {"type": "message", "user": "U1", "text": helpdesk_text(), "ts": ts(2)},
    },
    "message_deleted": {
        "type": "message", "subtype": "message_deleted", "hidden": True, "channel": "C123ABC456",
        "ts": ts(), "deleted_ts": ts(2),
    },
    "channel_join": {"type": "message", "subtype": "channel_join", "ts": ts(), "user": "U2147483828",
                     "text": "<@U2147483828|cal> has joined the channel"},
    "channel_leave": {"type": "message", "subtype": "channel_leave", "ts": ts(), "user": "U2147483828",
                      "text": "<@U2147483828|cal> has left the channel"},
    "channel_topic": {"type": "message", "subtype": "channel_topic", "ts": ts(), "user": "U1",
                      "topic": "Ticket ID: 1", "text": "<@U1> set the channel topic: *Ticket ID*: 1"},
    "channel_purpose": {"type": "message", "subtype": "channel_purpose", "ts": ts(), "user": "U1",
                        "purpose": "x", "text": "<@U1> set the channel purpose: *Ticket ID*: 1"},
    "thread_broadcast": {"type": "message", "subtype": "thread_broadcast", "user": "U1", "ts": ts(),
                         "thread_ts": ts(5), "text": helpdesk_text(), "root": {"ts": ts(5)}},
    "thread_reply": {"type": "message", "user": "U1", "text": helpdesk_text(), "ts": ts(),
                     "thread_ts": ts(5), "parent_user_id": "U2"},
    "bot_thread_reply": {"type": "message", "subtype": "bot_message", "bot_id": "B1",
                         "text": helpdesk_text(), "ts": ts(), "thread_ts": ts(5)},
    "own_message": {"type": "message", "user": BOT, "bot_id": "BOWN", "text": helpdesk_text(), "ts": ts()},
    "too_old": {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": helpdesk_text(),
                "ts": ts(121)},
    "no_ts": {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": helpdesk_text()},
    "bad_ts": {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": helpdesk_text(),
               "ts": "nan"},
    "future": {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": helpdesk_text(),
               "ts": ts(-60)},
    "unknown_subtype": {"type": "message", "subtype": "reminder_add", "user": "U1", "ts": ts(),
                        "text": helpdesk_text()},
    "pinned_item": {"type": "message", "subtype": "pinned_item", "user": "U1", "ts": ts(),
                    "text": helpdesk_text()},
}


@pytest.mark.parametrize("rules", [HELPDESK, PLAIN], ids=["helpdesk", "plain"])
@pytest.mark.parametrize("name", sorted(IGNORED))
def test_never_a_ticket(name, rules):
    everything = ChannelRules(intake_mode=rules.intake_mode, allowed_bot_ids=frozenset({"B1", "BOWN"}))
    assert parse(IGNORED[name], rules=everything).ticket is None


def test_thread_parent_with_thread_ts_equal_to_ts_is_a_ticket():
    stamp = ts()
    message = {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": helpdesk_text(),
               "ts": stamp, "thread_ts": stamp, "reply_count": 3}
    assert parse(message).ticket is not None


def test_look_back_window_is_the_channels():
    message = {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": helpdesk_text(),
               "ts": ts(30)}
    assert parse(message, rules=ChannelRules(intake_mode="helpdesk_bot", lookback_minutes=60)).ticket
    assert parse(message, rules=ChannelRules(intake_mode="helpdesk_bot", lookback_minutes=10)).ticket is None


@pytest.mark.parametrize("junk", [None, [], "text", {"type": "reaction_added"}, {"ts": {"x": 1}},
                                  {"ts": ts(), "attachments": "nope", "blocks": [1, None]},
                                  {"ts": ts(), "attachments": [{"fields": "x"}], "user": 5},
                                  {"ts": ts(), "subtype": ["bot_message"], "type": "message"},
                                  {"ts": ts(), "type": {"a": 1}}, {"ts": ts(), "thread_ts": [1]}])
def test_junk_never_raises_and_is_never_a_ticket(junk):
    verdict = parse(junk, rules=PLAIN)
    assert verdict.ticket is None
    assert verdict.reason
