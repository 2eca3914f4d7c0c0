"""Thin Celery tasks: load by id, call a service, reschedule on Slack's say-so (never sleep)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from base.tasks_by_name import task_send
from slackbot.dispatch import slack_inbound_process as process
from slackbot.drain import slack_inbound_drain as drain
from slackbot.drain import slack_inbound_sweep as sweep
from slackbot.inbound import DRAIN_TASK, PROCESS_TASK, slack_inbound_drain_queue
from slackbot.replies import SlackRetryLater
from slackbot.responses import helpdesk_poll as poll_helpdesks
from slackbot.responses import slack_threads_poll as poll_threads
from slackbot.scan import channel_scan_run as scan_run
from tickets.models import WatchedChannel

logger = logging.getLogger("slabuddy.tasks")

SCAN_TASK = "slackbot.tasks.channel_scan"


@shared_task(name=DRAIN_TASK, acks_late=True)
def slack_inbound_drain() -> str:
    """Process stored deliveries in batches for a second, then hand over to the next drain."""
    result = drain()
    if result.more:
        slack_inbound_drain_queue()
    return f"processed={result.processed} failed={result.failed} batches={result.batches} more={result.more}"


@shared_task(name=PROCESS_TASK, bind=True, max_retries=10, acks_late=True)
def slack_inbound_process(self, inbound_id: int) -> str:
    """One delivery on its own (deliveries queued this way before drains existed)."""
    try:
        return process(inbound_id=inbound_id)
    except SlackRetryLater as exc:
        raise self.retry(countdown=exc.retry_after, exc=exc) from exc


@shared_task(name="slackbot.tasks.slack_inbound_sweep")
def slack_inbound_sweep() -> bool:
    """Beat: queue a drain for deliveries left waiting (their drain was lost); prune old ones."""
    return sweep()


@shared_task(name="slackbot.tasks.channel_scan_all")
def channel_scan_all() -> int:
    ids = list(WatchedChannel.objects.filter(active=True).values_list("pk", flat=True))
    for channel_id in ids:
        task_send(SCAN_TASK, args=(channel_id,), why_safe="the next scan reads the channel")
    return len(ids)


@shared_task(name=SCAN_TASK, bind=True, acks_late=True)
def channel_scan(self, channel_id: int, cursor: str = "", oldest: str = "", newest: str = "") -> str:
    # cursor/oldest/newest: accepted from tasks queued by an older version; the place an unfinished
    # scan stopped is now stored in ChannelScanProgress and the next periodic run carries on there.
    channel = WatchedChannel.objects.filter(pk=channel_id, active=True).first()
    if channel is None:
        return "no such channel"
    result = scan_run(channel=channel, now=timezone.now())
    return f"pages={result.pages} created={result.created} done={result.done}"


@shared_task(name="slackbot.tasks.helpdesk_poll")
def helpdesk_poll() -> str:
    result = poll_helpdesks(now=timezone.now())
    return f"checked={result.checked} responded={result.responded} unknown={result.unknown}"


@shared_task(name="slackbot.tasks.slack_threads_poll")
def slack_threads_poll() -> str:
    result = poll_threads(now=timezone.now())
    return f"checked={result.checked} responded={result.responded} paused={result.unknown}"
