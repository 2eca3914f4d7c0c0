"""The pieces around the sync: the beat schedule, the Celery task names, credentials, validation."""

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ValidationError

from base.outbound_http import HttpAnswer
from calendars import ical
from calendars.factories import EngineerFactory
from calendars.google import google_http
from calendars.models import OverrideKind, RosterOverride
from ops.schedules import default_schedules
from slabuddy.celery import app
from tests.support.calendar_files import utc


def test_the_sync_is_a_beat_job(settings):
    [job] = [s for s in default_schedules() if s.task == "calendars.sync_all"]
    assert job.every_seconds == settings.CALENDAR_SYNC_MINUTES * 60
    import calendars.tasks  # noqa: F401 (registers the tasks)

    assert {"calendars.sync_all", "calendars.sync_source"} <= set(app.tasks)


def test_service_account_credentials_with_a_delegated_subject(settings, tmp_path, no_network):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "slabuddy-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "slabuddy@slabuddy-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    settings.GOOGLE_CREDENTIALS_FILE = str(path)
    http = google_http(subject="support-lead@example.com")
    assert http.credentials._subject == "support-lead@example.com"
    assert http.credentials.has_scopes(["https://www.googleapis.com/auth/calendar.readonly"])
    assert http.http.timeout == settings.CALENDAR_TIMEOUT_SECONDS


def test_webcal_addresses_are_fetched_over_https(monkeypatch, settings):
    seen = {}

    def fake_get(url, *, deadline_seconds, url_check, address_allowed, **kwargs):
        seen["url"], seen["deadline"] = url, deadline_seconds
        return HttpAnswer(status=200, url=url, body=b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")

    monkeypatch.setattr(ical, "http_get", fake_get)
    ical.ical_fetch(url="webcal://calendar.example.com/private-abc/basic.ics", timeout=7)
    assert seen == {"url": "https://calendar.example.com/private-abc/basic.ics", "deadline": 7}


@pytest.mark.django_db
def test_override_validation():
    engineer = EngineerFactory()
    start = utc(2026, 10, 26, 8)
    with pytest.raises(ValidationError) as excinfo:
        RosterOverride(engineer=engineer, kind=OverrideKind.EMBEDDED, starts_at=start).full_clean()
    assert "product" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        RosterOverride(
            engineer=engineer, kind=OverrideKind.OFF_SHIFT, product="Auth", starts_at=start, ends_at=start
        ).full_clean()
    assert {"product", "ends_at"} <= set(excinfo.value.message_dict)
    ok = RosterOverride(engineer=engineer, kind=OverrideKind.EMBEDDED, product="Auth", starts_at=start)
    ok.full_clean()
