from datetime import timedelta

import factory
from django.utils import timezone

from calendars.models import (
    CalendarInterval,
    CalendarSource,
    Engineer,
    HolidayDate,
    MatchedBy,
    OverrideKind,
    Purpose,
    Role,
    RosterOverride,
    SourceKind,
    UnmatchedEvent,
)


class EngineerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Engineer

    name = factory.Sequence(lambda n: f"Engineer {n}")
    email = factory.Sequence(lambda n: f"engineer{n}@example.com")
    slack_user_id = factory.Sequence(lambda n: f"U{n:08d}")
    role = Role.SUPPORT_ENGINEER


class CalendarSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CalendarSource

    name = factory.Sequence(lambda n: f"Calendar {n}")
    kind = SourceKind.ICAL
    purpose = Purpose.SHIFTS
    ical_url = factory.Sequence(lambda n: f"https://calendar.example.com/{n}/basic.ics")
    last_success_at = factory.LazyFunction(timezone.now)


class CalendarIntervalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CalendarInterval

    source = factory.SubFactory(CalendarSourceFactory)
    purpose = factory.SelfAttribute("source.purpose")
    engineer = factory.SubFactory(EngineerFactory)
    title = factory.LazyAttribute(lambda o: f"Shift: {o.engineer.name}" if o.engineer else "Shift: somebody")
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(hours=8))
    matched_by = factory.LazyAttribute(lambda o: MatchedBy.TITLE if o.engineer else MatchedBy.NOBODY)
    synced_at = factory.LazyFunction(timezone.now)


class UnmatchedEventFactory(CalendarIntervalFactory):
    class Meta:
        model = UnmatchedEvent

    engineer = None
    title = "Shift: Nobody We Know"
    unmatched_name = "Nobody We Know"


class RosterOverrideFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RosterOverride

    engineer = factory.SubFactory(EngineerFactory)
    kind = OverrideKind.OFF_SHIFT
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(days=1))


class HolidayDateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HolidayDate

    source = factory.SubFactory(CalendarSourceFactory, purpose=Purpose.HOLIDAYS)
    date = factory.Sequence(lambda n: timezone.now().date() + timedelta(days=n + 1))
    name = "Public holiday"
    synced_at = factory.LazyFunction(timezone.now)
