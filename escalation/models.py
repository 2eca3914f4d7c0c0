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
DEFAULT_EXCLUDED_TYPES = ("feedback",)


def default_excluded_types() -> list[str]:
    """Feedback never escalates unless a policy says otherwise (as the original tool did)."""
    return list(DEFAULT_EXCLUDED_TYPES)


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
    max_total_snooze = models.DurationField(
        null=True, blank=True,
        help_text="The most a ticket may be snoozed in total (e.g. 4:00:00); past it the bot says so and "
        "does not snooze. Blank: no limit.",
    )
    exclude_types = models.JSONField(
        default=default_excluded_types, blank=True,
        help_text='Ticket types that never escalate, e.g. ["feedback"] (compared without case). Such tickets '
        "are recorded with a note and never armed.",
    )
    next_response_target = models.DurationField(
        null=True, blank=True,
        help_text="Next responses: the promise for answering a customer who wrote again, on the policy's "
        "clock; blank: the next-response level 1 delay.",
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

    def clean(self):
        if not isinstance(self.exclude_types, list) or not all(
            isinstance(t, str) and t.strip() for t in self.exclude_types
        ):
            raise ValidationError({"exclude_types": 'A list of ticket type names, e.g. ["feedback"].'})


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


class StepFields(models.Model):
    """What one level of a ladder does and when: shared by the first-response ladder
    (``EscalationStep``) and the next-response ladder (``NextResponseStep``)."""

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
        abstract = True

    def clean(self):
        errors = step_page_errors(
            target_kind=self.target_kind, provider=self.page_provider,
            credential=self.page_credential, priorities=self.page_priorities,
        )
        if errors:
            raise ValidationError(errors)


class EscalationStep(StepFields):
    """Level N of a policy: notify ``target`` at ``opened_at + delay``."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="steps")

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


class NextResponseStep(StepFields):
    """Level N of a policy's next-response ladder: after an answer, a customer who writes again
    starts a new cycle, and level N notifies ``target`` at ``that message + delay``."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="next_steps")

    class Meta:
        ordering = ["policy", "level"]
        verbose_name = "next-response step"
        constraints = [
            models.UniqueConstraint(fields=["policy", "level"], name="uniq_next_step_policy_level"),
            models.CheckConstraint(
                condition=models.Q(delay__gte=timedelta(0)), name="next_step_delay_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} next-response L{self.level} after {self.delay}"


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
    max_total_snooze = models.DurationField(
        null=True, blank=True, help_text="The most the ticket may be snoozed in total (blank: no limit)."
    )
    next_response = models.JSONField(
        null=True, blank=True,
        help_text="The next-response ladder as it was at arming ({target, levels}); a customer who writes "
        "again after an answer starts a cycle of it. Empty: no next-response cycles.",
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
    cycle = models.PositiveSmallIntegerField(
        default=1, help_text="1: the first response; 2, 3, ...: next-response cycles (TicketCycle.number)."
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
    late_pickup = models.BooleanField(
        default=False,
        help_text="Overdue when the ticket was first seen: it posts once for the overdue levels below "
        "it too.",
    )
    paused_remaining = models.DurationField(
        null=True, blank=True,
        help_text="Paused (waiting on customer): the time it still had to wait, on its clock; it is due "
        "that long after the resume.",
    )
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
        ordering = ["ticket", "cycle", "level"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "cycle", "level"],
                                    name="uniq_escalation_ticket_cycle_level"),
        ]
        indexes = [
            models.Index(fields=["state", "due_at"], name="escalation_state_due"),
            # A ticket's next level (the admin's ticket page, /sla status, the App Home).
            models.Index(fields=["ticket", "due_at"], name="escalation_ticket_due"),
        ]

    def __str__(self) -> str:
        cycle = f" cycle {self.cycle}" if self.cycle != 1 else ""
        return f"{self.ticket}{cycle} L{self.level} ({self.state})"


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
    refused = models.CharField(
        max_length=200, blank=True,
        help_text="Why it did not snooze: the ticket's maximum total snooze, or a second click within "
        "seconds.",
    )

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"Snooze {self.request_key} of {self.ticket_id}"


class CycleKind(models.TextChoices):
    FIRST = "first", "First response"
    NEXT = "next", "Next response"


class TicketCycleQuerySet(models.QuerySet):
    """How a cycle ends, each one conditional update on a cycle still open: True if this call made it."""

    def _open(self, pk: int):
        return self.filter(pk=pk, responded_at__isnull=True, closed_at__isnull=True)

    def end_responded(self, *, pk: int, at, path: str, actor: str) -> bool:
        return bool(self._open(pk).update(responded_at=at, response_path=path, responded_by=actor))

    def end_closed(self, *, pk: int, at, via: str, actor: str) -> bool:
        return bool(self._open(pk).update(closed_at=at, closed_via=via, closed_by=actor))


class TicketCycle(models.Model):
    """One round of "the customer waits for us": the first response (number 1, from the opening)
    or a next response (2, 3, ...: from a customer's message after an answer or a close).
    Its levels are the ticket's Escalation rows of the same ``cycle``; its pauses are TicketPause rows."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="cycles")
    number = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=8, choices=CycleKind.choices)
    started_at = models.DateTimeField(help_text="The opening, or the customer's message that started it.")
    started_by = models.CharField(max_length=200, blank=True)
    trigger_ts = models.CharField(
        max_length=32, blank=True, help_text="The Slack message (ts) that started a next-response cycle."
    )
    reopened = models.BooleanField(default=False, help_text="Started by a customer writing after a close.")
    target = models.DurationField(
        null=True, blank=True, help_text="Its response target, on the policy's clock."
    )
    breach_at = models.DateTimeField(
        null=True, blank=True, help_text="When its target passes without a response (pauses move it later)."
    )
    responded_at = models.DateTimeField(null=True, blank=True)
    response_path = models.CharField(max_length=16, blank=True)
    responded_by = models.CharField(max_length=200, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="Closed before a response came.")
    closed_via = models.CharField(max_length=16, blank=True)
    closed_by = models.CharField(max_length=200, blank=True)

    objects = TicketCycleQuerySet.as_manager()

    class Meta:
        ordering = ["ticket", "number"]
        verbose_name = "response cycle"
        constraints = [
            models.UniqueConstraint(fields=["ticket", "number"], name="uniq_cycle_ticket_number"),
        ]
        indexes = [models.Index(fields=["kind", "started_at"], name="cycle_kind_started")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} cycle {self.number} of ticket {self.ticket_id}"

    @property
    def is_open(self) -> bool:
        return self.responded_at is None and self.closed_at is None


class TicketPauseQuerySet(models.QuerySet):
    def end(self, *, pk: int, at, via: str, actor: str) -> bool:
        """Close an open pause (the resume, or the answer or close that ended the wait)."""
        return bool(
            self.filter(pk=pk, resumed_at__isnull=True).update(
                resumed_at=at, resumed_via=via, resumed_by=actor
            )
        )


class TicketPause(models.Model):
    """One stretch of "waiting on customer": the clock of the ticket's cycle stood still."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="pauses")
    cycle = models.PositiveSmallIntegerField()
    paused_at = models.DateTimeField()
    paused_via = models.CharField(max_length=16)
    paused_by = models.CharField(max_length=200, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_via = models.CharField(max_length=16, blank=True)
    resumed_by = models.CharField(max_length=200, blank=True)
    remaining = models.JSONField(
        default=dict, blank=True,
        help_text="Level -> seconds it still had to wait, on its clock, when paused.",
    )
    breach_remaining = models.DurationField(
        null=True, blank=True, help_text="Time left to the cycle's target when paused (none if passed)."
    )

    objects = TicketPauseQuerySet.as_manager()

    class Meta:
        ordering = ["ticket", "paused_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"], condition=models.Q(resumed_at__isnull=True),
                name="one_open_pause_per_ticket",
            ),
        ]

    def __str__(self) -> str:
        return f"Pause of ticket {self.ticket_id} from {self.paused_at:%Y-%m-%d %H:%M}"


class LifecycleAction(models.TextChoices):
    CLOSE = "close", "Close"
    PAUSE = "pause", "Waiting on customer"
    RESUME = "resume", "Resume"
    CYCLE = "cycle", "Next-response cycle"


class LifecycleRequest(models.Model):
    """One request to close, pause, resume or start a cycle, by the Slack thing that asked
    (a message, a reaction, a button press): applied at most once, however often Slack delivers it."""

    request_key = models.CharField(max_length=200, unique=True)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="lifecycle_requests")
    action = models.CharField(max_length=8, choices=LifecycleAction.choices)
    actor = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField()
    applied = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.action} {self.request_key}"
