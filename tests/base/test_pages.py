"""Pages outside Slack: each provider's request against a local stand-in, one error model,
recorded before sent, never two incidents for one key, never a credential in a row or a log."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from base import page_credentials
from base.fake_pager import ONCALL, PAGERDUTY, WEBHOOK
from base.models import OutboxMessage, OutboxPurpose, OutboxStatus
from base.outbox import DeliveryStatus, outbox_send
from base.pages import (
    RESOLVE,
    TRIGGER,
    WEBHOOK_SIGNATURE_HEADER,
    PageEvent,
    page_record,
    page_send,
    page_skip,
    webhook_signature,
)
from tests.support.pager import ONCALL_TOKEN, ROUTING_KEY, SECRETS, WEBHOOK_PAGE_SECRET, stored_text

pytestmark = pytest.mark.django_db

EVENT = PageEvent(
    action=TRIGGER, dedup_key="slabuddy:CSUPPORT1:1790000000.000100:level:3",
    title="Enterprise urgent-priority ticket #4711 unanswered for 35 min",
    message="Slack thread: https://acme.slack.com/archives/CSUPPORT1/p1790000000000100",
    severity="critical", helpdesk_url="https://acme.zendesk.com/agent/tickets/4711",
    thread_url="https://acme.slack.com/archives/CSUPPORT1/p1790000000000100",
    admin_url="http://sla.example.com/admin/tickets/ticket/1/change/",
    details={"tier": "Enterprise", "priority": "urgent", "level": 3, "channel": "support-acme"},
)


def record(provider=PAGERDUTY, *, key="page:ticket:1:level:3", event=EVENT, credential=""):
    name = page_credentials.credential_name_for(provider=provider, credential=credential)
    return page_record(key=key, provider=provider, credential=name, event=event,
                       channel="CSUPPORT1", thread_ts="1790000000.000100")


def test_a_pagerduty_trigger_is_one_events_api_v2_event_with_the_dedup_key(fake_pager):
    delivery = page_send(record())
    assert delivery.status == DeliveryStatus.SENT and delivery.reference == EVENT.dedup_key
    [request] = fake_pager.requests(PAGERDUTY)
    body = request.body
    assert (body["routing_key"], body["event_action"], body["dedup_key"]) == (ROUTING_KEY, "trigger",
                                                                                EVENT.dedup_key)
    assert body["payload"]["summary"] == EVENT.title and body["payload"]["severity"] == "critical"
    assert {link["href"] for link in body["links"]} == {EVENT.helpdesk_url, EVENT.thread_url}
    [incident] = fake_pager.incidents(PAGERDUTY)
    assert (incident.key, incident.status) == (EVENT.dedup_key, "triggered")
    row = OutboxMessage.objects.get()
    assert (row.purpose, row.status, row.attempts) == (OutboxPurpose.PAGE, OutboxStatus.SENT, 1)
    assert row.payload["credential"] == "PAGERDUTY_ROUTING_KEY"  # its name, never its value


def test_a_resolve_closes_the_incident_of_the_same_dedup_key(fake_pager):
    page_send(record())
    resolve = PageEvent(**{**EVENT.as_json(), "action": RESOLVE})
    assert page_send(record(key="page:ticket:1:level:3:resolve", event=resolve)).status == DeliveryStatus.SENT
    assert fake_pager.requests(PAGERDUTY)[-1].body == {
        "routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": EVENT.dedup_key}
    [incident] = fake_pager.incidents(PAGERDUTY)
    assert incident.status == "resolved"


def test_oncall_gets_its_formatted_webhook_alerting_then_ok(fake_pager):
    page_send(record(ONCALL))
    page_send(record(ONCALL, key="page:ticket:1:level:3:resolve",
                     event=PageEvent(**{**EVENT.as_json(), "action": RESOLVE})))
    trigger, resolve = fake_pager.requests(ONCALL)
    assert trigger.path == f"/integrations/v1/formatted_webhook/{ONCALL_TOKEN}/"
    assert trigger.body == {
        "alert_uid": EVENT.dedup_key, "title": EVENT.title, "state": "alerting",
        "link_to_upstream_details": EVENT.helpdesk_url, "message": EVENT.message,
    }
    assert EVENT.thread_url in trigger.body["message"]
    assert resolve.body["state"] == "ok" and resolve.body["alert_uid"] == EVENT.dedup_key
    [group] = fake_pager.incidents(ONCALL)
    assert group.status == "resolved"


def test_a_webhook_page_is_signed_over_its_timestamp_and_body(fake_pager):
    assert page_send(record(WEBHOOK)).status == DeliveryStatus.SENT  # the stand-in checks the signature
    [request] = fake_pager.requests(WEBHOOK)
    assert request.status == 200
    stamp = request.headers["x-slabuddy-timestamp"]
    raw = json.dumps(request.body, sort_keys=True).encode()
    assert request.headers[WEBHOOK_SIGNATURE_HEADER.lower()] == webhook_signature(
        secret=WEBHOOK_PAGE_SECRET, timestamp=stamp, body=raw)
    assert request.headers["x-slabuddy-idempotency-key"] == "page:ticket:1:level:3"
    assert (request.body["event"], request.body["dedup_key"]) == ("trigger", EVENT.dedup_key)


def test_a_webhook_signed_with_the_wrong_secret_is_refused_for_good(fake_pager, settings):
    settings.PAGE_CREDENTIALS = {**settings.PAGE_CREDENTIALS, "PAGE_WEBHOOK_SECRET": "not-the-secret"}
    delivery = page_send(record(WEBHOOK))
    assert delivery.status == DeliveryStatus.PERMANENT and "HTTP 401" in delivery.error
    assert OutboxMessage.objects.get().status == OutboxStatus.FAILED


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_may_have_paged_so_the_retry_sends_the_same_key(fake_pager, status):
    fake_pager.fail_next(PAGERDUTY, status=status)
    first = page_send(record())
    assert first.status == DeliveryStatus.AMBIGUOUS
    assert OutboxMessage.objects.get().status == OutboxStatus.SENDING  # may have landed
    assert page_send(record()).status == DeliveryStatus.SENT
    keys = {r.body["dedup_key"] for r in fake_pager.requests(PAGERDUTY)}
    assert keys == {EVENT.dedup_key} and len(fake_pager.requests(PAGERDUTY)) == 2
    assert len(fake_pager.incidents(PAGERDUTY)) == 1


def test_a_timeout_after_pagerduty_accepted_makes_one_incident_not_two(fake_pager, settings):
    settings.PAGE_TIMEOUT_SECONDS = 0.5
    fake_pager.accept_then_stall(PAGERDUTY, seconds=1.5)
    first = page_send(record())
    assert first.status == DeliveryStatus.AMBIGUOUS and first.error.startswith("timeout")
    assert len(fake_pager.incidents(PAGERDUTY)) == 1  # PagerDuty had accepted it
    again = page_send(record())
    assert again.status == DeliveryStatus.SENT
    [incident] = fake_pager.incidents(PAGERDUTY)
    assert (incident.events, incident.status) == (2, "triggered")  # the retry joined the incident


def test_a_rate_limit_says_when_to_come_back(fake_pager):
    fake_pager.fail_next(PAGERDUTY, status=429, retry_after=17)
    delivery = page_send(record())
    assert (delivery.status, delivery.retry_after) == (DeliveryStatus.RATE_LIMITED, 17)
    assert OutboxMessage.objects.get().status == OutboxStatus.RETRY  # nothing happened
    assert fake_pager.incidents() == []


def test_a_refused_event_fails_for_good_with_pagerdutys_reason(fake_pager):
    bad = PageEvent(**{**EVENT.as_json(), "severity": "apocalyptic"})
    delivery = page_send(record(event=bad))
    assert delivery.status == DeliveryStatus.PERMANENT
    assert "payload.severity" in delivery.error and "HTTP 400" in delivery.error
    assert page_send(record(event=bad)).status == DeliveryStatus.PERMANENT  # not tried again
    assert len(fake_pager.requests(PAGERDUTY)) == 1


def test_a_missing_credential_fails_naming_the_setting_without_calling_anyone(fake_pager):
    delivery = page_send(record(credential="PAGERDUTY_ROUTING_KEY_NOWHERE"))
    assert delivery.status == DeliveryStatus.PERMANENT
    assert delivery.error == "PAGERDUTY_ROUTING_KEY_NOWHERE is not set on this server"
    assert fake_pager.requests() == []


def test_a_credential_outside_the_pager_families_is_never_read(fake_pager, settings):
    settings.PAGE_CREDENTIALS = {**settings.PAGE_CREDENTIALS, "SECRET_KEY": "do-not-send-me"}
    delivery = page_send(record(credential="SECRET_KEY"))
    assert delivery.status == DeliveryStatus.PERMANENT and "not a pagerduty credential" in delivery.error
    assert fake_pager.requests() == []


def test_a_sent_page_is_never_sent_again(fake_pager):
    page_send(record())
    again = page_send(record())
    assert again.status == DeliveryStatus.SENT and again.recovered
    assert len(fake_pager.requests(PAGERDUTY)) == 1


def test_a_page_held_by_a_live_sender_is_left_alone(fake_pager):
    row = record()
    OutboxMessage.objects.filter(pk=row.pk).update(lease_until=timezone.now() + timedelta(minutes=1))
    assert page_send(row).status == DeliveryStatus.IN_FLIGHT
    assert page_send(row, held=True).status == DeliveryStatus.SENT  # the engine's claim covers it
    assert len(fake_pager.requests(PAGERDUTY)) == 1


def test_a_page_that_never_left_can_be_given_up_but_not_one_that_may_have(fake_pager):
    unsent = record()
    assert page_skip(unsent, reason="answered first") and unsent.status == OutboxStatus.FAILED
    fake_pager.fail_next(PAGERDUTY, status=502)
    maybe = record(key="page:ticket:2:level:3")
    page_send(maybe)
    assert not page_skip(maybe, reason="answered first")


def test_the_slack_sender_refuses_a_page(fake_pager, fake_slack):
    with pytest.raises(ValueError, match="is a page"):
        outbox_send(record())
    assert fake_slack.calls("chat.postMessage") == []


def test_no_credential_ever_reaches_a_row_an_error_or_a_log(fake_pager, settings, caplog):
    caplog.set_level(logging.DEBUG)
    settings.PAGE_TIMEOUT_SECONDS = 0.5
    fake_pager.accept_then_stall(ONCALL, seconds=1.5)
    fake_pager.fail_next(PAGERDUTY, status=500)
    for provider, key in ((PAGERDUTY, "a"), (PAGERDUTY, "a"), (ONCALL, "b"), (ONCALL, "b"), (WEBHOOK, "c")):
        page_send(record(provider, key=f"page:{key}"))
    settings.PAGE_CREDENTIALS = {**settings.PAGE_CREDENTIALS, "PAGE_WEBHOOK_SECRET": "wrong"}
    page_send(record(WEBHOOK, key="page:d"))
    assert len(fake_pager.requests()) == 6
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in SECRETS:
        assert secret not in logged
        assert secret not in stored_text()


def test_bad_credential_settings_name_the_setting_never_the_value():
    problems = page_credentials.page_credentials_problems({
        "PAGE_WEBHOOK_URL_OPS": "https://hooks.example.com/x?token=s3cr3t",
        "ONCALL_WEBHOOK_URL": "oncall.example.com/integrations/v1/formatted_webhook/t0k3n/",
    })
    assert problems == [
        "ONCALL_WEBHOOK_URL must be an http:// or https:// URL.",
        "PAGE_WEBHOOK_URL_OPS is set but PAGE_WEBHOOK_SECRET_OPS is not: webhook pages must be signed.",
    ]
    assert page_credentials.credential_names_in(
        ["PAGERDUTY_ROUTING_KEY_FILE", "PAGERDUTY_ROUTING_KEY_EU", "SECRET_KEY", "PAGE_WEBHOOK_URLX"]
    ) == ["PAGERDUTY_ROUTING_KEY", "PAGERDUTY_ROUTING_KEY_EU"]
