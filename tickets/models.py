"""Tiers, watched channels, tickets and each ticket's timeline: rows, no Slack I/O."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import holidays
from django.core.exceptions import ValidationError
from django.db import models

from base.timezones import zone_or_utc
from calendars.models import CalendarSource, Purpose
from tickets.hours import HoursError, weekly_normalise, zone_check


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
        help_text=(
            "IANA time zone of this tier (e.g. Europe/Berlin): its times are shown and its "
            "business hours kept in it."
        ),
    )
    description = models.TextField(blank=True)
    # Hours of operation, counted by policies with a business clock (escalation/clock.py).
    business_hours = models.JSONField(
        null=True,
        blank=True,
        help_text=(
            "Weekly schedule in the tier's time zone, e.g. {\"mon-fri\": [\"09:00-18:00\"]} or "
            '{"mon-thu": ["08:00-12:00", "13:00-17:00"], "fri": ["08:00-12:00"]}. Keys: mon..sun, '
            "ranges (mon-fri) or lists (mon,wed); 22:00-06:00 runs past midnight; days not named "
            "are closed. Empty: around the clock."
        ),
    )
    holiday_country = models.CharField(
        max_length=3, blank=True,
        help_text="Public holidays of this country (ISO code, e.g. DE, US), from the holidays package.",
    )
    holiday_subdivision = models.CharField(
        max_length=10, blank=True, help_text="Optional: the state or province (e.g. BY, CA)."
    )
    holiday_calendar = models.ForeignKey(
        CalendarSource,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        limit_choices_to={"purpose": Purpose.HOLIDAYS},
        help_text="Optional: a holiday calendar source (iCal or Google) whose days are closed.",
    )

    class Meta:
        ordering = ["name"]
        db_table = "escalation_tier"  # the table keeps the name it had when the engine owned tiers

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> ZoneInfo:
        return zone_or_utc(self.time_zone)

    def clean(self):
        errors = {}
        try:
            zone_check(self.time_zone)
        except ValueError as exc:
            errors["time_zone"] = str(exc)
        if self.business_hours in ({}, [], ""):
            self.business_hours = None
        try:
            self.business_hours = weekly_normalise(self.business_hours)
        except HoursError as exc:
            errors["business_hours"] = str(exc)
        problem = holiday_region_problem(self.holiday_country, self.holiday_subdivision)
        if problem:
            errors["holiday_subdivision" if "subdivision" in problem else "holiday_country"] = problem
        if errors:
            raise ValidationError(errors)


def holiday_region_problem(country: str, subdivision: str) -> str:
    """Why the holidays package cannot give this region's holidays, or '' when it can."""
    if not country:
        return "a holiday subdivision needs a country" if subdivision else ""
    supported = holidays.list_supported_countries()
    if country not in supported:
        return f'"{country}" is not a country the holidays package knows (ISO codes such as DE, US, GB)'
    if subdivision and subdivision not in supported[country]:
        return (f'"{subdivision}" is not a subdivision of {country} '
                f"(one of: {', '.join(supported[country][:40])})")
    return ""


class TierHoliday(models.Model):
    """A date entered by hand on which the tier is closed (its whole local day)."""

    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["tier", "date"]
        constraints = [models.UniqueConstraint(fields=["tier", "date"], name="uniq_tier_holiday_date")]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}".strip()


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
