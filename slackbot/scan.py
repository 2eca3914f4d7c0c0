"""The channel scan: backfill what the Events API missed (downtime, lost deliveries).

Reads ``conversations.history`` from the newest message already seen
(``oldest``), through every page, into the same intake service as events.
Slack returns history newest-first, so ``last_seen_ts`` only moves once every
page has been read: a scan interrupted half-way (rate limit, crash) never
skips the older half. A rate limit returns ``retry_after`` and the position
(cursor) so the task resumes later instead of sleeping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from base.slack_api import SlackError, bot_user_id, slack_call, slack_client
from slackbot.intake import ticket_intake_message
from slackbot.parsing import datetime_to_ts, ts_to_datetime
from slackbot.replies import SlackRetryLater, slack_error_raise
from tickets.models import WatchedChannel

logger = logging.getLogger("slabuddy.scan")

PAGE_SIZE = 200
MAX_PAGES_PER_RUN = 50  # 10,000 messages; the next run (or a resume) carries on


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
) -> ScanResult:
    """Scan one channel, or resume a scan at ``cursor`` (with the same ``oldest``)."""
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
        if pages >= MAX_PAGES_PER_RUN:
            return ScanResult(channel.pk, False, pages, messages, created, oldest, cursor, newest,
                              retry_after=1)
    if newest and _later(newest, channel.last_seen_ts) != channel.last_seen_ts:
        # Only forward: a slower concurrent scan must not move it back.
        current = WatchedChannel.objects.filter(pk=channel.pk).values_list("last_seen_ts", flat=True).first()
        if current is not None and _later(newest, current) == newest and newest != current:
            WatchedChannel.objects.filter(pk=channel.pk, last_seen_ts=current).update(last_seen_ts=newest)
    logger.info("scan_done channel=%s pages=%s messages=%s created=%s",
                channel.slack_channel_id, pages, messages, created)
    return ScanResult(channel.pk, True, pages, messages, created, oldest, "", newest)
