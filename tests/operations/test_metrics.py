"""/metrics: Prometheus text computed from the database at scrape time."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from escalation.models import Escalation, TicketSla
from ops.metrics import render_metrics
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _samples(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _level(ticket, level, state, **extra):
    return Escalation.objects.create(
        ticket=ticket,
        level=level,
        target_kind="on_shift",
        due_at=ticket.opened_at + timedelta(minutes=10 * level),
        state=state,
        **extra,
    )


@pytest.fixture
def history():
    gold = WatchedChannelFactory(tier=TierFactory(name="Gold"))
    silver = WatchedChannelFactory(tier=TierFactory(name="Silver"))
    opened = NOW - timedelta(hours=2)
    fast = TicketFactory(
        channel=gold,
        opened_at=opened,
        state="responded",
        responded_at=opened + timedelta(seconds=200),
        response_path="slack_thread",
    )
    slow = TicketFactory(
        channel=gold,
        opened_at=opened,
        state="responded",
        responded_at=opened + timedelta(seconds=2000),
        response_path="zendesk",
    )
    waiting = TicketFactory(channel=silver, opened_at=opened)
    _level(slow, 1, "fired")
    _level(slow, 2, "cancelled")
    _level(waiting, 1, "fired", last_error="ratelimited (retried)")
    _level(waiting, 2, "failed", last_error="channel_not_found")
    _level(waiting, 3, "pending")
    _level(fast, 1, "cancelled")
    return {"fast": fast, "slow": slow, "waiting": waiting}


def test_metrics_are_counted_from_the_rows(client, history):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    s = _samples(response.content.decode())
    assert s[("slabuddy_tickets_opened_total", (("tier", "Gold"),))] == 2
    assert s[("slabuddy_tickets_opened_total", (("tier", "Silver"),))] == 1
    assert s[("slabuddy_tickets", (("state", "armed"), ("tier", "Silver")))] == 1
    assert s[("slabuddy_levels_fired_total", (("level", "1"), ("tier", "Gold")))] == 1
    assert s[("slabuddy_levels_fired_total", (("level", "1"), ("tier", "Silver")))] == 1
    assert ("slabuddy_levels_fired_total", (("level", "2"), ("tier", "Silver"))) not in s
    assert s[("slabuddy_slack_errors_total", (("state", "failed"), ("tier", "Silver")))] == 1
    assert s[("slabuddy_slack_errors_total", (("state", "fired"), ("tier", "Silver")))] == 1
    assert s[("slabuddy_levels_pending", (("due", "any"),))] == 1
    assert s[("slabuddy_levels_pending", (("due", "overdue_60s"),))] == 1
    ttfr = "slabuddy_time_to_first_response_seconds"
    assert s[(ttfr + "_count", (("tier", "Gold"),))] == 2
    assert s[(ttfr + "_sum", (("tier", "Gold"),))] == pytest.approx(2200)
    assert s[(ttfr + "_bucket", (("le", "300.0"), ("tier", "Gold")))] == 1
    assert s[(ttfr + "_bucket", (("le", "3600.0"), ("tier", "Gold")))] == 2
    assert s[(ttfr + "_bucket", (("le", "+Inf"), ("tier", "Gold")))] == 2


def test_breaches_are_counted_by_breach_time(history):
    """The breach time decides, as in the admin's Breached filter: not which levels fired."""
    opened = history["fast"].opened_at

    def target(ticket, minutes):
        TicketSla.objects.create(ticket=ticket, policy_name="p", armed_at=opened,
                                 breach_at=opened + timedelta(minutes=minutes))

    target(history["fast"], 10)  # answered after 200 s: within its target
    target(history["slow"], 60)  # answered after 2,000 s, a level fired: still within a 1 h target
    target(history["waiting"], 30)  # no response, target passed an hour and a half ago
    other = TicketFactory(channel=history["slow"].channel, opened_at=opened, state="responded",
                          responded_at=opened + timedelta(minutes=50), response_path="slack_thread")
    target(other, 45)  # answered 5 min after its target
    s = _samples(render_metrics(now=NOW)[0].decode())
    assert s[("slabuddy_tickets_breached_total", (("tier", "Gold"),))] == 1
    assert s[("slabuddy_tickets_breached_total", (("tier", "Silver"),))] == 1
    assert s[("slabuddy_tickets_in_breach", (("tier", "Silver"),))] == 1
    assert s[("slabuddy_tickets_in_breach", (("tier", "Gold"),))] == 0
    # Before the waiting ticket's target passed, nothing of Silver was breached.
    early = _samples(render_metrics(now=opened + timedelta(minutes=29))[0].decode())
    assert ("slabuddy_tickets_breached_total", (("tier", "Silver"),)) not in early


def test_sweeper_catches_are_counted_when_the_engine_records_them(client, history):
    Escalation.objects.filter(ticket=history["slow"], level=1).update(fired_via="sweeper")
    s = _samples(client.get("/metrics").content.decode())
    assert s[("slabuddy_sweeper_catches_total", (("level", "1"), ("tier", "Gold")))] == 1


def test_a_row_written_by_another_process_shows_at_the_next_scrape(client, history):
    client.get("/metrics")
    TicketFactory(channel=history["waiting"].channel)  # as if intake in a worker had written it
    s = _samples(client.get("/metrics").content.decode())
    assert s[("slabuddy_tickets_opened_total", (("tier", "Silver"),))] == 2


def test_metrics_token_is_required_when_set(client):
    with override_settings(METRICS_TOKEN="s3cret-token"):
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
        # Prometheus inside the compose network: an internal host name, plain HTTP.
        scraped = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", HTTP_HOST="web:8000")
        assert scraped.status_code == 200 and b"slabuddy_tickets_opened_total" in scraped.content
        assert (
            client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", HTTP_HOST="web:8000").status_code == 401
        )


def test_production_without_token_only_serves_staff(staff_client):
    with override_settings(METRICS_TOKEN="", PRODUCTION=True):
        response = Client().get("/metrics")
        assert response.status_code == 403
        assert b"METRICS_TOKEN" in response.content
        assert staff_client.get("/metrics").status_code == 200


@pytest.mark.parametrize("authorization", ["Bearer wrong", "Basic c3RhZmY6cHc=", "Bearer "])
@pytest.mark.parametrize("token", ["s3cret-token", ""])
def test_a_staff_session_that_also_sends_authorization_can_read(staff_client, authorization, token):
    """E.g. a browser behind a proxy that adds basic auth: the session still counts, as promised."""
    with override_settings(METRICS_TOKEN=token, PRODUCTION=True):
        response = staff_client.get("/metrics", HTTP_AUTHORIZATION=authorization)
        assert response.status_code == 200
        assert b"slabuddy_tickets_opened_total" in response.content


def test_a_non_staff_session_with_a_wrong_token_is_refused(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("viewer", password="pw-for-tests"))
    with override_settings(METRICS_TOKEN="s3cret-token", PRODUCTION=True):
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
