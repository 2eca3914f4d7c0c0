"""The Slack event path through a real Celery worker and the real broker: the HTTP request only
stores and queues; the worker turns the event into an armed ticket and answers a mention."""

from __future__ import annotations

import time

import pytest

from base.fake_slack import BOT_USER_ID
from calendars.factories import EngineerFactory
from escalation.models import Escalation
from ops.testing.worker import wait_for
from slackbot.models import InboundState, SlackInbound
from tests.support.slack_requests import event_callback, post_event
from tickets.models import Ticket

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_events_are_processed_by_a_worker(client, slack_secrets, channel, fake_slack, celery_worker_factory):
    worker = celery_worker_factory(SLACK_BOT_TOKEN="xoxb-test", SLACK_BOT_USER_ID=BOT_USER_ID)
    EngineerFactory(slack_user_id="UENG1")
    ts = f"{time.time() - 30:.6f}"
    message = {"type": "message", "subtype": "bot_message", "bot_id": "BZENDESK", "channel": "CSUPPORT1",
               "text": "*Ticket ID*: 4711\n*Ticket priority*: High", "ts": ts}
    assert post_event(client, event_callback(message, event_id="EvW1")).status_code == 200
    assert post_event(client, event_callback(message, event_id="EvW1"), retry_num=1).status_code == 200
    ticket = wait_for(lambda: Ticket.objects.filter(slack_ts=ts).first(), timeout=30,
                      message=f"the worker to create the ticket\n{worker.log()}")
    assert Escalation.objects.filter(ticket=ticket).count() == 3
    before = Escalation.objects.get(ticket=ticket, level=1).due_at

    mention = {"type": "app_mention", "channel": "CSUPPORT1", "user": "UENG1", "ts": f"{time.time():.6f}",
               "thread_ts": ts, "text": f"<@{BOT_USER_ID}> snooze"}
    post_event(client, event_callback(mention, event_id="EvW2"))
    post_event(client, event_callback({**mention, "type": "message"}, event_id="EvW3"))
    wait_for(lambda: fake_slack.posts(thread_ts=ts), timeout=30, message="the snooze reply")
    wait_for(lambda: not SlackInbound.objects.exclude(state=InboundState.DONE).exists(), timeout=30,
             message="every delivery processed")
    assert (Escalation.objects.get(ticket=ticket, level=1).due_at - before).total_seconds() == 30 * 60
    assert len(fake_slack.posts(thread_ts=ts)) == 1
    assert SlackInbound.objects.count() == 3
