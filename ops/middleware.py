"""Answer the health endpoints before anything that could refuse them.

A container health check calls ``http://127.0.0.1:8000/healthz`` with a Host
header that is not in ALLOWED_HOSTS and over plain HTTP; host validation or
the production HTTPS redirect would turn that into a 400 or a 301. These
read-only endpoints reveal nothing that depends on the host, so they are
served first; so is ``/metrics`` when the request brings a bearer token.
"""

from __future__ import annotations

from collections.abc import Callable

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
            if request.path_info == "/metrics" and "Authorization" in request.headers:
                # A scraper with METRICS_TOKEN (e.g. Prometheus at http://web:8000/metrics);
                # without a token /metrics goes the normal way, for staff sessions.
                return views.metrics(request)
        return self.get_response(request)
