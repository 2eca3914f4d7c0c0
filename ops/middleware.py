"""Answer the health endpoints before anything that could refuse them.

A container health check calls ``http://127.0.0.1:8000/healthz`` with a Host
header that is not in ALLOWED_HOSTS and over plain HTTP; host validation or
the production HTTPS redirect would turn that into a 400 or a 301. These
read-only endpoints reveal nothing that depends on the host, so they are
served first; so is ``/metrics`` when the request brings a bearer token and no session.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ops import views


class HealthEndpointsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD"):
            if request.path_info == "/healthz":
                return views.healthz(request)
            if request.path_info == "/readyz":
                return views.readyz(request)
            if request.path_info == "/metrics" and "Authorization" in request.headers and (
                views.metrics_token_valid(request) or settings.SESSION_COOKIE_NAME not in request.COOKIES
            ):
                # A scraper with METRICS_TOKEN (e.g. Prometheus at http://web:8000/metrics), or
                # a wrong one without a session. A browser session goes the normal way (sessions
                # and authentication run there), so staff can read it whatever else it sends.
                return views.metrics(request)
        return self.get_response(request)
