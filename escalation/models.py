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

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from base.page_credentials import credential_name_error, credential_name_for
from base.pages import PageProvider
from calendars.targets import TargetKind
from escalation.clock import ClockKind
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
        help_text="How far an @mention of the bot pushes every pending level (on the policy's clock).",
    )
    clock = models.CharField(
        max_length=16,
        choices=ClockKind.choices,
        default=ClockKind.CALENDAR,
        help_text="Calendar: every minute counts. Business: only the tier's business hours, minus holidays.",
    )
    first_response_target = models.DurationField(
        null=True,
        blank=True,
        help_text="The promise to the customer, on the policy's clock; blank: the level 1 delay.",
    )
    snoozes_extend_target = models.BooleanField(
        default=False,
        help_text="A snooze also moves the ticket's breach time (if not yet passed). Off: the target stands.",
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
    "the ticket opened), {breach} ('breached 12 min ago' or 'breaches in 5 min', against "
    "the first-response target), {next_step} (next level's time and target, or that this is the "
    "last), {snooze_minutes}, {ticket_link} (admin page), {note} (why the target fell "
    "through, or empty), {tier}, {priority}, {ticket_id} (helpdesk id). Unknown "
    "placeholders are left as written. A Snooze button is always added. A page step's "
    "message is what the thread is told after the page; {paged} names the pager and its incident."
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
    page_provider = models.CharField(
        max_length=16, choices=PageProvider.choices, blank=True,
        help_text="For a page target: PagerDuty, Grafana OnCall or a signed webhook.",
    )
    page_credential = models.CharField(
        max_length=100, blank=True,
        help_text=(
            "For a page target: the NAME of the setting that holds the credential, never the "
            "credential itself (e.g. PAGERDUTY_ROUTING_KEY_ENTERPRISE). Blank: PAGERDUTY_ROUTING_KEY, "
            "ONCALL_WEBHOOK_URL or PAGE_WEBHOOK_URL."
        ),
    )
    page_priorities = models.JSONField(
        default=list, blank=True,
        help_text="For a page target: page only tickets of these priorities (empty: every priority). "
        "A ticket of another priority is armed without this level.",
    )
    outside_hours = models.BooleanField(
        default=False,
        help_text="Count calendar time from the opening even under a business clock (e.g. page at night).",
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

    def clean(self):
        errors = step_page_errors(
            target_kind=self.target_kind, provider=self.page_provider,
            credential=self.page_credential, priorities=self.page_priorities,
        )
        if errors:
            raise ValidationError(errors)


def step_page_errors(*, target_kind: str, provider: str, credential: str, priorities) -> dict[str, str]:
    """What is wrong with a step's page fields, by field (shared by the admin and Slack forms)."""
    errors: dict[str, str] = {}
    if target_kind != TargetKind.PAGE:
        if provider or credential or priorities:
            errors["page_provider"] = "Only a page target has a pager, a credential or priorities."
        return errors
    if not provider:
        errors["page_provider"] = "Choose the pager this level pages."
        return errors
    problem = credential_name_error(provider=provider, credential=credential)
    if problem:
        errors["page_credential"] = problem[0].upper() + problem[1:] + "."
    else:
        name = credential_name_for(provider=provider, credential=credential)
        if name not in settings.PAGE_CREDENTIALS:
            errors["page_credential"] = (
                f"{name} is not set on this server: set it (or {name}_FILE) and restart, "
                "or this level could never page."
            )
    known = set(Priority.values)
    if not isinstance(priorities, list) or any(p not in known for p in priorities):
        errors["page_priorities"] = f"Priorities must be a list of: {', '.join(Priority.values)}."
    return errors


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
    clock = models.CharField(max_length=16, choices=ClockKind.choices, default=ClockKind.CALENDAR)
    first_response_target = models.DurationField(null=True, blank=True)
    breach_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the first-response target passes without a response (moved by snoozes only "
        "if the policy said so).",
    )
    snoozes_extend_target = models.BooleanField(default=False)
    hours = models.JSONField(
        null=True, blank=True,
        help_text="Business clock: the tier's hours and holidays (about a year ahead) as they were at "
        "arming, for reports and explanations. Snoozes use the tier's current hours.",
    )

    class Meta:
        verbose_name = "ticket SLA"
        verbose_name_plural = "ticket SLAs"
        indexes = [models.Index(fields=["breach_at"], name="ticketsla_breach_at")]

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
    page_provider = models.CharField(max_length=16, choices=PageProvider.choices, blank=True)
    page_credential = models.CharField(
        max_length=100, blank=True, help_text="The name of the credential setting (never its value)."
    )
    outside_hours = models.BooleanField(
        default=False, help_text="Counts calendar time even though the ticket's clock is business."
    )
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
            # A ticket's next level (the admin's ticket page, /sla status, the App Home).
            models.Index(fields=["ticket", "due_at"], name="escalation_ticket_due"),
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
