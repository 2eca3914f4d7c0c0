"""Operational rows: the heartbeat that tells beat and a worker are alive."""

from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """The last time a periodic job ran, one row per name.

    ``beat`` is written by ``ops.tasks.heartbeat``, which Celery beat
    schedules and a worker runs: a recent row means beat and a worker are both
    alive and share this database. /readyz and ``check_deployment`` read it.
    """

    name = models.CharField(max_length=64, unique=True)
    at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True, help_text="The worker that wrote it.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
