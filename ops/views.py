import hmac

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache

from ops.health import readiness
from ops.metrics import render_metrics
from ops.sla_config.exporting import config_dump, config_export


def home(request: HttpRequest) -> HttpResponse:
    return redirect("admin:index")


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness only: the process answers. Readiness is /readyz."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database and broker answer, beat's heartbeat is recent and
    the calendars are fresh (or not configured); 503 with the reasons otherwise."""
    ok, checks = readiness()
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


def metrics_token_valid(request: HttpRequest) -> bool:
    """The request brings ``Authorization: Bearer <METRICS_TOKEN>``."""
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    return bool(token) and given.startswith("Bearer ") and hmac.compare_digest(
        given[7:].strip().encode(), token.encode()
    )


def _metrics_allowed(request: HttpRequest) -> tuple[bool, HttpResponse | None]:
    token = settings.METRICS_TOKEN
    if metrics_token_valid(request):
        return True, None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True, None
    if not token and not settings.PRODUCTION:
        return True, None
    if not token:
        return False, HttpResponse(
            "/metrics needs METRICS_TOKEN in production (then send Authorization: Bearer <token>).\n",
            status=403,
            content_type="text/plain",
        )
    response = HttpResponse(
        "Authorization: Bearer <METRICS_TOKEN> required.\n", status=401, content_type="text/plain"
    )
    response["WWW-Authenticate"] = 'Bearer realm="slabuddy-metrics"'
    return False, response


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, computed from the database at scrape time."""
    allowed, refusal = _metrics_allowed(request)
    if not allowed:
        return refusal
    body, content_type = render_metrics()
    return HttpResponse(body, content_type=content_type)


@staff_member_required
@never_cache
def sla_config_download(request: HttpRequest) -> HttpResponse:
    """Today's configuration as ``sla_config export`` writes it (staff only): the replay page starts
    a proposal from it."""
    return HttpResponse(config_dump(config_export()), content_type="text/yaml; charset=utf-8")
