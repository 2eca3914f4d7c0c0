"""The demo page: open a ticket, @mention the bot, reply as an engineer, watch; an urgent
ticket also pages the stand-in PagerDuty at level 5, and the answer resolves the incident.
The lifecycle too: mark a ticket waiting on the customer, have the customer write again
(which resumes it, or after an answer starts a next-response cycle), close it, press the
buttons of the bot's messages, and edit a helpdesk message into a ticket.

Every action acts like Slack: the message, reaction or edit goes into the stand-in Slack, and
the signed event (or button press) through our own endpoints, as a real workspace sends it.
Routed only in demo mode (slabuddy/urls.py), which production never is.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from base.fake_slack import BOT_USER_ID
from base.slack_api import slack_client
from calendars.targets import TargetKind
from escalation.models import Escalation
from ops.demo.pager import demo_pager_incidents
from ops.demo.setup import (
    ALICE,
    DEMO_CHANNEL_ID,
    DEMO_CUSTOMER_ID,
    DEMO_HELPDESK_BOT_ID,
    DEMO_PAGE_PRIORITIES,
    PEOPLE,
)
from ops.demo.slack_events import (
    demo_deliver_event,
    demo_fake_call,
    demo_post_as,
    demo_press_button,
    message_event,
)
from tickets.models import DEFAULT_CLOSE_REACTION, DEFAULT_WAITING_REACTION, Ticket

NAMES = {p.slack_user_id: p.name for p in PEOPLE} | {
    DEMO_CUSTOMER_ID: "Customer (demo)",
    BOT_USER_ID: "SLA Buddy",
    DEMO_HELPDESK_BOT_ID: "Helpdesk (demo)",
}


def _deliver(request: HttpRequest, message: dict, kind: str = "message") -> None:
    demo_deliver_event(
        events_url=request.build_absolute_uri(reverse("slack-events")),
        event=message_event(channel=DEMO_CHANNEL_ID, message=message, event_type=kind),
    )


@require_GET
@ensure_csrf_cookie
def demo_page(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/index.html", {"channel": DEMO_CHANNEL_ID, "alice": ALICE.name})


@require_POST
def demo_open_ticket(request: HttpRequest) -> JsonResponse:
    text = (request.POST.get("text") or "").strip() or "Our production database is unreachable!"
    priority = request.POST.get("priority", "")
    if priority in DEMO_PAGE_PRIORITIES:  # the line a helpdesk writes; parsed like any ticket's
        text = f"{text[:1900]}\n*Ticket priority*: {priority.capitalize()}"
    message = demo_post_as(channel=DEMO_CHANNEL_ID, user=DEMO_CUSTOMER_ID, text=text[:2000])
    _deliver(request, message)
    return JsonResponse({"ok": True, "ts": message["ts"]})


@require_POST
def demo_mention(request: HttpRequest) -> JsonResponse:
    thread_ts = request.POST.get("thread_ts", "")
    text = f"<@{BOT_USER_ID}> " + (request.POST.get("text") or "snooze").strip()[:500]
    message = demo_post_as(
        channel=DEMO_CHANNEL_ID, user=ALICE.slack_user_id, text=text, thread_ts=thread_ts
    )
    # Slack sends both an app_mention and a message event for one mention.
    for kind in ("app_mention", "message"):
        _deliver(request, message, kind)
    return JsonResponse({"ok": True, "ts": message["ts"]})


@require_POST
def demo_reply(request: HttpRequest) -> JsonResponse:
    thread_ts = request.POST.get("thread_ts", "")
    text = (request.POST.get("text") or "").strip() or "Hi! I'm on it, checking your database now."
    message = demo_post_as(
        channel=DEMO_CHANNEL_ID, user=ALICE.slack_user_id, text=text[:2000], thread_ts=thread_ts
    )
    _deliver(request, message)
    return JsonResponse({"ok": True, "ts": message["ts"]})


@require_POST
def demo_customer(request: HttpRequest) -> JsonResponse:
    """The customer writes again in the thread: a wait ends, or after an answer a next-response
    cycle starts (after a close, the ticket reopens into one)."""
    thread_ts = request.POST.get("thread_ts", "")
    text = (request.POST.get("text") or "").strip() or "It is still failing for us, can you look again?"
    message = demo_post_as(channel=DEMO_CHANNEL_ID, user=DEMO_CUSTOMER_ID, text=text[:2000],
                           thread_ts=thread_ts)
    _deliver(request, message)
    return JsonResponse({"ok": True, "ts": message["ts"]})


def _react(request: HttpRequest, *, ts: str, name: str, remove: bool = False) -> JsonResponse:
    answer = demo_fake_call("react", channel=DEMO_CHANNEL_ID, ts=ts, user=ALICE.slack_user_id, name=name,
                            remove=remove)
    if not answer.get("ok"):
        return JsonResponse({"ok": False, "error": answer.get("error")}, status=400)
    event = {"type": "reaction_removed" if remove else "reaction_added", "user": ALICE.slack_user_id,
             "reaction": name, "item": {"type": "message", "channel": DEMO_CHANNEL_ID, "ts": ts},
             "event_ts": answer["event_ts"]}
    demo_deliver_event(events_url=request.build_absolute_uri(reverse("slack-events")), event=event)
    return JsonResponse({"ok": True})


@require_POST
def demo_waiting(request: HttpRequest) -> JsonResponse:
    """Alice marks the ticket waiting on the customer with the waiting reaction."""
    return _react(request, ts=request.POST.get("thread_ts", ""), name=DEFAULT_WAITING_REACTION)


@require_POST
def demo_close(request: HttpRequest) -> JsonResponse:
    """Alice closes the ticket without a reply with the close reaction."""
    return _react(request, ts=request.POST.get("thread_ts", ""), name=DEFAULT_CLOSE_REACTION)


@require_POST
def demo_button(request: HttpRequest) -> JsonResponse:
    """Alice presses a button of one of the bot's messages (Snooze, Waiting on customer, Close, Resume)."""
    thread_ts, ts = request.POST.get("thread_ts", ""), request.POST.get("ts", "")
    replies = slack_client().conversations_replies(channel=DEMO_CHANNEL_ID, ts=thread_ts)["messages"]
    message = next((m for m in replies if m["ts"] == ts and m.get("user") == BOT_USER_ID), None)
    if message is None:
        return JsonResponse({"ok": False, "error": "no such message"}, status=400)
    try:
        demo_press_button(interactions_url=request.build_absolute_uri(reverse("slack-interactions")),
                          channel=DEMO_CHANNEL_ID, user=ALICE.slack_user_id, message=message,
                          action_id=request.POST.get("action_id", ""))
    except StopIteration:
        return JsonResponse({"ok": False, "error": "no such button"}, status=400)
    return JsonResponse({"ok": True})


@require_POST
def demo_helpdesk_post(request: HttpRequest) -> JsonResponse:
    """The helpdesk posts a new request without its ticket fields yet: not a ticket (until edited)."""
    text = (request.POST.get("text") or "").strip() or "New request from Acme Corp (details follow)"
    answer = demo_fake_call("postAsBot", channel=DEMO_CHANNEL_ID, bot_id=DEMO_HELPDESK_BOT_ID,
                            username="Helpdesk", text=text[:2000])
    message = answer["message"]
    event = {"type": "message", "subtype": "bot_message", "channel": DEMO_CHANNEL_ID,
             "bot_id": DEMO_HELPDESK_BOT_ID, "username": "Helpdesk", "text": message["text"],
             "ts": message["ts"], "event_ts": message["ts"]}
    demo_deliver_event(events_url=request.build_absolute_uri(reverse("slack-events")), event=event)
    return JsonResponse({"ok": True, "ts": message["ts"]})


@require_POST
def demo_edit(request: HttpRequest) -> JsonResponse:
    """The helpdesk edits its message to add ``*Ticket ID*`` and a priority: now it is a ticket,
    opened when the message was first posted."""
    ts = request.POST.get("ts", "")
    replies = slack_client().conversations_replies(channel=DEMO_CHANNEL_ID, ts=ts)["messages"]
    original = next((m for m in replies if m["ts"] == ts), None)
    if original is None:
        return JsonResponse({"ok": False, "error": "no such message"}, status=400)
    text = f"{original['text']}\n*Ticket ID*: {ts.split('.')[0][-4:]}\n*Ticket priority*: P3"
    answer = demo_fake_call("editMessage", channel=DEMO_CHANNEL_ID, ts=ts, text=text)
    event = {"type": "message", "subtype": "message_changed", "hidden": True, "channel": DEMO_CHANNEL_ID,
             "ts": f"{time.time():.6f}", "message": answer["message"],
             "previous_message": answer["previous_message"]}
    demo_deliver_event(events_url=request.build_absolute_uri(reverse("slack-events")), event=event)
    return JsonResponse({"ok": True})


def _bot_view(message: dict) -> dict:
    """What the page shows of a bot message's blocks: its state line and its buttons."""
    blocks = message.get("blocks") or []
    buttons = [{"action_id": e.get("action_id"), "label": (e.get("text") or {}).get("text", "")}
               for b in blocks if b.get("type") == "actions" for e in b.get("elements") or []]
    state = " ".join(e.get("text", "") for b in blocks if b.get("block_id") == "slabuddy_state"
                     for e in b.get("elements") or [])
    return {"buttons": buttons, "state_line": state}


@require_GET
def demo_state(request: HttpRequest) -> JsonResponse:
    """Every demo thread as the stand-in Slack holds it, with each ticket's levels."""
    client = slack_client()
    history = client.conversations_history(channel=DEMO_CHANNEL_ID, limit=20)["messages"]
    tickets = {
        t.slack_ts: t
        for t in Ticket.objects.filter(
            channel__slack_channel_id=DEMO_CHANNEL_ID, slack_ts__in=[m["ts"] for m in history]
        )
    }
    levels: dict[int, list[Escalation]] = {}
    for row in Escalation.objects.filter(ticket__in=tickets.values()).order_by("cycle", "level"):
        levels.setdefault(row.ticket_id, []).append(row)
    now = timezone.now()
    threads = []
    for parent in history:
        replies = client.conversations_replies(channel=DEMO_CHANNEL_ID, ts=parent["ts"])["messages"]
        ticket = tickets.get(parent["ts"])
        threads.append(
            {
                "ts": parent["ts"],
                "ticket": None if ticket is None else {
                    "id": ticket.pk,
                    "state": ticket.state,
                    "priority": ticket.priority,
                    "admin_url": reverse("admin:tickets_ticket_change", args=[ticket.pk]),
                    "levels": [
                        {
                            "level": row.level,
                            "cycle": row.cycle,
                            "state": row.state,
                            "page": row.target_kind == TargetKind.PAGE,
                            "due_in_seconds": round((row.due_at - now).total_seconds()),
                        }
                        for row in levels.get(ticket.pk, [])
                    ],
                },
                "messages": [
                    {
                        "ts": m["ts"],
                        "who": NAMES.get(m.get("user") or m.get("bot_id", ""), m.get("user", "?")),
                        "is_bot": m.get("user") == BOT_USER_ID,
                        "text": m.get("text", ""),
                        "edited": bool(m.get("edited")),
                        "reactions": [r["name"] for r in m.get("reactions") or []],
                        **(_bot_view(m) if m.get("user") == BOT_USER_ID else {}),
                    }
                    for m in replies
                ],
            }
        )
    return JsonResponse({"threads": threads, "names": NAMES, "pager": demo_pager_incidents()})
