"""Thin Celery tasks: load by id, call a service, reschedule on Slack's say-so (never sleep)."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from tickets.models import InboundState, SlackInbound, WatchedChannel

logger = logging.getLogger("slabuddy.tasks")

INBOUND_SWEEP_AFTER = timedelta(minutes=1)
INBOUND_KEEP = timedelta(days=14)


def _publish(task, *args, **kwargs) -> None:
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except Exception:
        # Broker down: the row is stored and pending; the inbound sweep re-queues it.
        logger.exception("enqueue_failed task=%s", task.name)


def slack_inbound_enqueue(*, inbound_id: int) -> None:
    """Queue processing once the row is committed (Django's on_commit; outside a
    transaction, at once). A broker failure never turns into an error for Slack."""
    transaction.on_commit(partial(_publish, slack_inbound_process, inbound_id))


@shared_task(bind=True, max_retries=10, acks_late=True)
def slack_inbound_process(self, inbound_id: int) -> str:
    from tickets.replies import SlackRetryLater
    from tickets.slack_events import slack_inbound_process as process

    try:
        return process(inbound_id=inbound_id)
    except SlackRetryLater as exc:
        raise self.retry(countdown=exc.retry_after, exc=exc) from exc


@shared_task
def slack_inbound_sweep() -> int:
    """Re-queue deliveries still pending a minute after they arrived; forget old ones."""
    now = timezone.now()
    ids = list(
        SlackInbound.objects.filter(
            state=InboundState.PENDING, received_at__lt=now - INBOUND_SWEEP_AFTER
        ).values_list("pk", flat=True)[:500]
    )
    for inbound_id in ids:
        _publish(slack_inbound_process, inbound_id)
    SlackInbound.objects.filter(received_at__lt=now - INBOUND_KEEP).exclude(
        state=InboundState.PENDING
    ).delete()
    return len(ids)


@shared_task
def channel_scan_all() -> int:
    ids = list(WatchedChannel.objects.filter(active=True).values_list("pk", flat=True))
    for channel_id in ids:
        _publish(channel_scan, channel_id)
    return len(ids)


@shared_task(bind=True, acks_late=True)
def channel_scan(self, channel_id: int, cursor: str = "", oldest: str = "", newest: str = "") -> str:
    from tickets.scan import channel_scan as scan

    channel = WatchedChannel.objects.filter(pk=channel_id, active=True).first()
    if channel is None:
        return "no such channel"
    result = scan(channel=channel, now=timezone.now(), cursor=cursor, oldest=oldest, newest=newest)
    if not result.done:
        # Rate limited (or a very long backlog): resume at the same page later.
        self.apply_async(
            args=(channel_id,),
            kwargs={"cursor": result.cursor, "oldest": result.oldest, "newest": result.newest},
            countdown=result.retry_after,
        )
    return f"pages={result.pages} created={result.created} done={result.done}"


@shared_task
def helpdesk_poll() -> str:
    from tickets.responses import helpdesk_poll as poll

    result = poll(now=timezone.now())
    return f"checked={result.checked} responded={result.responded} unknown={result.unknown}"


@shared_task
def slack_threads_poll() -> str:
    from tickets.responses import slack_threads_poll as poll

    result = poll(now=timezone.now())
    return f"checked={result.checked} responded={result.responded} paused={result.unknown}"
