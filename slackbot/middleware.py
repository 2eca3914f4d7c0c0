"""A short way through Django for ``POST /slack/events``, the one request Slack floods us with.

Each event costs a request that must be answered within 3 seconds, and the
middleware for people (sessions, authentication, CSRF, messages, static files)
and the URL resolver do nothing for it: the view is csrf-exempt and
authenticated by its signature alone. This middleware, at the top of the stack,
hands that request straight to ``slackbot.views.slack_events`` (the one
implementation of the checks) wrapped in what the full stack still does for it:
host validation and Content-Length (as CommonMiddleware does them), and the
security and clickjacking headers. Any other request, and any that the security
middleware would redirect to HTTPS, goes the normal way.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware

from slackbot import views

EVENTS_PATH = "/slack/events"


def _view(request: HttpRequest) -> HttpResponse:
    request.get_host()  # DisallowedHost (400) for a host not in ALLOWED_HOSTS, as CommonMiddleware does
    response = views.slack_events(request)
    if "Content-Length" not in response:  # as CommonMiddleware does: otherwise gunicorn sends it chunked
        response.headers["Content-Length"] = str(len(response.content))
    return response


class SlackEventsShortPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.events = SecurityMiddleware(XFrameOptionsMiddleware(_view))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method == "POST"
            and request.path_info == EVENTS_PATH
            and (request.is_secure() or not settings.SECURE_SSL_REDIRECT)
        ):
            return self.events(request)
        return self.get_response(request)
