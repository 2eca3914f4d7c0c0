"""Tiers, watched channels, tickets and each ticket's timeline: rows, no Slack I/O."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.db import models

from base.timezones import zone_or_utc


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Tier(models.Model):
    """A customer subscription level (Enterprise, Teams, ...)."""

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        help_text="IANA time zone in which this tier's times are shown (e.g. Europe/Berlin).",
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        db_table = "escalation_tier"  # the table keeps the name it had when the engine owned tiers

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> ZoneInfo:
        return zone_or_utc(self.time_zone)


class IntakeMode(models.TextChoices):
    HELPDESK_BOT = "helpdesk_bot", "Helpdesk bot messages (Ticket ID / priority / type)"
    PLAIN = "plain", "Every top-level human message is a ticket"


class ResponseMode(models.TextChoices):
    SLACK_THREAD = "slack_thread", "An engineer replies in the Slack thread"
    ZENDESK = "zendesk", "Zendesk first agent reply"
    FRESHDESK = "freshdesk", "Freshdesk first agent reply"
    WEBHOOK = "webhook", "Helpdesk webhook only"


class WatchedChannel(models.Model):
    slack_channel_id = models.CharField(max_length=32, unique=True, help_text="C…")
    name = models.CharField(max_length=100, help_text="Channel name, for people (#support-acme).")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="channels")
    intake_mode = models.CharField(
        max_length=16, choices=IntakeMode.choices, default=IntakeMode.HELPDESK_BOT
    )
    allowed_bot_ids = models.CharField(
        max_length=500,
        blank=True,
        help_text="Comma-separated Slack bot ids (B…) whose messages are tickets, e.g. Workflow Builder.",
    )
    lookback_minutes = models.PositiveIntegerField(
        default=120, help_text="Messages older than this are never tickets (also on the first scan)."
    )
    response_mode = models.CharField(
        max_length=16, choices=ResponseMode.choices, default=ResponseMode.SLACK_THREAD
    )
    active = models.BooleanField(default=True)
    last_seen_ts = models.CharField(
        max_length=32, blank=True, help_text="Newest message ts the channel scan has read."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"#{self.name}"


class TicketState(models.TextChoices):
    ARMED = "armed", "Armed (no response yet)"
    RESPONDED = "responded", "Responded"
    NO_POLICY = "no_policy", "No SLA policy for its tier"


class ResponsePath(models.TextChoices):
    SLACK_THREAD = "slack_thread", "Reply in the Slack thread"
    ZENDESK = "zendesk", "Zendesk first reply"
    FRESHDESK = "freshdesk", "Freshdesk first reply"
    WEBHOOK = "webhook", "Helpdesk webhook"
    ADMIN = "admin", "Marked in the admin"


class TicketQuerySet(models.QuerySet):
    """The ticket's state changes, each one conditional update: True if this call made it."""

    def mark_no_policy(self, *, pk: int) -> bool:
        return bool(self.filter(pk=pk, state=TicketState.ARMED).update(state=TicketState.NO_POLICY))

    def mark_responded(self, *, pk: int, at, path: str, actor: str) -> bool:
        return bool(
            self.filter(pk=pk, state__in=[TicketState.ARMED, TicketState.NO_POLICY]).update(
                state=TicketState.RESPONDED, responded_at=at, response_path=path, responded_by=actor
            )
        )


class Ticket(models.Model):
    channel = models.ForeignKey(WatchedChannel, on_delete=models.PROTECT, related_name="tickets")
    slack_ts = models.CharField(max_length=32, help_text="The Slack message ts; the thread's ts.")
    helpdesk_ticket_id = models.CharField(max_length=64, blank=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, blank=True)
    ticket_type = models.CharField(max_length=64, blank=True)
    text = models.TextField(blank=True)
    author_slack_id = models.CharField(max_length=32, blank=True)
    opened_at = models.DateTimeField(help_text="When the message was posted in Slack.")
    state = models.CharField(max_length=16, choices=TicketState.choices, default=TicketState.ARMED)
    responded_at = models.DateTimeField(null=True, blank=True)
    response_path = models.CharField(max_length=16, choices=ResponsePath.choices, blank=True)
    responded_by = models.CharField(max_length=200, blank=True)
    responses_checked_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When a poll last asked the helpdesk or read the thread for a response.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TicketQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "slack_ts"], name="uniq_ticket_channel_ts"),
        ]
        indexes = [models.Index(fields=["state", "opened_at"], name="ticket_state_opened")]

    def __str__(self) -> str:
        ref = f"#{self.helpdesk_ticket_id}" if self.helpdesk_ticket_id else self.slack_ts
        return f"Ticket {ref} in {self.channel}"


class TicketEventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    ARMED = "armed", "Armed"
    LEVEL_FIRED = "level_fired", "Level fired"
    LEVEL_FAILED = "level_failed", "Level failed"
    SNOOZED = "snoozed", "Snoozed"
    RESPONDED = "responded", "Responded"
    NOTE = "note", "Note"


class TicketEvent(models.Model):
    """The ticket's timeline: append-only, one row per thing that happened."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=TicketEventKind.choices)
    at = models.DateTimeField()
    actor = models.CharField(
        max_length=200, blank=True, help_text="Slack user id, helpdesk, or 'system'."
    )
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["ticket", "at"], name="ticketevent_ticket_at")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M:%S}"
