"""Thin Celery tasks around calendars/sync.py. The beat job fans out one task per source."""

from celery import shared_task

from calendars.models import CalendarSource
from calendars.sync import calendar_source_sync


@shared_task(name="calendars.sync_all")
def calendars_sync_all() -> int:
    ids = list(CalendarSource.objects.filter(active=True).values_list("pk", flat=True))
    for source_id in ids:
        calendar_source_sync_task.delay(source_id)
    return len(ids)


@shared_task(name="calendars.sync_source")
def calendar_source_sync_task(source_id: int) -> bool:
    source = CalendarSource.objects.filter(pk=source_id, active=True).first()
    if source is None:
        return False
    return calendar_source_sync(source=source).ok
