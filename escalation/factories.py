from datetime import timedelta

import factory

from calendars.targets import TargetKind
from escalation.models import EscalationStep, NextResponseStep, SlaPolicy
from tickets.factories import TierFactory


class SlaPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SlaPolicy

    tier = factory.SubFactory(TierFactory)
    priority = ""
    name = factory.LazyAttribute(lambda o: f"{o.tier.name} {o.priority or 'default'}")
    snooze_minutes = 30


class EscalationStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EscalationStep

    policy = factory.SubFactory(SlaPolicyFactory)
    level = factory.Sequence(lambda n: n + 1)
    delay = factory.LazyAttribute(lambda o: timedelta(minutes=10 * o.level))
    target_kind = TargetKind.ON_SHIFT


class NextResponseStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NextResponseStep

    policy = factory.SubFactory(SlaPolicyFactory)
    level = factory.Sequence(lambda n: n + 1)
    delay = factory.LazyAttribute(lambda o: timedelta(minutes=15 * o.level))
    target_kind = TargetKind.ON_SHIFT
