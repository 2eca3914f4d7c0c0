"""The channel scan: backfill what the Events API missed (downtime, lost deliveries).

Reads ``conversations.history`` from the newest message already seen
(``oldest``), through every page, into the same intake service as events.
Slack returns history newest-first, so ``last_seen_ts`` only moves once every
page has been read: a scan interrupted half-way (rate limit, crash) never
skips the older half.

Each periodic run (``channel_scan_run``) reads at most ``MAX_PAGES_PER_RUN``
pages of a channel and stores where it stopped (``ChannelScanProgress``); the
next run carries on from there, after Slack's Retry-After when rate limited.
Nothing re-queues itself. A scan that has read ``MAX_PAGES_PER_SCAN`` pages and
Slack still answers ``has_more`` (far more than any look-back window holds)
gives up, logs it, and moves ``last_seen_ts`` to the newest message it read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError

from base.slack_api import SlackError, bot_user_id, slack_call, slack_client
from slackbot.intake import ticket_intake_message
from slackbot.models import ChannelScanProgress
from slackbot.parsing import datetime_to_ts, ts_to_datetime
from slackbot.replies import SlackRetryLater, slack_error_raise
from tickets.models import WatchedChannel

logger = logging.getLogger("slabuddy.scan")

PAGE_SIZE = 200
MAX_PAGES_PER_RUN = 50  # 10,000 messages per channel per run; the next run carries on
MAX_PAGES_PER_SCAN = 250  # 50,000 messages: beyond any look-back window; Slack is looping


@dataclass(frozen=True)
class ScanResult:
    channel_id: int
    done: bool
    pages: int
    messages: int
    created: int
    oldest: str = ""
    cursor: str = ""
    newest: str = ""
    retry_after: int = 0
    error: str = ""


def _later(a: str, b: str) -> str:
    if not a:
        return b
    if not b:
        return a
    return a if float(a) >= float(b) else b


def channel_scan(
    *,
    channel: WatchedChannel,
    now: datetime,
    cursor: str = "",
    oldest: str = "",
    newest: str = "",
    max_pages: int | None = None,
) -> ScanResult:
    """Scan one channel, or resume a scan at ``cursor`` (with the same ``oldest``).

    Reads at most ``max_pages`` (default ``MAX_PAGES_PER_RUN``) pages; a result
    that is not ``done`` carries the cursor to resume at.
    """
    max_pages = MAX_PAGES_PER_RUN if max_pages is None else max_pages
    if not cursor:
        window_start = datetime_to_ts(now - timedelta(minutes=channel.lookback_minutes))
        # A first scan (or one after a long outage) looks back only the window:
        # anything older could not be a ticket anyway.
        oldest = _later(channel.last_seen_ts, window_start)
        newest = ""
    bot = bot_user_id()
    client = slack_client()
    pages = messages = created = 0
    while True:
        try:
            response = slack_call(
                client.conversations_history, channel=channel.slack_channel_id, oldest=oldest,
                limit=PAGE_SIZE, cursor=cursor or None, inclusive=False,
            )
        except SlackError as exc:
            try:
                slack_error_raise(exc, what="conversations.history")
            except SlackRetryLater as later:
                logger.warning("scan_retry_later channel=%s after=%ss reason=%s",
                               channel.slack_channel_id, later.retry_after, later)
                return ScanResult(channel.pk, False, pages, messages, created, oldest, cursor, newest,
                                  retry_after=later.retry_after, error=str(later))
            return ScanResult(channel.pk, True, pages, messages, created, oldest, cursor, newest,
                              error=f"permanent: {exc}")
        pages += 1
        for message in response.get("messages") or []:
            messages += 1
            ts = str(message.get("ts") or "")
            if ts_to_datetime(ts) is not None:
                newest = _later(newest, ts)
            result = ticket_intake_message(
                channel=channel, message=message, source="scan", now=now, bot_user_id=bot
            )
            created += int(result.created)
        cursor = ((response.get("response_metadata") or {}).get("next_cursor") or "")
        if not (response.get("has_more") and cursor):
            break
        if pages >= max_pages:
            return ScanResult(channel.pk, False, pages, messages, created, oldest, cursor, newest)
    _last_seen_forward(channel, newest)
    logger.info("scan_done channel=%s pages=%s messages=%s created=%s",
                channel.slack_channel_id, pages, messages, created)
    return ScanResult(channel.pk, True, pages, messages, created, oldest, "", newest)


def _last_seen_forward(channel: WatchedChannel, newest: str) -> None:
    if newest and _later(newest, channel.last_seen_ts) != channel.last_seen_ts:
        # Only forward: a slower concurrent scan must not move it back.
        current = WatchedChannel.objects.filter(pk=channel.pk).values_list("last_seen_ts", flat=True).first()
        if current is not None and _later(newest, current) == newest and newest != current:
            WatchedChannel.objects.filter(pk=channel.pk, last_seen_ts=current).update(last_seen_ts=newest)


def channel_scan_run(*, channel: WatchedChannel, now: datetime) -> ScanResult:
    """One periodic run for one channel: carry on an unfinished scan, or start one; store where it stops."""
    progress = ChannelScanProgress.objects.filter(channel=channel).first()
    if progress is not None and progress.not_before and progress.not_before > now:
        return ScanResult(channel.pk, False, 0, 0, 0, progress.oldest, progress.cursor, progress.newest,
                          retry_after=int((progress.not_before - now).total_seconds()) + 1)
    if progress is None:
        result = channel_scan(channel=channel, now=now)
        read_before = 0
    else:
        result = channel_scan(channel=channel, now=now, cursor=progress.cursor, oldest=progress.oldest,
                              newest=progress.newest)
        read_before = progress.pages
    if result.done:
        ChannelScanProgress.objects.filter(channel=channel).delete()
        return result
    pages = read_before + result.pages
    if pages >= MAX_PAGES_PER_SCAN:
        # Slack keeps answering has_more: stop here rather than read (and re-read) without end.
        logger.warning("scan_gave_up channel=%s pages=%s: Slack still answers has_more; the next run "
                       "starts from the newest message read", channel.slack_channel_id, pages)
        ChannelScanProgress.objects.filter(channel=channel).delete()
        _last_seen_forward(channel, result.newest)
        return result
    not_before = now + timedelta(seconds=result.retry_after) if result.retry_after else None
    values = {"cursor": result.cursor, "oldest": result.oldest, "newest": result.newest, "pages": pages,
              "runs": (progress.runs if progress else 0) + 1, "not_before": not_before, "updated_at": now}
    if progress is None:
        try:
            ChannelScanProgress.objects.create(channel=channel, started_at=now, **values)
        except IntegrityError:  # a concurrent run stored its place first; either place is fine
            pass
    else:
        ChannelScanProgress.objects.filter(pk=progress.pk).update(**values)
    logger.info("scan_paused channel=%s pages=%s retry_after=%s", channel.slack_channel_id, pages,
                result.retry_after)
    return result
