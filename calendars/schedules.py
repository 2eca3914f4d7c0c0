from django.conf import settings

from base.schedules import Schedule


def schedules() -> list[Schedule]:
    return [
        Schedule(
            name="calendars: sync calendar sources",
            task="calendars.sync_all",
            every_seconds=settings.CALENDAR_SYNC_MINUTES * 60,
            description="Reads each active calendar source (a day back, a week ahead) into the database.",
            queue="default",
        )
    ]
