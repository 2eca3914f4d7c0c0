"""SLA policies, their steps, and the per-ticket rows the engine fires from.

A policy is copied when a ticket is armed: ``TicketSla`` holds what applies to
the ticket as a whole, and each ``Escalation`` row holds one level (target,
engineer, message template, due time). Editing or deleting the policy later
changes nothing for a ticket already armed. Celery tasks only speed things
up: what fires, when, and whether it already fired is decided by the rows,
and every change of ``Escalation.state`` is one method of
``EscalationQuerySet`` (escalation/transitions.py).
"""

from __future__ import annotations

from datetime import timedelta

from django.core.validators import MinValueValidator
from django.db import models

from calendars.targets import TargetKind
from escalation.transitions import EscalationQuerySet, EscalationState
from tickets.models import Priority, Tier

DEFAULT_SNOOZE_MINUTES = 30


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
        default=DEFAULT_SNOOZE_MINUTES,
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


TEMPLATE_HELP = (
    "Slack mrkdwn; leave blank for the default message. Placeholders: {level}, "
    "{mentions} (the resolved <@U…> / <!subteam^S…> mentions), {waited} (time since "
    "the ticket opened), {next_step} (next level's time and target, or that this is the "
    "last), {snooze_minutes}, {ticket_link} (admin page), {note} (why the target fell "
    "through, or empty), {tier}, {priority}, {ticket_id} (helpdesk id). Unknown "
    "placeholders are left as written. A Snooze button is always added."
)


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
    message_template = models.TextField(blank=True, help_text=TEMPLATE_HELP)

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


class TicketSla(models.Model):
    """The policy as it applied to one ticket when it was armed (its snapshot)."""

    ticket = models.OneToOneField("tickets.Ticket", on_delete=models.CASCADE, related_name="sla")
    policy = models.ForeignKey(
        SlaPolicy, on_delete=models.SET_NULL, null=True, blank=True,
        help_text="The policy it was armed with, while that policy exists; only for reference.",
    )
    policy_name = models.CharField(max_length=200, blank=True)
    snooze_minutes = models.PositiveIntegerField(default=DEFAULT_SNOOZE_MINUTES)
    armed_at = models.DateTimeField()

    class Meta:
        verbose_name = "ticket SLA"
        verbose_name_plural = "ticket SLAs"

    def __str__(self) -> str:
        return f"{self.policy_name or 'no policy'} for ticket {self.ticket_id}"


class FiredVia(models.TextChoices):
    TASK = "task", "Delayed task"
    SWEEPER = "sweeper", "Sweeper"


class Escalation(models.Model):
    """One level of one ticket, with everything it needs to fire copied from its step.
    Claimed with a conditional update on (state, version) so that exactly one
    task or sweeper run fires it."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="escalations")
    step = models.ForeignKey(
        EscalationStep, on_delete=models.SET_NULL, null=True, blank=True,
        help_text="The step it was copied from, while that step exists; only for reference.",
    )
    level = models.PositiveSmallIntegerField()
    target_kind = models.CharField(max_length=32, choices=TargetKind.choices)
    target_ref = models.CharField(max_length=64, blank=True)
    engineer = models.ForeignKey(
        "calendars.Engineer", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="For a specific-engineer target.",
    )
    message_template = models.TextField(blank=True)
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

    objects = EscalationQuerySet.as_manager()

    class Meta:
        ordering = ["ticket", "level"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "level"], name="uniq_escalation_ticket_level"),
        ]
        indexes = [
            models.Index(fields=["state", "due_at"], name="escalation_state_due"),
            # The admin's "breached" filter: a ticket's first due level, and whether one posted.
            models.Index(fields=["ticket", "due_at"], name="escalation_ticket_due"),
            models.Index(
                fields=["ticket"], condition=models.Q(state__in=["fired", "failed"]),
                name="escalation_ticket_posted",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket} L{self.level} ({self.state})"


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
