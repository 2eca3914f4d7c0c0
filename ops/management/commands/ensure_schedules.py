from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ops.schedules import default_schedules


class Command(BaseCommand):
    help = "Create SLA Buddy's periodic jobs in django-celery-beat if they are missing."

    def handle(self, *args, **options):
        created = 0
        for schedule in default_schedules():
            with transaction.atomic():
                if PeriodicTask.objects.filter(name=schedule.name).exists():
                    continue
                interval, _ = IntervalSchedule.objects.get_or_create(
                    every=schedule.every_seconds, period=IntervalSchedule.SECONDS
                )
                PeriodicTask.objects.create(
                    name=schedule.name,
                    task=schedule.task,
                    interval=interval,
                    description=schedule.description,
                    queue=schedule.queue,
                )
                created += 1
        self.stdout.write(f"Periodic jobs: {created} created, the others already existed.")
