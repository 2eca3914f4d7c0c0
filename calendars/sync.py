"""Calendar sync: read a source's window, match events to engineers, replace the stored window atomically.

The network call happens before the transaction; if it fails (or the feed
cannot be parsed), the stored intervals stay as they were and the error is
recorded on the source for the admin. A feed read with some series skipped
(one broken event in an otherwise good feed) is a partial sync: the rest is
replaced, the skipped series keep their last good intervals, and a warning
naming each one stays on the source (the admin and ``check_deployment`` show it)
until a sync reads the feed cleanly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calendars.events import FetchedCalendar, FetchedEvent
from calendars.google import google_events_list
from calendars.holiday_feed import holiday_dates, holiday_dates_replace, holiday_window
from calendars.ical import ical_fetch, ical_read
from calendars.matching import EngineerDirectory, event_match
from calendars.models import CalendarInterval, CalendarSource, Purpose, SourceKind
from calendars.patterns import compile_patterns

log = logging.getLogger(__name__)

WINDOW_BACK = timedelta(days=1)
WINDOW_AHEAD = timedelta(days=7)
MAX_WARNING_LINES = 20


@dataclass
class SyncResult:
    ok: bool  # the calendar was read and the stored window replaced (perhaps partly: see warnings)
    events: int = 0
    unmatched: int = 0
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """Read, but some series were skipped: never a clean success."""
        return self.ok and bool(self.warnings)


def calendar_source_fetch(
    *, source: CalendarSource, time_min: datetime, time_max: datetime, http=None
) -> FetchedCalendar:
    """Read one source over the network. ``http`` replaces Google's transport (tests)."""
    if source.kind == SourceKind.GOOGLE:
        return FetchedCalendar(events=google_events_list(
            calendar_id=source.google_calendar_id,
            subject=source.google_subject,
            time_min=time_min,
            time_max=time_max,
            default_tz=source.time_zone,
            http=http,
        ))
    data = ical_fetch(url=source.ical_url.strip(), timeout=settings.CALENDAR_TIMEOUT_SECONDS)
    return ical_read(data=data, time_min=time_min, time_max=time_max, default_tz=source.time_zone)


def _warnings_text(lines: list[str]) -> str:
    shown = lines[:MAX_WARNING_LINES]
    if len(lines) > len(shown):
        shown.append(f"... and {len(lines) - len(shown)} more.")
    return "\n".join(shown)


def calendar_source_sync(*, source: CalendarSource, now: datetime | None = None, http=None) -> SyncResult:
    now = now or timezone.now()
    holidays = source.purpose == Purpose.HOLIDAYS
    time_min, time_max = holiday_window(now) if holidays else (now - WINDOW_BACK, now + WINDOW_AHEAD)
    CalendarSource.objects.filter(pk=source.pk).update(last_attempt_at=now)
    try:
        calendar = calendar_source_fetch(source=source, time_min=time_min, time_max=time_max, http=http)
    except Exception as exc:  # noqa: BLE001 - any failure must keep the last good data
        error = (str(exc) or type(exc).__name__)[:2000]
        log.warning("calendar source %s (%s) failed to sync: %s", source.pk, source.name, error)
        CalendarSource.objects.filter(pk=source.pk).update(last_error=error, last_error_at=now)
        return SyncResult(ok=False, error=error)

    fetched = calendar.events
    warnings = [skipped.describe() for skipped in calendar.skipped]
    for line in warnings:
        log.warning("calendar source %s (%s): %s", source.pk, source.name, line)
    if holidays:
        return _holidays_store(source=source, fetched=fetched, warnings=warnings, time_min=time_min,
                               time_max=time_max, now=now)
    # A skipped series keeps what the last good sync stored for it (its occurrences are "UID/when").
    keep = Q()
    for skipped in calendar.skipped:
        keep |= Q(event_id__startswith=f"{skipped.uid}/")
    patterns = compile_patterns(source.patterns())
    directory = EngineerDirectory()
    rows = []
    for event in fetched:
        if event.ends_at <= time_min:
            continue  # older rows before the window are kept as history, never duplicated
        for match in event_match(
            event=event,
            purpose=source.purpose,
            patterns=patterns,
            directory=directory,
            default_product=source.default_product,
        ):
            rows.append(
                CalendarInterval(
                    source=source,
                    purpose=source.purpose,
                    engineer_id=match.engineer_id,
                    product=match.product[:100],
                    starts_at=event.starts_at,
                    ends_at=event.ends_at,
                    all_day=event.all_day,
                    title=event.title[:500],
                    event_id=event.event_id[:500],
                    attendees=", ".join(event.attendees)[:5000],
                    matched_by=match.matched_by,
                    unmatched_name=match.unmatched_name[:200],
                    synced_at=now,
                )
            )
    unmatched = sum(1 for row in rows if row.engineer_id is None)
    with transaction.atomic():
        # The row lock serialises two syncs of one source (two beat runs, a manual "sync now").
        CalendarSource.objects.select_for_update().filter(pk=source.pk).first()
        replaced = CalendarInterval.objects.filter(source=source, ends_at__gt=time_min)
        if calendar.skipped:
            replaced = replaced.exclude(keep)
        replaced.delete()
        calendar_history_prune(source=source, now=now, time_min=time_min)
        CalendarInterval.objects.bulk_create(rows, batch_size=500)
        CalendarSource.objects.filter(pk=source.pk).update(
            last_success_at=now, last_error="", last_event_count=len(fetched), last_unmatched_count=unmatched,
            sync_warnings=_warnings_text(warnings),
        )
    return SyncResult(ok=True, events=len(fetched), unmatched=unmatched, warnings=warnings)


def calendar_history_prune(*, source: CalendarSource, now: datetime, time_min: datetime) -> int:
    """Forget the source's intervals that ended more than CALENDAR_HISTORY_RETENTION_DAYS ago.
    Older rows are kept as history (a replay resolves past levels against them); rows reaching
    into the sync window never go, whatever the setting."""
    cutoff = min(now - timedelta(days=settings.CALENDAR_HISTORY_RETENTION_DAYS), time_min)
    deleted, _ = CalendarInterval.objects.filter(source=source, ends_at__lt=cutoff).delete()
    return deleted


def _holidays_store(
    *, source: CalendarSource, fetched: list[FetchedEvent], warnings: list[str], time_min: datetime,
    time_max: datetime, now: datetime,
) -> SyncResult:
    """A holiday source keeps dates, not intervals (calendars/holiday_feed.py)."""
    dates = holiday_dates(fetched, default_tz=source.time_zone)
    with transaction.atomic():
        CalendarSource.objects.select_for_update().filter(pk=source.pk).first()
        holiday_dates_replace(source=source, dates=dates, time_min=time_min, time_max=time_max, now=now)
        CalendarSource.objects.filter(pk=source.pk).update(
            last_success_at=now, last_error="", last_event_count=len(fetched), last_unmatched_count=0,
            sync_warnings=_warnings_text(warnings),
        )
    return SyncResult(ok=True, events=len(fetched), warnings=warnings)


def calendar_sources_sync(*, now: datetime | None = None) -> dict[int, SyncResult]:
    """Sync every active source in turn (the admin's "sync now", the management shell)."""
    return {
        source.pk: calendar_source_sync(source=source, now=now)
        for source in CalendarSource.objects.filter(active=True)
    }
