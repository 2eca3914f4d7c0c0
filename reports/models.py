"""The weekly digest's configuration (per Slack channel) and the record of each digest sent."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models

from base.timezones import zone_or_utc
from tickets.models import Tier


class DigestChannel(models.Model):
    """A Slack channel that gets the weekly SLA digest: every Monday at 09:00 (in the time zone of its
    first tier, by name; UTC-based TIME_ZONE when it lists none), last week's figures."""

    slack_channel_id = models.CharField(max_length=32, unique=True, help_text="C… (invite the bot to it).")
    name = models.CharField(max_length=100, blank=True, help_text="For people (#support-leads).")
    tiers = models.ManyToManyField(Tier, blank=True, related_name="+", help_text="None chosen: every tier.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "slack_channel_id"]
        verbose_name = "weekly digest channel"

    def __str__(self) -> str:
        return f"#{self.name}" if self.name else self.slack_channel_id

    @property
    def zone(self) -> ZoneInfo:
        first = self.tiers.order_by("name").first()
        return first.zone if first else zone_or_utc(settings.TIME_ZONE)


class DigestSent(models.Model):
    """One digest of one week for one channel: the unique row that makes it once per week, however
    often (or on however many beats) the job runs. Its message is the outbox row ``outbox_key``."""

    digest = models.ForeignKey(DigestChannel, on_delete=models.CASCADE, related_name="sent")
    week_start = models.DateField(help_text="The Monday of the week it reports.")
    outbox_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-week_start"]
        verbose_name = "weekly digest sent"
        verbose_name_plural = "weekly digests sent"
        constraints = [
            models.UniqueConstraint(fields=["digest", "week_start"], name="uniq_digest_week"),
        ]

    def __str__(self) -> str:
        return f"Digest of week {self.week_start} for {self.digest}"
