from datetime import UTC, datetime, timedelta

import factory

from tickets.models import Ticket, TicketEvent, TicketEventKind, Tier, TierHoliday, WatchedChannel


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Tier {n}")


class WatchedChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WatchedChannel
        django_get_or_create = ("slack_channel_id",)

    slack_channel_id = factory.Sequence(lambda n: f"C{n:08d}")
    name = factory.Sequence(lambda n: f"support-customer-{n}")
    tier = factory.SubFactory(TierFactory)


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    channel = factory.SubFactory(WatchedChannelFactory)
    slack_ts = factory.Sequence(lambda n: f"{1790000000 + n}.000100")
    helpdesk_ticket_id = factory.Sequence(lambda n: str(10000 + n))
    priority = "normal"
    ticket_type = "Question"
    text = "Our database is unreachable"
    opened_at = factory.LazyFunction(lambda: datetime.now(UTC))


class TicketEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketEvent

    ticket = factory.SubFactory(TicketFactory)
    kind = TicketEventKind.OPENED
    at = factory.LazyFunction(lambda: datetime.now(UTC))
    actor = "system"


class TierHolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TierHoliday

    tier = factory.SubFactory(TierFactory)
    date = factory.Sequence(lambda n: datetime.now(UTC).date() + timedelta(days=n + 1))
    name = "Company day"
