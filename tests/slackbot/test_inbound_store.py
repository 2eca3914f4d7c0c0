"""slack_inbound_store outside a transaction, as on the HTTP path: one INSERT built once per process,
the same row as the ORM's, a duplicate stored once, and a connection that died since the last
request replaced without the SELECT 1 health check before every request."""

from __future__ import annotations

import pytest
from django.db import connection, connections
from django.forms.models import model_to_dict
from django.utils import timezone

from slackbot.inbound import slack_inbound_store
from slackbot.models import InboundKind, SlackInbound
from tests.support.slack_requests import event_callback, helpdesk_message

pytestmark = pytest.mark.django_db(transaction=True)
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                     reason="SQLite opens a new connection for each request")


def _new_request() -> None:
    """What Django does when a request starts: a reused connection is to be checked again."""
    connection.close_if_unusable_or_obsolete()


def _row(inbound: SlackInbound) -> dict:
    return {k: v for k, v in model_to_dict(inbound).items() if k not in ("id", "key")}


def test_the_row_is_the_one_the_orm_stores(slack_secrets):
    payload = event_callback(helpdesk_message(), event_id="EvRaw")
    now = timezone.now()
    stored, created = slack_inbound_store(key="EvRaw", kind=InboundKind.EVENT, payload=payload, retry_num=2,
                                          now=now)
    orm = SlackInbound.objects.create(key="EvOrm", kind=InboundKind.EVENT, payload=payload, retry_num=2,
                                      received_at=now)
    assert created and stored.pk is not None and not stored._state.adding
    reloaded = SlackInbound.objects.get(pk=stored.pk)
    assert _row(reloaded) == _row(SlackInbound.objects.get(pk=orm.pk)) == _row(stored)
    assert reloaded.received_at == now and reloaded.payload == payload


def test_a_duplicate_is_stored_once(slack_secrets):
    payload = event_callback(helpdesk_message(), event_id="EvDup")
    first = slack_inbound_store(key="EvDup", kind=InboundKind.EVENT, payload=payload)
    _new_request()
    second = slack_inbound_store(key="EvDup", kind=InboundKind.EVENT, payload=payload, retry_num=1)
    assert (first[1], second[1]) == (True, False) and first[0].pk == second[0].pk
    assert SlackInbound.objects.count() == 1


@postgresql_only
def test_no_health_check_round_trip_before_the_insert(slack_secrets, monkeypatch):
    slack_inbound_store(key="EvWarm", kind=InboundKind.EVENT, payload={"n": 1})  # the connection is open
    wrapper = connections["default"]  # not the proxy, which monkeypatch cannot restore
    monkeypatch.setattr(wrapper, "health_check_enabled", True)
    _new_request()
    checks = []
    monkeypatch.setattr(type(wrapper), "is_usable", lambda self: checks.append(1) or True)
    slack_inbound_store(key="EvNoCheck", kind=InboundKind.EVENT, payload={"n": 2})
    assert checks == [] and SlackInbound.objects.filter(key="EvNoCheck").exists()


@postgresql_only
def test_a_connection_that_died_since_the_last_request_is_replaced(slack_secrets):
    slack_inbound_store(key="EvBefore", kind=InboundKind.EVENT, payload={"n": 1})
    assert connection.health_check_enabled
    pid = connection.connection.info.backend_pid
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:  # as a PostgreSQL restart does
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    _new_request()
    inbound, created = slack_inbound_store(key="EvAfter", kind=InboundKind.EVENT, payload={"n": 2})
    assert created and connection.connection.info.backend_pid != pid
    assert set(SlackInbound.objects.values_list("key", flat=True)) == {"EvBefore", "EvAfter"}
