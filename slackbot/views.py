"""Inbound HTTP: Slack events, Slack interactions, the /sla slash command, helpdesk webhooks.

Thin: check the signature on the raw body, parse, store, answer. Refused
requests (401/403 signature, 400 malformed) write nothing.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from slackbot.commands import CommandMalformed, slash_command_handle, slash_command_parse
from slackbot.dispatch import HANDLED_EVENT_TYPES
from slackbot.inbound import Malformed, json_load_storable, slack_inbound_store
from slackbot.interactions import interaction_key
from slackbot.modals import modal_interaction, modal_interaction_handle
from slackbot.models import InboundKind
from slackbot.responses import WebhookPayloadError, helpdesk_webhook_handle
from slackbot.signing import (
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    ZENDESK_SIGNATURE_HEADER,
    ZENDESK_TIMESTAMP_HEADER,
    SignatureCheck,
    slack_signature_verify,
    webhook_signature_verify,
)
from tickets.models import ResponseMode

logger = logging.getLogger("slabuddy.inbound")


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"ok": False, "error": message}, status=status)


def _slack_check(request: HttpRequest, body: bytes) -> SignatureCheck:
    check = slack_signature_verify(
        secret=settings.SLACK_SIGNING_SECRET,
        timestamp=request.headers.get("X-Slack-Request-Timestamp"),
        signature=request.headers.get("X-Slack-Signature"),
        body=body,
        max_age_seconds=settings.SLACK_REQUEST_MAX_AGE_SECONDS,
    )
    if not check.ok:
        logger.warning("slack_request_refused path=%s reason=%s", request.path, check.reason)
    return check


def _retry_num(request: HttpRequest) -> int:
    try:
        return max(0, int(request.headers.get("X-Slack-Retry-Num", "0")))
    except ValueError:
        return 0


@csrf_exempt
@require_POST
def slack_events(request: HttpRequest) -> HttpResponse:
    body = request.body
    check = _slack_check(request, body)
    if not check.ok:
        return _error(check.status, "invalid request signature")
    try:
        payload = json_load_storable(body)
    except Malformed:
        return _error(400, "body is not valid JSON")
    if not isinstance(payload, dict):
        return _error(400, "body must be a JSON object")
    kind = payload.get("type")
    if kind == "url_verification":
        challenge = payload.get("challenge")
        if not isinstance(challenge, str):
            return _error(400, "url_verification without a challenge")
        return JsonResponse({"challenge": challenge})
    if kind != "event_callback":
        return JsonResponse({"ok": True, "ignored": f"type {str(kind)[:50]}"})
    event_id, event = payload.get("event_id"), payload.get("event")
    if not isinstance(event, dict):
        return _error(400, "event_callback needs event_id and event")
    if event.get("type") not in HANDLED_EVENT_TYPES:
        # Ignored whatever its envelope says: nothing is stored, so no event_id is needed.
        return JsonResponse({"ok": True, "ignored": "event type"})
    if not isinstance(event_id, str) or not event_id or len(event_id) > 150:
        return _error(400, "event_callback needs event_id and event")
    _, created = slack_inbound_store(
        key=event_id, kind=InboundKind.EVENT, payload=payload, retry_num=_retry_num(request),
        now=timezone.now(),
    )
    return JsonResponse({"ok": True, "duplicate": not created})


@csrf_exempt
@require_POST
def slack_interactions(request: HttpRequest) -> HttpResponse:
    body = request.body
    check = _slack_check(request, body)
    if not check.ok:
        return _error(check.status, "invalid request signature")
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=20)
        raw = form.get("payload", [None])[-1]
    except (UnicodeDecodeError, ValueError):
        return _error(400, "body is not a form")
    if raw is None:
        return _error(400, "payload field is missing")
    try:
        payload = json_load_storable(raw)
    except Malformed:
        return _error(400, "payload is not valid JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return _error(400, "payload must be a JSON object with a type")
    if modal_interaction(payload):  # our modals are answered in the request (slackbot/modals.py)
        answer = modal_interaction_handle(payload=payload)
        return JsonResponse(answer) if answer else HttpResponse(status=200)
    key = interaction_key(payload)
    if key is None:
        return HttpResponse(status=200)  # another interaction type: nothing to do
    slack_inbound_store(key=key, kind=InboundKind.INTERACTION, payload=payload, now=timezone.now())
    return HttpResponse(status=200)


@csrf_exempt
@require_POST
def slack_commands(request: HttpRequest) -> HttpResponse:
    """``/sla``: answered in the request (a modal must open within Slack's 3 seconds)."""
    body = request.body
    check = _slack_check(request, body)
    if not check.ok:
        return _error(check.status, "invalid request signature")
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=30)
        if form.get("ssl_check"):  # Slack checking our certificate: nothing to run
            return HttpResponse(status=200)
        command = slash_command_parse(form)
    except (UnicodeDecodeError, ValueError, CommandMalformed) as exc:
        return _error(400, f"not a slash command: {str(exc)[:100]}")
    answer = slash_command_handle(command=command, now=timezone.now())
    return JsonResponse(answer) if answer else HttpResponse(status=200)


HELPDESK_WEBHOOK_PROVIDERS = frozenset({ResponseMode.ZENDESK, ResponseMode.FRESHDESK})


@csrf_exempt
@require_POST
def helpdesk_webhook(request: HttpRequest, provider: str) -> HttpResponse:
    if provider not in HELPDESK_WEBHOOK_PROVIDERS:
        return _error(404, "unknown helpdesk provider")
    body = request.body
    check = webhook_signature_verify(
        secret=settings.HELPDESK_WEBHOOK_SECRET,
        body=body,
        signature=request.headers.get(WEBHOOK_SIGNATURE_HEADER),
        timestamp=request.headers.get(WEBHOOK_TIMESTAMP_HEADER),
        zendesk_signature=request.headers.get(ZENDESK_SIGNATURE_HEADER),
        zendesk_timestamp=request.headers.get(ZENDESK_TIMESTAMP_HEADER),
        max_age_seconds=settings.HELPDESK_WEBHOOK_MAX_AGE_SECONDS,
        allow_legacy=settings.HELPDESK_WEBHOOK_ALLOW_LEGACY_SIGNATURE,
    )
    if not check.ok:
        logger.warning("helpdesk_webhook_refused provider=%s reason=%s", provider, check.reason)
        return _error(check.status, "invalid webhook signature")
    try:
        payload = json_load_storable(body)
        result = helpdesk_webhook_handle(provider=provider, payload=payload, now=timezone.now())
    except (Malformed, WebhookPayloadError) as exc:
        return _error(400, str(exc)[:200])
    return JsonResponse({"ok": True, "responded": result.responded,
                         "status": {str(pk): did for pk, did in result.status.items()}})
