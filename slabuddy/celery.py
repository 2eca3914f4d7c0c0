"""The Celery app. Workers: ``celery -A slabuddy worker -Q escalation,default``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slabuddy.settings")

app = Celery("slabuddy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
