"""What Slack sent us, stored before Slack gets its 200."""

from __future__ import annotations

from django.db import models

from tickets.models import WatchedChannel


class InboundKind(models.TextChoices):
    EVENT = "event", "Events API event"
    INTERACTION = "interaction", "Interactive component (button)"


class InboundState(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed (gave up)"


class SlackInbound(models.Model):
    """Every accepted Slack delivery, stored before Slack gets its 200.

    ``key`` is the Events API ``event_id`` (or the interaction's action key):
    a retry of a delivery that was stored is acknowledged and dropped; a retry
    of one that failed before it was stored simply stores it now. Pending rows
    are processed in batches by the drain task (slackbot/drain.py); a beat job
    queues a drain for any left pending, so a lost Celery message loses nothing.
    """

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=InboundKind.choices)
    payload = models.JSONField()
    received_at = models.DateTimeField()
    retry_num = models.PositiveSmallIntegerField(
        default=0, help_text="X-Slack-Retry-Num of the stored delivery."
    )
    state = models.CharField(max_length=16, choices=InboundState.choices, default=InboundState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Pending: not processed before this (a drain holds it, or Slack asked us to wait).",
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["state", "received_at"], name="inbound_state_received"),
            # The drain takes pending deliveries in arrival order: a small partial index.
            models.Index(fields=["id"], condition=models.Q(state="pending"), name="inbound_pending_id"),
        ]
        db_table = "tickets_slackinbound"  # the table keeps the name it had before this app existed

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.state})"


class ChannelScanProgress(models.Model):
    """Where an unfinished scan of a channel stopped, so the next periodic run carries on there.

    A scan reads a channel's history newest first, a few pages per run; the
    channel's ``last_seen_ts`` moves only when every page back to ``oldest`` has
    been read. The row is removed when the scan completes or gives up.
    """

    channel = models.OneToOneField(WatchedChannel, on_delete=models.CASCADE, related_name="+")
    cursor = models.CharField(max_length=500, help_text="Slack's next_cursor: the page to read next.")
    oldest = models.CharField(max_length=32, help_text="The scan reads messages after this ts.")
    newest = models.CharField(max_length=32, blank=True, help_text="The newest message ts seen so far.")
    pages = models.PositiveIntegerField(default=0, help_text="Pages read by this scan so far.")
    runs = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True, help_text="Rate limited: resume after this.")
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "channel scan in progress"
        verbose_name_plural = "channel scans in progress"

    def __str__(self) -> str:
        return f"scan of {self.channel_id}: {self.pages} pages"
