"""SLA policies, their steps, and one row per (ticket, level): the truth.

Celery tasks only speed things up; what fires, when, and whether it already
fired is decided by ``Escalation`` rows (see escalation/services.py).
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.validators import MinValueValidator
from django.db import models


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


def zone_or_utc(name: str) -> ZoneInfo:
    """A time zone by IANA name; an unknown name falls back to UTC rather than
    breaking a message or an admin page."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


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

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> ZoneInfo:
        return zone_or_utc(self.time_zone)


class SlaPolicy(models.Model):
    """The escalation ladder for a tier, optionally for one priority only.

    A ticket gets the policy for (its tier, its priority) if one exists, else
    the tier's default policy (blank priority).
    """

    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="policies")
    priority = models.CharField(
        max_length=16,
        choices=Priority.choices,
        blank=True,
        help_text="Leave blank for the tier's default policy.",
    )
    name = models.CharField(max_length=200, blank=True)
    snooze_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="How far an @mention of the bot pushes every pending level.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["tier__name", "priority"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(fields=["tier", "priority"], name="uniq_policy_tier_priority"),
        ]

    def __str__(self) -> str:
        label = self.get_priority_display() if self.priority else "default"
        return self.name or f"{self.tier.name} ({label})"


class TargetKind(models.TextChoices):
    ON_SHIFT_NOT_EMBEDDED = "on_shift_not_embedded", "Support engineers on shift, not embedded"
    ON_SHIFT = "on_shift", "Every support engineer on shift"
    USER_GROUP = "user_group", "Slack user group"
    HEAD_OF_SUCCESS = "head_of_success", "Head of success"
    ENGINEER = "engineer", "A specific engineer"


class EscalationStep(models.Model):
    """Level N of a policy: notify ``target`` at ``opened_at + delay``."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="steps")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    delay = models.DurationField(help_text="After the ticket opened, e.g. 00:10:00 or 3:00:00.")
    target_kind = models.CharField(max_length=32, choices=TargetKind.choices)
    target_ref = models.CharField(
        max_length=64,
        blank=True,
        help_text=(
            "Slack user group id (S…) for a user-group target; blank uses "
            "SLACK_SUPPORT_USERGROUP_ID. Unused for other kinds."
        ),
    )
    engineer = models.ForeignKey(
        "calendars.Engineer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="For a specific-engineer target.",
    )
    message_template = models.TextField(
        blank=True,
        help_text=(
            "Slack mrkdwn; leave blank for the default message. Placeholders: {level}, "
            "{mentions} (the resolved <@U…> / <!subteam^S…> mentions), {waited} (time since "
            "the ticket opened), {next_step} (next level's time and target, or that this is the "
            "last), {snooze_minutes}, {ticket_link} (admin page), {note} (why the target fell "
            "through, or empty), {tier}, {priority}, {ticket_id} (helpdesk id). Unknown "
            "placeholders are left as written. A Snooze button is always added."
        ),
    )

    class Meta:
        ordering = ["policy", "level"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "level"], name="uniq_step_policy_level"),
            models.CheckConstraint(
                condition=models.Q(delay__gte=timedelta(0)), name="step_delay_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} L{self.level} after {self.delay}"


class EscalationState(models.TextChoices):
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing (claimed by a worker)"
    FIRED = "fired", "Fired"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed (permanent Slack error)"


class FiredVia(models.TextChoices):
    TASK = "task", "Delayed task"
    SWEEPER = "sweeper", "Sweeper"


class Escalation(models.Model):
    """One level of one ticket. Claimed with a conditional update on
    (state, version) so that exactly one task or sweeper run fires it."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="escalations")
    step = models.ForeignKey(EscalationStep, on_delete=models.SET_NULL, null=True, blank=True)
    level = models.PositiveSmallIntegerField()
    # Copied from the step when armed, so that editing a policy later does not
    # rewrite what a past ticket was promised.
    target_kind = models.CharField(max_length=32, choices=TargetKind.choices)
    target_ref = models.CharField(max_length=64, blank=True)
    due_at = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=EscalationState.choices, default=EscalationState.PENDING
    )
    version = models.PositiveIntegerField(
        default=1, help_text="Bumped on every reschedule/cancel; a task carrying an old one is stale."
    )
    not_before = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "Pending: no attempt before this (Slack rate limit or error backoff). "
            "Firing: the claim's lease; after it the sweeper takes the level over."
        ),
    )
    celery_task_id = models.CharField(max_length=64, blank=True)
    enqueued_for = models.DateTimeField(
        null=True, blank=True, help_text="The due time the current Celery task was queued for."
    )
    fired_at = models.DateTimeField(null=True, blank=True)
    fired_via = models.CharField(
        max_length=16, choices=FiredVia.choices, blank=True,
        help_text="Which path claimed the level that posted: its delayed task or the sweeper.",
    )
    notified = models.JSONField(
        default=list, blank=True, help_text="Slack ids and names this level mentioned."
    )
    slack_message_ts = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ticket", "level"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "level"], name="uniq_escalation_ticket_level"),
        ]
        indexes = [models.Index(fields=["state", "due_at"], name="escalation_state_due")]

    def __str__(self) -> str:
        return f"{self.ticket} L{self.level} ({self.state})"


class OutgoingStatus(models.TextChoices):
    SENDING = "sending", "Sending (may have reached Slack)"
    SENT = "sent", "Sent"
    RETRY = "retry", "Not sent, will retry"
    FAILED = "failed", "Failed (permanent)"


class OutgoingMessage(models.Model):
    """A Slack post, written before the HTTP call and updated after it.

    ``idempotency_key`` is (ticket, level) and travels in the message's Slack
    metadata; a row left in ``sending`` means a worker died around the call,
    so the next attempt looks for the key in the thread before posting again.
    """

    idempotency_key = models.CharField(max_length=64, unique=True)
    escalation = models.OneToOneField(Escalation, on_delete=models.CASCADE, related_name="outgoing")
    channel = models.CharField(max_length=32)
    thread_ts = models.CharField(max_length=32)
    text = models.TextField()
    status = models.CharField(max_length=16, choices=OutgoingStatus.choices)
    notified = models.JSONField(default=list, blank=True)
    slack_ts = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.idempotency_key} ({self.status})"


class SnoozeRequest(models.Model):
    """One snooze request (a Slack mention or button click), applied at most once."""

    request_key = models.CharField(
        max_length=128, unique=True, help_text="The Slack message or action that asked."
    )
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="snoozes")
    actor = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField()
    applied = models.BooleanField(default=False, help_text="Whether it moved any pending level.")
    due_times = models.JSONField(default=dict, blank=True, help_text="Level -> new due time (ISO).")

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"Snooze {self.request_key} of {self.ticket_id}"
