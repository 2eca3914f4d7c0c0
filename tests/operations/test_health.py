"""/healthz, /readyz, the beat heartbeat and ``manage.py readiness``."""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.test import override_settings

from calendars.models import CalendarSource
from ops.heartbeat import heartbeat_record
from ops.models import Heartbeat
from ops.schedules import default_schedules

pytestmark = pytest.mark.django_db


def test_healthz_answers_whatever_the_host(client):
    response = client.get("/healthz", HTTP_HOST="not-an-allowed-host.example")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_503_until_beat_has_run_then_200(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["beat"]["ok"] is False
    assert "no heartbeat" in body["checks"]["beat"]["detail"]

    heartbeat_record()
    response = client.get("/readyz", HTTP_HOST="health-probe.internal")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert checks["beat"]["ok"] is True
    assert checks["calendars"]["ok"] is True
    assert checks["calendars"]["status"] in ("not configured", "fresh")


def test_readyz_reports_a_stale_heartbeat(client, settings):
    heartbeat_record(now=datetime.now(UTC) - timedelta(seconds=settings.HEARTBEAT_MAX_AGE_SECONDS + 30))
    response = client.get("/readyz")
    assert response.status_code == 503
    beat = response.json()["checks"]["beat"]
    assert beat["ok"] is False and beat["age_seconds"] > settings.HEARTBEAT_MAX_AGE_SECONDS


def test_readyz_reports_an_unreachable_broker(client):
    heartbeat_record()
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    broker = response.json()["checks"]["broker"]
    assert broker == {"ok": False, "detail": broker["detail"]}
    assert "redis unreachable" in broker["detail"]
    assert "127.0.0.1:1" not in broker["detail"]  # no URLs in public output


def test_readyz_reports_an_unreachable_database(client):
    from django.db import connection

    with mock.patch.object(connection, "cursor", side_effect=OSError("connection refused")):
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == {"ok": False, "detail": "database unreachable (OSError)"}
    assert checks["beat"]["detail"].startswith("skipped")


def test_readyz_reports_stale_calendars(client):
    heartbeat_record()
    source = CalendarSource.objects.create(
        name="Support shifts", kind="ical", purpose="shifts", ical_url="https://example.com/a.ics",
        last_success_at=datetime.now(UTC) - timedelta(days=2),
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["calendars"]["status"] == "stale"
    assert "Support shifts" in response.json()["checks"]["calendars"]["detail"]
    CalendarSource.objects.filter(pk=source.pk).update(last_success_at=datetime.now(UTC))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["calendars"]["status"] == "fresh"


def test_heartbeat_is_a_beat_schedule_and_its_task_writes_the_row():
    schedule = next(s for s in default_schedules() if s.task == "ops.tasks.heartbeat")
    call_command("ensure_schedules")
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.get(name=schedule.name).task == "ops.tasks.heartbeat"
    from ops.tasks import heartbeat

    heartbeat()
    row = Heartbeat.objects.get(name="beat")
    assert datetime.now(UTC) - row.at < timedelta(seconds=10)
    assert row.hostname
    heartbeat()
    assert Heartbeat.objects.count() == 1


def test_readiness_command_exit_status(capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("readiness", only=["beat"])
    assert exited.value.code == 1
    heartbeat_record()
    call_command("readiness", only=["beat"])
    assert '"status": "ok"' in capsys.readouterr().out
