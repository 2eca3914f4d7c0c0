"""POST /slack/events takes a short way through Django (slackbot/middleware.py): the same checks,
answers and stored rows as the full middleware stack, and every other request goes the normal way."""

from __future__ import annotations

import json
import time

import pytest
from django.forms.models import model_to_dict
from django.test import Client

from slackbot.models import SlackInbound
from tests.support.slack_requests import event_callback, helpdesk_message, post_event, slack_headers

pytestmark = pytest.mark.django_db

SHORT_PATH = "slackbot.middleware.SlackEventsShortPathMiddleware"


def _took_short_path(response) -> bool:
    request = response.wsgi_request
    # The URL resolver and the session middleware never saw it.
    return request.resolver_match is None and not hasattr(request, "session")


def test_a_signed_event_takes_the_short_path_and_is_stored(client, slack_secrets):
    response = post_event(client, event_callback(helpdesk_message(), event_id="EvShort"))
    assert response.status_code == 200 and response.json() == {"ok": True, "duplicate": False}
    assert _took_short_path(response)
    assert SlackInbound.objects.get().key == "EvShort"


@pytest.mark.parametrize(("kwargs", "status"), [({"secret": "not-the-secret"}, 403),
                                                ({"timestamp": int(time.time()) - 3600}, 403)])
def test_a_bad_signature_is_refused_on_the_short_path(client, slack_secrets, kwargs, status):
    response = post_event(client, event_callback(helpdesk_message()), **kwargs)
    assert response.status_code == status and _took_short_path(response)
    assert SlackInbound.objects.count() == 0


def test_an_unsigned_request_is_refused_on_the_short_path(client, slack_secrets):
    body = json.dumps(event_callback(helpdesk_message())).encode()
    response = client.post("/slack/events", data=body, content_type="application/json")
    assert response.status_code == 401 and _took_short_path(response)
    assert SlackInbound.objects.count() == 0


def test_malformed_json_is_400_on_the_short_path(client, slack_secrets):
    response = post_event(client, b'{"type": "event_callback", "event_id": "E1", "event": {')
    assert response.status_code == 400 and _took_short_path(response)
    assert SlackInbound.objects.count() == 0


def test_a_duplicate_delivery_is_acknowledged_once_on_the_short_path(client, slack_secrets):
    payload = event_callback(helpdesk_message(), event_id="EvTwice")
    first, second = post_event(client, payload), post_event(client, payload, retry_num=1)
    assert [first.json()["duplicate"], second.json()["duplicate"]] == [False, True]
    assert _took_short_path(first) and _took_short_path(second)
    assert SlackInbound.objects.count() == 1


def test_url_verification_on_the_short_path(client, slack_secrets):
    response = post_event(client, {"type": "url_verification", "challenge": "c-123"})
    assert response.status_code == 200 and response.json() == {"challenge": "c-123"}
    assert _took_short_path(response)


def test_other_requests_go_through_django_as_before(client, slack_secrets):
    assert client.get("/slack/events").status_code == 405  # require_POST, after URL resolution
    response = client.post("/slack/interactions", data="payload=%7B%7D",
                           content_type="application/x-www-form-urlencoded",
                           **slack_headers(b"payload=%7B%7D"))
    assert response.status_code == 400
    assert response.wsgi_request.resolver_match is not None and hasattr(response.wsgi_request, "session")
    assert client.post("/slack/events/", data=b"{}", content_type="application/json").status_code == 404


def test_a_host_not_allowed_is_400_on_the_short_path(client, slack_secrets, settings):
    settings.ALLOWED_HOSTS = ["sla.example.com"]
    response = post_event(client, event_callback(helpdesk_message()))  # Host: testserver
    assert response.status_code == 400
    assert SlackInbound.objects.count() == 0
    allowed = client.post("/slack/events", data=b"{}", content_type="application/json",
                          HTTP_HOST="sla.example.com")
    assert allowed.status_code == 401 and _took_short_path(allowed)  # on to the signature check


def test_plain_http_is_redirected_when_https_is_required(client, slack_secrets, settings):
    settings.SECURE_SSL_REDIRECT = True
    body = json.dumps(event_callback(helpdesk_message(), event_id="EvTls")).encode()
    plain = client.post("/slack/events", data=body, content_type="application/json", **slack_headers(body))
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    secure = client.post("/slack/events", data=body, content_type="application/json", secure=True,
                         **slack_headers(body))
    assert secure.status_code == 200 and _took_short_path(secure)
    assert SlackInbound.objects.get().key == "EvTls"


def _answers_and_rows(client, cases: list) -> tuple[list, list, set]:
    answers, paths = [], set()
    for payload in cases:
        response = post_event(client, payload, retry_num=3)
        headers = {k: v for k, v in response.items() if k not in ("Date",)}
        answers.append((response.status_code, response.content, headers))
        paths.add(_took_short_path(response))
    unsigned = client.post("/slack/events", data=b"{}", content_type="application/json")
    answers.append((unsigned.status_code, unsigned.content, dict(unsigned.items())))
    paths.add(_took_short_path(unsigned))
    rows = [
        {k: v for k, v in model_to_dict(row).items() if k not in ("id", "received_at")}
        for row in SlackInbound.objects.order_by("id")
    ]
    return answers, rows, paths


def test_the_short_path_answers_and_stores_exactly_what_the_full_stack_did(client, slack_secrets, settings):
    stored = event_callback(helpdesk_message(), event_id="EvSame")
    cases = [
        stored, stored,  # and its retry
        event_callback({"type": "pin_added", "user": "U1"}, event_id="EvPin"),
        {"type": "url_verification", "challenge": "same"},
        {"type": "app_rate_limited"},
        b"[1, 2]",
        b'{"a": NaN}',
    ]
    short_answers, short_rows, short_paths = _answers_and_rows(client, cases)
    SlackInbound.objects.all().delete()
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != SHORT_PATH]  # the stack as it was
    full_client = Client()  # a client loads the middleware on its first request
    full_answers, full_rows, full_paths = _answers_and_rows(full_client, cases)
    assert (short_paths, full_paths) == ({True}, {False})
    assert short_answers == full_answers
    assert short_rows == full_rows and len(short_rows) == 1
    assert short_rows[0]["retry_num"] == 3 and short_rows[0]["state"] == "pending"
