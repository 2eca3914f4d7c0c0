import factory

from calendars.models import Engineer, Role


class EngineerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Engineer

    name = factory.Sequence(lambda n: f"Engineer {n}")
    email = factory.Sequence(lambda n: f"engineer{n}@example.com")
    slack_user_id = factory.Sequence(lambda n: f"U{n:08d}")
    role = Role.SUPPORT_ENGINEER
