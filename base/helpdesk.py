"""Ask a helpdesk whether one of its tickets has had an agent's first reply.

Takes a provider name and the helpdesk's own ticket id, nothing of ours.
Called by the escalation engine just before a level fires (outside any
database transaction, with a short total deadline: ``HELPDESK_TIMEOUT_SECONDS``
for the whole call, however slowly the helpdesk answers), and by the periodic
helpdesk poll. ``None`` means "cannot tell" (not a helpdesk provider, no ticket id,
no credentials, helpdesk down or answering nonsense): the level fires, and
the reason is logged (never the credentials).

One small adapter per helpdesk, each doing one GET through ``http_get_json``
(the seam tests point at a local server):

* Zendesk: ``GET /api/v2/tickets/{id}/metrics.json`` -> ``ticket_metric.replies``
  (public agent replies) > 0; ``ticket_metric.replied_at``/``updated_at`` for when.
  Auth: ``{email}/token:{api token}``.
* Freshdesk: ``GET /api/v2/tickets/{id}?include=stats`` -> ``stats.first_responded_at``.
  Auth: ``{api key}:X``.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime

from base.outbound_http import DeadlineExceeded, HttpStatusError, OutboundHttpError, http_get

logger = logging.getLogger("slabuddy.helpdesk")

MAX_RESPONSE_BYTES = 1_000_000


class HelpdeskUnavailable(Exception):
    """The helpdesk could not answer (down, timeout, 5xx, bad credentials, nonsense)."""


@dataclass(frozen=True)
class FirstReply:
    replied: bool | None  # None: cannot tell
    at: datetime | None = None
    reason: str = ""


def http_get_json(url: str, *, headers: dict[str, str], timeout: float) -> Any:
    """GET a JSON document within ``timeout`` seconds in total. The one network seam of the adapters."""
    try:
        answer = http_get(url, headers={"Accept": "application/json", **headers}, deadline_seconds=timeout,
                          max_bytes=MAX_RESPONSE_BYTES)
    except DeadlineExceeded as exc:
        raise HelpdeskUnavailable(f"no answer within the deadline of {timeout:g} s") from exc
    except HttpStatusError as exc:
        raise HelpdeskUnavailable(f"HTTP {exc.status}") from exc
    except OutboundHttpError as exc:
        raise HelpdeskUnavailable(str(exc)) from exc
    try:
        return json.loads(answer.body)
    except ValueError as exc:
        raise HelpdeskUnavailable("response is not JSON") from exc


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def zendesk_first_reply(*, ticket_id: str) -> FirstReply:
    if not (settings.ZENDESK_BASE_URL and settings.ZENDESK_EMAIL and settings.ZENDESK_API_TOKEN):
        return FirstReply(None, reason="Zendesk is not configured")
    url = (f"{settings.ZENDESK_BASE_URL.rstrip('/')}/api/v2/tickets/"
           f"{urllib.parse.quote(ticket_id, safe='')}/metrics.json")
    data = http_get_json(
        url,
        headers=_basic(f"{settings.ZENDESK_EMAIL}/token", settings.ZENDESK_API_TOKEN),
        timeout=settings.HELPDESK_TIMEOUT_SECONDS,
    )
    metric = data.get("ticket_metric") if isinstance(data, dict) else None
    if not isinstance(metric, dict) or not isinstance(metric.get("replies"), int):
        raise HelpdeskUnavailable("unexpected Zendesk answer")
    if metric["replies"] > 0:
        # First reply = ticket created + reply_time_in_minutes (calendar), when Zendesk has it.
        created, minutes = _when(metric.get("created_at")), metric.get("reply_time_in_minutes")
        at = None
        if created and isinstance(minutes, dict) and isinstance(minutes.get("calendar"), int):
            at = created + timedelta(minutes=minutes["calendar"])
        return FirstReply(True, at, "Zendesk replies > 0")
    return FirstReply(False, reason="no agent reply in Zendesk")


def freshdesk_first_reply(*, ticket_id: str) -> FirstReply:
    if not (settings.FRESHDESK_BASE_URL and settings.FRESHDESK_API_KEY):
        return FirstReply(None, reason="Freshdesk is not configured")
    url = (f"{settings.FRESHDESK_BASE_URL.rstrip('/')}/api/v2/tickets/"
           f"{urllib.parse.quote(ticket_id, safe='')}?include=stats")
    data = http_get_json(
        url, headers=_basic(settings.FRESHDESK_API_KEY, "X"), timeout=settings.HELPDESK_TIMEOUT_SECONDS
    )
    stats = data.get("stats") if isinstance(data, dict) else None
    if not isinstance(stats, dict) or "first_responded_at" not in stats:
        raise HelpdeskUnavailable("unexpected Freshdesk answer")
    first = stats.get("first_responded_at")
    if first:
        return FirstReply(True, _when(first), "Freshdesk first_responded_at")
    return FirstReply(False, reason="no agent reply in Freshdesk")


ZENDESK, FRESHDESK = "zendesk", "freshdesk"
ADAPTERS = {
    ZENDESK: zendesk_first_reply,
    FRESHDESK: freshdesk_first_reply,
}


def helpdesk_first_reply(*, provider: str, ticket_id: str) -> FirstReply:
    adapter = ADAPTERS.get(provider)
    if adapter is None:
        return FirstReply(None, reason="not a helpdesk provider")
    if not ticket_id:
        return FirstReply(None, reason="no helpdesk ticket id")
    try:
        answer = adapter(ticket_id=ticket_id)
    except HelpdeskUnavailable as exc:
        logger.warning(
            "helpdesk_unavailable provider=%s helpdesk_id=%s reason=%s", provider, ticket_id, exc
        )
        return FirstReply(None, reason=str(exc))
    return answer


# --- the helpdesk's status of a ticket: open, waiting on the customer, or closed -------------------

OPEN, WAITING, CLOSED = "open", "waiting", "closed"
# Zendesk: new/open/pending/hold/solved/closed. Freshdesk: the words of its default statuses, and
# their numbers (2 open, 3 pending, 4 resolved, 5 closed, 6 waiting on customer, 7 waiting on
# third party: the customer is not the one awaited, so it counts as open).
_STATUS_WORDS = {
    "new": OPEN, "open": OPEN, "reopened": OPEN, "waiting on third party": OPEN,
    "pending": WAITING, "hold": WAITING, "on-hold": WAITING, "on hold": WAITING, "on_hold": WAITING,
    "waiting on customer": WAITING, "awaiting customer": WAITING,
    "solved": CLOSED, "resolved": CLOSED, "closed": CLOSED,
}
_FRESHDESK_CODES = {2: OPEN, 3: WAITING, 4: CLOSED, 5: CLOSED, 6: WAITING, 7: OPEN}


def helpdesk_status_word(value: Any) -> str | None:
    """A helpdesk's status (a word in any case, or a Freshdesk number) as open / waiting / closed;
    None for a status that says neither (a custom one)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _FRESHDESK_CODES.get(value)
    if isinstance(value, str):
        word = " ".join(value.strip().lower().replace("_", " ").split())
        if word.isdigit():
            return _FRESHDESK_CODES.get(int(word))
        return _STATUS_WORDS.get(word) or _STATUS_WORDS.get(word.replace(" ", "-"))
    return None


@dataclass(frozen=True)
class HelpdeskCheck:
    """What the periodic poll learns about one ticket: its first reply (if asked) and status."""

    replied: bool | None = None
    at: datetime | None = None
    status: str | None = None  # open / waiting / closed, or None: cannot tell


def _zendesk_status(ticket_id: str) -> str | None:
    if not (settings.ZENDESK_BASE_URL and settings.ZENDESK_EMAIL and settings.ZENDESK_API_TOKEN):
        return None
    url = (f"{settings.ZENDESK_BASE_URL.rstrip('/')}/api/v2/tickets/"
           f"{urllib.parse.quote(ticket_id, safe='')}.json")
    data = http_get_json(url, headers=_basic(f"{settings.ZENDESK_EMAIL}/token", settings.ZENDESK_API_TOKEN),
                         timeout=settings.HELPDESK_TIMEOUT_SECONDS)
    ticket = data.get("ticket") if isinstance(data, dict) else None
    if not isinstance(ticket, dict) or "status" not in ticket:
        raise HelpdeskUnavailable("unexpected Zendesk answer")
    return helpdesk_status_word(ticket["status"])


def _freshdesk_check(ticket_id: str) -> HelpdeskCheck:
    """Freshdesk gives the status and the first reply in one answer (``?include=stats``)."""
    if not (settings.FRESHDESK_BASE_URL and settings.FRESHDESK_API_KEY):
        return HelpdeskCheck()
    url = (f"{settings.FRESHDESK_BASE_URL.rstrip('/')}/api/v2/tickets/"
           f"{urllib.parse.quote(ticket_id, safe='')}?include=stats")
    data = http_get_json(url, headers=_basic(settings.FRESHDESK_API_KEY, "X"),
                         timeout=settings.HELPDESK_TIMEOUT_SECONDS)
    stats = data.get("stats") if isinstance(data, dict) else None
    if not isinstance(stats, dict) or "first_responded_at" not in stats:
        raise HelpdeskUnavailable("unexpected Freshdesk answer")
    first = stats.get("first_responded_at")
    return HelpdeskCheck(bool(first), _when(first), helpdesk_status_word(data.get("status")))


def helpdesk_ticket_check(*, provider: str, ticket_id: str, first_reply: bool) -> HelpdeskCheck:
    """The ticket's status, and (``first_reply``) whether it has had an agent's first reply.
    Each part that cannot be read is None; failures are logged, never raised."""
    if provider not in ADAPTERS or not ticket_id:
        return HelpdeskCheck()
    if provider == FRESHDESK:
        try:
            return _freshdesk_check(ticket_id)
        except HelpdeskUnavailable as exc:
            logger.warning("helpdesk_unavailable provider=%s helpdesk_id=%s reason=%s",
                           provider, ticket_id, exc)
            return HelpdeskCheck()
    reply = helpdesk_first_reply(provider=provider, ticket_id=ticket_id) if first_reply else FirstReply(None)
    try:
        status = _zendesk_status(ticket_id)
    except HelpdeskUnavailable as exc:
        logger.warning("helpdesk_status_unavailable provider=%s helpdesk_id=%s reason=%s",
                       provider, ticket_id, exc)
        status = None
    return HelpdeskCheck(reply.replied, reply.at, status)


def helpdesk_ticket_url(*, provider: str, ticket_id: str) -> str:
    """Where an agent opens a helpdesk ticket ('' if we cannot tell): the helpdesk the
    channel's response mode names, else whichever helpdesk is configured."""
    if not ticket_id:
        return ""
    places = {
        ZENDESK: (settings.ZENDESK_BASE_URL, "/agent/tickets/"),
        FRESHDESK: (settings.FRESHDESK_BASE_URL, "/a/tickets/"),
    }
    for name in ([provider] if provider in places else []) + [ZENDESK, FRESHDESK]:
        base, path = places[name]
        if base:
            return f"{base.rstrip('/')}{path}{urllib.parse.quote(ticket_id, safe='')}"
    return ""
