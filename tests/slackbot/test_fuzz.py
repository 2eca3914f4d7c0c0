"""Property: random bytes and random JSON at every inbound endpoint never cause a 500,
and a refused request writes nothing."""

from __future__ import annotations

import json
import os
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from base.models import OutboxMessage
from escalation.models import Escalation
from slackbot.dispatch import slack_inbound_process
from slackbot.models import SlackInbound
from tests.support.slack_requests import hook_headers, slack_headers
from tickets.models import Ticket, TicketEvent

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/slack/events", "/slack/interactions", "/hooks/helpdesk/zendesk", "/hooks/helpdesk/freshdesk"]
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=15,
)
# Shapes close to the real thing, so the fuzzing reaches past the first checks.
near_events = st.fixed_dictionaries({
    "type": st.sampled_from(["event_callback", "url_verification", "block_actions", "x"]),
    "event_id": st.text(max_size=12) | scalars,
    "challenge": scalars,
    "event": st.fixed_dictionaries({
        "type": st.sampled_from(["message", "app_mention", "reaction_added"]) | json_values,
        "channel": st.sampled_from(["CSUPPORT1", "COTHER"]) | scalars,
        "user": st.sampled_from(["U1", "UFAKEBOT01"]) | scalars,
        "text": st.sampled_from(["*Ticket ID*: 1", "<@UFAKEBOT01> help", "<@UFAKEBOT01>"]) | scalars,
        "ts": st.sampled_from(["1795800000.000100", "nan", "1e400", 1e300, 10**25]) | scalars,
        "thread_ts": scalars,
        "subtype": st.sampled_from(["bot_message", "message_changed", "thread_broadcast"]) | json_values,
        "bot_id": scalars,
        "attachments": json_values,
    }) | json_values,
    "actions": json_values,
    "container": json_values,
    "user": json_values,
    "ticket_id": scalars,
    "big": st.sampled_from([1e300, 10**30, -(10**20)]),
    "responded_at": scalars,
})
bodies = st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()) | near_events.map(
    lambda v: json.dumps(v).encode())


def counts():
    models = (SlackInbound, Ticket, TicketEvent, OutboxMessage, Escalation)
    return tuple(model.objects.count() for model in models)


def post(client, path, body, signed):
    if path == "/slack/interactions" and body[:1] in (b"{", b"["):
        body = urlencode({"payload": body.decode("utf-8", "replace")}).encode()
    headers = {}
    if signed and path.startswith("/slack/"):
        headers = slack_headers(body)
    elif signed:
        headers = hook_headers(body)
    content_type = "application/x-www-form-urlencoded" if "interactions" in path else "application/json"
    return client.post(path, data=body, content_type=content_type, **headers)


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), body=bodies)
def test_unsigned_requests_never_500_and_write_nothing(client, slack_secrets, channel, path, body):
    before = counts()
    response = post(client, path, body, signed=False)
    assert response.status_code in (401, 403)
    assert counts() == before


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), body=bodies)
def test_signed_junk_never_500_and_4xx_writes_nothing(client, slack_secrets, channel, fake_slack, path, body):
    before = counts()
    response = post(client, path, body, signed=True)
    assert response.status_code < 500
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        assert counts() == before
        return
    if path.startswith("/hooks/"):
        assert counts() == before  # no ticket carries a fuzzed helpdesk id
    # Whatever was accepted and stored must also process without crashing.
    for inbound in SlackInbound.objects.filter(state="pending"):
        slack_inbound_process(inbound_id=inbound.pk)
