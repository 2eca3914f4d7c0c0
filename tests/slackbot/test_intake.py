"""The intake service (one message, one ticket, however many paths and workers see it) and signing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from base.fake_slack import BOT_USER_ID
from escalation.models import Escalation
from slackbot.intake import ticket_intake_message
from slackbot.models import InboundState, SlackInbound
from slackbot.signing import slack_signature_verify, webhook_signature, webhook_signature_verify
from tickets.models import Ticket, TicketEvent


def helpdesk_message(ts: str) -> dict:
    return {"type": "message", "subtype": "bot_message", "bot_id": "BZENDESK", "ts": ts,
            "text": "*Ticket ID*: 4711\n*Ticket priority*: Urgent\n*Type*: Incident"}


@pytest.mark.django_db
def test_intake_creates_arms_and_records_once(channel, fake_slack):
    now = datetime.now(UTC)
    message = helpdesk_message(f"{now.timestamp() - 60:.6f}")
    first = ticket_intake_message(channel=channel, message=message, source="events", now=now,
                                  bot_user_id=BOT_USER_ID)
    second = ticket_intake_message(channel=channel, message=message, source="scan", now=now,
                                   bot_user_id=BOT_USER_ID)
    assert first.created and not second.created and first.ticket.pk == second.ticket.pk
    assert first.ticket.priority == "urgent"
    assert Escalation.objects.filter(ticket=first.ticket).count() == 3
    [opened] = TicketEvent.objects.filter(kind="opened")
    assert opened.at == first.ticket.opened_at and opened.actor == "BZENDESK"


@pytest.mark.django_db
def test_not_a_ticket_writes_nothing(channel):
    now = datetime.now(UTC)
    result = ticket_intake_message(channel=channel, message={**helpdesk_message("1.0")}, source="scan",
                                   now=now, bot_user_id=BOT_USER_ID)
    assert result.ticket is None and result.reason == "older than look-back"
    assert Ticket.objects.count() == 0 and TicketEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_sightings_make_one_ticket(channel, fake_slack):
    """Events and scans on several workers racing for the same message."""
    now = datetime.now(UTC)
    message = helpdesk_message(f"{now.timestamp() - 30:.6f}")
    barrier = threading.Barrier(6)
    results, errors = [], []

    def sight(source):
        try:
            barrier.wait()
            results.append(ticket_intake_message(channel=channel, message=message, source=source, now=now,
                                                 bot_user_id=BOT_USER_ID))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sight, args=("events" if i % 2 else "scan",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(r.created for r in results) == 1
    assert len({r.ticket.pk for r in results}) == 1
    assert Ticket.objects.count() == 1
    assert TicketEvent.objects.filter(kind="opened").count() == 1
    assert Escalation.objects.count() == 3


@pytest.mark.django_db
def test_processing_gives_up_after_repeated_errors(channel, monkeypatch):
    import slackbot.dispatch as events

    inbound = SlackInbound.objects.create(key="EvBad", kind="event", payload={"event": {}},
                                          received_at=datetime.now(UTC))

    def boom(**kwargs):
        raise ValueError("bug")

    monkeypatch.setattr(events, "slack_event_handle", boom)
    for _ in range(events.MAX_ATTEMPTS):
        with pytest.raises(ValueError):
            events.slack_inbound_process(inbound_id=inbound.pk)
    inbound.refresh_from_db()
    assert inbound.state == InboundState.FAILED and "bug" in inbound.last_error
    assert inbound.attempts == events.MAX_ATTEMPTS
    assert events.slack_inbound_process(inbound_id=inbound.pk) == "already handled"


# -- signatures, with Slack's documented example ----------------------------------------------

SLACK_DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_DOC_TIMESTAMP = "1531420618"
SLACK_DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def verify(**overrides):
    args = {"secret": SLACK_DOC_SECRET, "timestamp": SLACK_DOC_TIMESTAMP, "signature": SLACK_DOC_SIGNATURE,
            "body": SLACK_DOC_BODY, "max_age_seconds": 300, "now": 1531420618 + 10}
    return slack_signature_verify(**{**args, **overrides})


def test_slack_documented_example_verifies():
    assert verify().ok


@pytest.mark.parametrize(("overrides", "status"), [
    ({"signature": SLACK_DOC_SIGNATURE[:-1] + "0"}, 403),
    ({"signature": "v1=" + SLACK_DOC_SIGNATURE[3:]}, 403),
    ({"signature": "v0=é"}, 403),
    ({"body": SLACK_DOC_BODY + b" "}, 403),
    ({"secret": "another"}, 403),
    ({"now": 1531420618 + 301}, 403),
    ({"now": 1531420618 - 301}, 403),
    ({"timestamp": None}, 401),
    ({"signature": ""}, 401),
    ({"timestamp": "12abc"}, 401),
    ({"secret": None}, 403),
])
def test_slack_signature_failures(overrides, status):
    check = verify(**overrides)
    assert not check.ok and check.status == status


def test_webhook_signature_round_trip():
    body = b'{"ticket_id": "1"}'
    good = webhook_signature(secret="s", body=body, timestamp="1700000000")

    def check(**kwargs):
        args = {"secret": "s", "body": body, "signature": good, "timestamp": "1700000000",
                "max_age_seconds": 300, "now": 1700000100, **kwargs}
        return webhook_signature_verify(**args)

    assert check().ok
    assert not check(body=body + b" ").ok
    assert check(signature=None).status == 401
    assert check(now=1700000301).status == 403
    legacy = webhook_signature(secret="s", body=body)
    assert check(signature=legacy, timestamp=None).status == 401
    assert check(signature=legacy, timestamp=None, allow_legacy=True).ok


def test_signature_check_takes_constant_time_compare(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    verify()
    assert calls


@pytest.mark.django_db
def test_task_reschedules_on_slack_rate_limit(monkeypatch):
    import slackbot.tasks as tasks
    from slackbot.replies import SlackRetryLater
    from slackbot.tasks import slack_inbound_process

    def limited(**kwargs):
        raise SlackRetryLater("rate limited", 17)

    monkeypatch.setattr(tasks, "process", limited)
    asked = {}

    def retry(**kwargs):
        asked.update(kwargs)
        return RuntimeError("retry")

    monkeypatch.setattr(slack_inbound_process, "retry", retry)
    with pytest.raises(RuntimeError):
        slack_inbound_process(1)
    assert asked["countdown"] == 17
