"""Is this Slack message a ticket? A pure function of the message and the channel's rules.

No database, no network, no clock: the caller passes ``now`` and the rules, so
every case is a one-line test. Both intake paths (Events API and the channel
scan) ask this same question, so a message is judged the same way whichever
path sees it first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Subtypes that can be a ticket. Everything else (message_changed,
# message_deleted, channel_join/leave/topic/purpose, thread_broadcast, ...)
# never is: an allow-list, so a subtype Slack adds tomorrow is not a ticket.
TICKET_SUBTYPES = (None, "", "bot_message", "file_share")  # a tuple: payload values may be unhashable
# Thread-reply subtypes that can still be a person answering (a reply with a file).
HUMAN_SUBTYPES = (None, "", "file_share")

PRIORITY_WORDS = {
    "low": "low",
    "normal": "normal",
    "medium": "normal",
    "high": "high",
    "urgent": "urgent",
    "critical": "urgent",
    "p1": "urgent",
    "p2": "high",
    "p3": "normal",
    "p4": "low",
    "sev1": "urgent",
    "sev2": "high",
    "sev3": "normal",
    "sev4": "low",
}
# "P1", "p 1", "Sev 1", "SEV-2", "sev_3", "Severity 4": the number is what counts.
_NUMBERED_PRIORITY = re.compile(r"^(?P<kind>p|sev|severity)[\s_-]*(?P<n>[1-4])$")

# `*Ticket ID*: 123`, `*Ticket ID:* 123`, `Ticket ID: 123`, `_Type_: Incident`
_FIELD_LINE = re.compile(
    r"^\s*[*_~]*\s*(?P<name>ticket\s*id|ticket\s*priority|priority|type)\s*[*_~]*\s*:\s*[*_~]*\s*"
    r"(?P<value>.*?)\s*[*_~]*\s*$",
    re.IGNORECASE,
)
MENTIONS_BOT = "plain message mentioning the bot"
_SLACK_LINK = re.compile(r"<(?P<target>[^<>|]*)(?:\|(?P<label>[^<>]*))?>")
_MENTION = re.compile(r"<@(?P<user>[A-Z0-9]+)(?:\|[^>]*)?>")


@dataclass(frozen=True)
class ChannelRules:
    """The parts of a WatchedChannel the parser needs."""

    intake_mode: str  # "helpdesk_bot" or "plain"
    allowed_bot_ids: frozenset[str] = frozenset()
    lookback_minutes: int = 120

    @staticmethod
    def bot_ids(raw: str) -> frozenset[str]:
        return frozenset(part.strip() for part in (raw or "").split(",") if part.strip())


@dataclass(frozen=True)
class ParsedTicket:
    slack_ts: str
    opened_at: datetime
    text: str
    author: str
    helpdesk_ticket_id: str = ""
    priority: str = ""
    ticket_type: str = ""


@dataclass(frozen=True)
class Verdict:
    ticket: ParsedTicket | None
    reason: str  # why not a ticket, or "ticket"


def ts_to_datetime(ts: Any) -> datetime | None:
    """Slack's ``"1700000000.000100"`` as an aware UTC datetime; None if it is not one."""
    try:
        seconds = float(str(ts))
    except (TypeError, ValueError):
        return None
    if not (0 < seconds < 1e11):  # also rejects nan and inf
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def datetime_to_ts(moment: datetime) -> str:
    return f"{moment.timestamp():.6f}"


def mentioned_users(text: str) -> list[str]:
    return _MENTION.findall(text or "")


def mentions_user(text: str, user_id: str) -> bool:
    return bool(user_id) and user_id in mentioned_users(text)


def _unlink(value: str) -> str:
    """``<https://x/tickets/12|#12>`` -> ``#12``; ``<https://x>`` -> ``https://x``.

    Angle brackets left over are dropped, so nested input such as ``<<!channel>>``
    cannot leave a mention (``<!channel>``) behind after this one pass.
    """
    unlinked = _SLACK_LINK.sub(lambda m: m.group("label") or m.group("target"), value)
    return unlinked.replace("<", "").replace(">", "").strip()


def _clean_ticket_id(value: str) -> str:
    value = _unlink(value).strip().strip("*_~` ")
    return value.removeprefix("#").strip()[:64]


def normalize_priority(value: str) -> str:
    word = _unlink(value).strip().strip("*_~` ").lower()
    numbered = _NUMBERED_PRIORITY.match(word)
    if numbered:
        word = ("p" if numbered.group("kind") == "p" else "sev") + numbered.group("n")
    return PRIORITY_WORDS.get(word, "")


def _texts(message: dict[str, Any]) -> list[str]:
    """Every piece of text a helpdesk message may carry its fields in."""
    found: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str) and value:
            found.append(value)

    add(message.get("text"))
    for attachment in _dicts(message.get("attachments")):
        for key in ("pretext", "title", "text", "fallback"):
            add(attachment.get(key))
    for block in _dicts(message.get("blocks")):
        text = block.get("text")
        if isinstance(text, dict):
            add(text.get("text"))
        for field in _dicts(block.get("fields")):
            add(field.get("text"))
    return found


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _canonical_field(name: str) -> str | None:
    key = re.sub(r"\s+", " ", name.strip().lower())
    return {
        "ticket id": "ticket_id",
        "ticketid": "ticket_id",
        "ticket priority": "priority",
        "priority": "priority",
        "type": "type",
        "ticket type": "type",
    }.get(key)


def extract_fields(message: dict[str, Any]) -> dict[str, str]:
    """Ticket ID / priority / type from ``*Field*: value`` lines or attachment fields.

    The first value found for a field wins; attachment fields (Zendesk's
    Slack integration) are read before text lines.
    """
    fields: dict[str, str] = {}
    for attachment in _dicts(message.get("attachments")):
        for field in _dicts(attachment.get("fields")):
            name = _canonical_field(str(field.get("title") or ""))
            value = field.get("value")
            if name and isinstance(value, str | int) and str(value).strip():
                fields.setdefault(name, str(value))
    for text in _texts(message):
        label = None  # a label line without its value ("*Ticket ID*:"): the next line holds it
        for line in text.splitlines():
            match = _FIELD_LINE.match(line)
            if label is not None and line.strip() and not match:
                fields.setdefault(label, line.strip())
                label = None
                continue
            if not match:
                continue
            name, label = _canonical_field(match.group("name")), None
            if name and match.group("value"):
                fields.setdefault(name, match.group("value"))
            elif name:
                label = name
    result: dict[str, str] = {}
    if "ticket_id" in fields and _clean_ticket_id(fields["ticket_id"]):
        result["ticket_id"] = _clean_ticket_id(fields["ticket_id"])
    if "priority" in fields:
        result["priority"] = normalize_priority(fields["priority"])
    if "type" in fields:
        result["type"] = _unlink(fields["type"]).strip("*_~` ")[:64]
    return result


def message_text(message: dict[str, Any]) -> str:
    texts = _texts(message)
    return "\n".join(texts)[:10000]


def message_parse(
    *,
    message: dict[str, Any],
    rules: ChannelRules,
    bot_user_id: str,
    now: datetime,
    own_bot_id: str = "",
) -> Verdict:
    """Decide whether a top-level channel message is a ticket, and read its fields."""
    if not isinstance(message, dict):
        return Verdict(None, "not a message")
    if message.get("type", "message") != "message":
        return Verdict(None, "not a message")
    subtype = message.get("subtype")
    if subtype not in TICKET_SUBTYPES:
        return Verdict(None, f"subtype {subtype}")
    if message.get("hidden"):
        return Verdict(None, "hidden")
    ts = message.get("ts")
    opened_at = ts_to_datetime(ts)
    if opened_at is None:
        return Verdict(None, "no ts")
    ts = str(ts)
    thread_ts = message.get("thread_ts")
    if thread_ts not in (None, "") and str(thread_ts) != ts:
        return Verdict(None, "thread reply")
    user = message.get("user") if isinstance(message.get("user"), str) else ""
    bot_id = message.get("bot_id") if isinstance(message.get("bot_id"), str) else ""
    if (bot_user_id and user == bot_user_id) or (own_bot_id and bot_id == own_bot_id):
        return Verdict(None, "own message")
    if opened_at < now - timedelta(minutes=rules.lookback_minutes):
        return Verdict(None, "older than look-back")
    if opened_at > now + timedelta(minutes=5):
        return Verdict(None, "from the future")

    fields = extract_fields(message)
    is_bot = subtype == "bot_message" or bool(bot_id)
    allowed_bot = bool(bot_id) and bot_id in rules.allowed_bot_ids
    text = message_text(message)
    author = user or bot_id or str(message.get("username") or "")

    if fields.get("ticket_id"):
        reason = "helpdesk fields"
    elif allowed_bot:
        reason = "allow-listed bot"
    elif rules.intake_mode == "plain" and not is_bot and user:
        if not text.strip() and subtype != "file_share":
            return Verdict(None, "empty")
        # "@SLA Buddy our database is down" from a customer is a ticket; the caller knows the
        # roster and turns a support engineer's mention of the bot away (it talks to the bot).
        reason = MENTIONS_BOT if mentions_user(text, bot_user_id) else "plain message"
    else:
        return Verdict(None, "not a ticket for this channel")
    return Verdict(
        ParsedTicket(
            slack_ts=ts,
            opened_at=opened_at,
            text=text,
            author=author[:32],
            helpdesk_ticket_id=fields.get("ticket_id", ""),
            priority=fields.get("priority", ""),
            ticket_type=fields.get("type", ""),
        ),
        reason,
    )
