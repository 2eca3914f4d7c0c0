from datetime import UTC, datetime

import factory

from slackbot.models import SlackInbound


class SlackInboundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SlackInbound

    key = factory.Sequence(lambda n: f"Ev{n:08d}")
    kind = "event"
    payload = factory.LazyAttribute(lambda o: {"type": "event_callback", "event_id": o.key, "event": {}})
    received_at = factory.LazyFunction(lambda: datetime.now(UTC))
