from datetime import UTC, datetime

import factory

from escalation.factories import TierFactory
from tickets.models import BotReply, SlackInbound, Ticket, TicketEvent, TicketEventKind, WatchedChannel


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


class SlackInboundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SlackInbound

    key = factory.Sequence(lambda n: f"Ev{n:08d}")
    kind = "event"
    payload = factory.LazyAttribute(lambda o: {"type": "event_callback", "event_id": o.key, "event": {}})
    received_at = factory.LazyFunction(lambda: datetime.now(UTC))


class BotReplyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BotReply

    key = factory.Sequence(lambda n: f"mention:C00000001:{1790000000 + n}.000200")
    channel = "C00000001"
    thread_ts = "1790000000.000100"
    text = "Snoozed for 30 minutes."
    state = "sent"
