"""The demo page: open a ticket, @mention the bot, reply as an engineer, watch; an urgent
ticket also pages the stand-in PagerDuty at level 5, and the answer resolves the incident.

Routed only in demo mode (slabuddy/urls.py), which production never is.
"""

from __future__ import annotations

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
from ops.demo.setup import ALICE, DEMO_CHANNEL_ID, DEMO_CUSTOMER_ID, DEMO_PAGE_PRIORITIES, PEOPLE
from ops.demo.slack_events import demo_deliver_event, demo_post_as, message_event
from tickets.models import Ticket

NAMES = {p.slack_user_id: p.name for p in PEOPLE} | {
    DEMO_CUSTOMER_ID: "Customer (demo)",
    BOT_USER_ID: "SLA Buddy",
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
    for row in Escalation.objects.filter(ticket__in=tickets.values()).order_by("level"):
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
                        "who": NAMES.get(m.get("user", ""), m.get("user", "?")),
                        "is_bot": m.get("user") == BOT_USER_ID,
                        "text": m.get("text", ""),
                    }
                    for m in replies
                ],
            }
        )
    return JsonResponse({"threads": threads, "names": NAMES, "pager": demo_pager_incidents()})
