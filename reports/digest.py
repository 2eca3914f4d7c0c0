"""The weekly SLA digest: every Monday from 09:00 (the digest channel's time zone), last week's
first-response attainment per tier, the five worst breaches with links to their threads, and pages
per engineer, posted in each enabled digest channel through the outbox.

Once per week per channel: the ``DigestSent`` row (unique per channel and week) is written in the same
transaction as the outbox row, so a second beat, a second worker or a rerun finds it and writes
nothing; the outbox's claim and lease keep two senders of the message apart. A digest whose send did
not finish (Slack down, rate limited) is sent by the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import IntegrityError, transaction

from base.formatting import duration_text
from base.models import OutboxMessage, OutboxPurpose, OutboxStatus
from base.outbox import outbox_record, outbox_send
from base.slack_links import slack_message_url, slack_workspace_url
from reports.figures import ReportFilters, report_build, worst_breaches
from reports.models import DigestChannel, DigestSent

logger = logging.getLogger("slabuddy.reports")

DIGEST_WEEKDAY = 0  # Monday
DIGEST_TIME = time(9, 0)
WORST = 5


def digest_key(*, channel: str, week_start: date) -> str:
    return f"digest:{channel}:{week_start.isoformat()}"


def digest_due_week(digest: DigestChannel, *, now: datetime) -> date | None:
    """The Monday of the week to report if this week's digest time has come (Monday 09:00 local):
    last week. None before it (early Monday morning)."""
    local = now.astimezone(digest.zone)
    monday = local.date() - timedelta(days=local.weekday())
    due = datetime.combine(monday, DIGEST_TIME, tzinfo=digest.zone)
    return monday - timedelta(days=7) if local >= due else None


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)}%"


def digest_text(digest: DigestChannel, *, week_start: date, now: datetime, workspace_url: str) -> str:
    tiers = sorted(digest.tiers.values_list("name", flat=True))
    until = week_start + timedelta(days=6)
    filters = [ReportFilters(since=week_start, until=until, tier=t) for t in tiers] or [
        ReportFilters(since=week_start, until=until)
    ]
    lines = [f"*SLA digest: week of {week_start:%a %-d %b %Y}*", "*First-response attainment*"]
    totals, pages, breaches = [], {}, []
    for f in filters:
        report = report_build(filters=f, now=now)
        totals += report.totals
        for row in report.engineers:
            seen = pages.setdefault(row["engineer"], [0, 0])
            seen[0] += row["pages"]
            seen[1] += row["outside_business_hours"]
        breaches += worst_breaches(filters=f, now=now, limit=WORST)
    for row in totals:
        lines.append(
            f"• {row['tier']}: {_percent(row['attainment'])} in time ({row['met']} of {row['answered']} "
            f"answered), {row['opened']} opened, {row['closed_without_reply']} closed without reply, "
            f"{row['still_open']} still open"
        )
    if not totals:
        lines.append("• No tickets last week.")
    lines.append(f"*{WORST} worst breaches*")
    for b in sorted(breaches, key=lambda r: -r["late_s"])[:WORST]:
        link = slack_message_url(channel=b["channel"], ts=b["slack_ts"], workspace_url=workspace_url)
        label = f"#{b['helpdesk_ticket_id']}" if b["helpdesk_ticket_id"] else f"ticket {b['ticket_id']}"
        how = "answered" if b["answered"] else "not answered"
        lines.append(
            f"• <{link}|{b['tier']} {label}>: {duration_text(timedelta(seconds=b['late_s']))} late ({how})"
        )
    if not breaches:
        lines.append("• None.")
    lines.append("*Pages per engineer*")
    for name, (n, outside) in sorted(pages.items(), key=lambda item: (-item[1][0], item[0])):
        lines.append(f"• {name}: {n} ({outside} outside business hours)")
    if not pages:
        lines.append("• Nobody was paged.")
    return "\n".join(lines)


@dataclass
class DigestRun:
    recorded: int = 0
    sent: int = 0


def digests_send_due(*, now: datetime | None = None) -> DigestRun:
    """Beat: record this week's digest of every enabled channel whose time has come (once), then send
    every recorded digest not sent yet."""
    now = now or datetime.now(UTC)
    run = DigestRun()
    workspace_url = ""
    for digest in DigestChannel.objects.filter(enabled=True):
        week = digest_due_week(digest, now=now)
        if week is None or DigestSent.objects.filter(digest=digest, week_start=week).exists():
            continue
        workspace_url = workspace_url or slack_workspace_url()  # auth.test: outside any transaction
        key = digest_key(channel=digest.slack_channel_id, week_start=week)
        text = digest_text(digest, week_start=week, now=now, workspace_url=workspace_url)
        try:
            with transaction.atomic():
                DigestSent.objects.create(digest=digest, week_start=week, outbox_key=key)
                outbox_record(
                    key=key,
                    purpose=OutboxPurpose.NOTICE,
                    channel=digest.slack_channel_id,
                    thread_ts="",
                    text=text,
                )
        except IntegrityError:
            continue  # another run recorded it first
        run.recorded += 1
    keys = DigestSent.objects.values("outbox_key")
    unsent = OutboxMessage.objects.filter(key__in=keys).exclude(
        status__in=[OutboxStatus.SENT, OutboxStatus.FAILED]
    )
    for message in unsent:
        delivery = outbox_send(message)
        if delivery.status == "sent" and not delivery.recovered:
            run.sent += 1
        logger.info("digest_send key=%s status=%s", message.key, delivery.status)
    return run
