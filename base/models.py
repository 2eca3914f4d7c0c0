"""The outbox: every message the bot posts in Slack (and every page it sends beyond Slack),
written down before it is sent."""

from __future__ import annotations

from django.db import models


class OutboxPurpose(models.TextChoices):
    ESCALATION = "escalation", "Escalation level"
    REPLY = "reply", "Reply to a mention or a button (snooze, help)"
    NOTICE = "notice", "Notice"
    # Not a new post: new content for a message already posted (chat.update), e.g. "Answered by …".
    # ``slack_ts`` is the message it changes; sent by base.outbox.outbox_update_send.
    UPDATE = "update", "Update of a posted message"
    # Not a Slack post: a page to PagerDuty, OnCall or a webhook, sent by base/pages.py.
    PAGE = "page", "Page outside Slack"


class OutboxStatus(models.TextChoices):
    NEW = "new", "Recorded, not tried yet"
    SENDING = "sending", "Sending (may have reached Slack)"
    SENT = "sent", "Sent"
    RETRY = "retry", "Not sent, will retry"
    FAILED = "failed", "Failed (permanent)"


class OutboxMessage(models.Model):
    """One Slack post, keyed by what it is (``ticket:12:level:2``, ``mention:C1:1700000000.1``).

    Written before the HTTP call and updated after it. The key travels in the
    message's Slack metadata, so an attempt that follows one that may have
    reached Slack (a crash, a timeout) looks for the key in the thread before
    posting again. ``lease_until`` keeps two senders of one key apart.
    """

    key = models.CharField(max_length=200, unique=True)
    purpose = models.CharField(max_length=16, choices=OutboxPurpose.choices)
    channel = models.CharField(max_length=32)
    thread_ts = models.CharField(max_length=32, blank=True)
    text = models.TextField()
    blocks = models.JSONField(default=list, blank=True)
    payload = models.JSONField(
        default=dict, blank=True, help_text="Sent in the Slack message metadata with the key."
    )
    context = models.JSONField(
        default=dict, blank=True, help_text="The sender's own notes (e.g. whom a level notified); not sent."
    )
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.NEW)
    slack_ts = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="HTTP attempts to post it.")
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A sender holds the message until then (crash recovery)."
    )
    not_before = models.DateTimeField(
        null=True, blank=True,
        help_text="An attempt that may have reached Slack could still land until then: nobody "
        "looks or posts again before it.",
    )
    verify_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Posted after an attempt that may have landed: look for a duplicate then.",
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "outbox message"
        indexes = [models.Index(fields=["status", "updated_at"], name="outbox_status_updated"),
                   models.Index(fields=["verify_at"], name="outbox_verify_at")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"
