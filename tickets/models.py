"""Tiers, watched channels, tickets and each ticket's timeline: rows, no Slack I/O."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import holidays
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce

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


DEFAULT_CLOSE_REACTION = "white_check_mark"
DEFAULT_WAITING_REACTION = "hourglass_flowing_sand"


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
    close_reaction = models.CharField(
        max_length=64, blank=True,
        help_text=f"Emoji name (no colons) a roster engineer adds to a ticket to close it; blank: "
        f"{DEFAULT_CLOSE_REACTION}.",
    )
    waiting_reaction = models.CharField(
        max_length=64, blank=True,
        help_text=f"Emoji name (no colons) a roster engineer adds to a ticket to mark it waiting on the "
        f"customer (removing it resumes); blank: {DEFAULT_WAITING_REACTION}.",
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

    @property
    def close_emoji(self) -> str:
        return reaction_name(self.close_reaction) or DEFAULT_CLOSE_REACTION

    @property
    def waiting_emoji(self) -> str:
        return reaction_name(self.waiting_reaction) or DEFAULT_WAITING_REACTION


def reaction_name(value: str) -> str:
    """``:white_check_mark:`` or ``white_check_mark`` -> ``white_check_mark`` (Slack's reaction name)."""
    return (value or "").strip().strip(":").strip()


class TicketState(models.TextChoices):
    ARMED = "armed", "Armed (awaiting a response)"
    WAITING = "waiting", "Waiting on the customer (clock paused)"
    RESPONDED = "responded", "Responded"
    CLOSED = "closed", "Closed"
    NO_POLICY = "no_policy", "No SLA policy for its tier"
    EXCLUDED = "excluded", "Not escalated (its type is excluded by the policy)"


# A ticket with a cycle awaiting a response (its levels pending, or paused while waiting).
LIVE_STATES = (TicketState.ARMED, TicketState.WAITING)


class ResponsePath(models.TextChoices):
    SLACK_THREAD = "slack_thread", "Reply in the Slack thread"
    ZENDESK = "zendesk", "Zendesk first reply"
    FRESHDESK = "freshdesk", "Freshdesk first reply"
    WEBHOOK = "webhook", "Helpdesk webhook"
    ADMIN = "admin", "Marked in the admin"


class TicketVia(models.TextChoices):
    """How a ticket was closed, paused or resumed (for the timeline, the thread and reports)."""

    BUTTON = "button", "A button on an escalation message"
    REACTION = "reaction", "A reaction on the ticket"
    HELPDESK = "helpdesk", "The helpdesk's status"
    DELETED = "deleted", "Its Slack message was deleted"
    CUSTOMER = "customer", "The customer wrote in the thread"
    RESPONSE = "response", "A response"
    CLOSE = "close", "The ticket was closed"


# How a close is said, after "closed" (the thread's messages, the admin).
CLOSED_HOW = {
    TicketVia.HELPDESK: "in the helpdesk",
    TicketVia.DELETED: "(its message was deleted)",
    TicketVia.REACTION: "with a reaction",
    TicketVia.BUTTON: "with the Close button",
}


def _first(field: str, value):
    """Keep a first-response field once set: the first response is the ticket's, later ones are cycles'."""
    return Case(When(responded_at__isnull=True, then=Value(value)), default=F(field))


class TicketQuerySet(models.QuerySet):
    """The ticket's state changes, each one conditional update: True if this call made it."""

    def mark_no_policy(self, *, pk: int) -> bool:
        return bool(self.filter(pk=pk, state=TicketState.ARMED).update(state=TicketState.NO_POLICY))

    def mark_excluded(self, *, pk: int) -> bool:
        return bool(self.filter(pk=pk, state=TicketState.ARMED).update(state=TicketState.EXCLUDED))

    def mark_responded(self, *, pk: int, at, path: str, actor: str) -> bool:
        """Answered (also while waiting). ``responded_at``/``response_path``/``responded_by`` keep
        the FIRST response; a next-response cycle records its own on the cycle."""
        return bool(
            self.filter(
                pk=pk,
                state__in=[*LIVE_STATES, TicketState.NO_POLICY, TicketState.EXCLUDED],
            ).update(
                state=TicketState.RESPONDED,
                waiting_since=None,
                responded_at=Coalesce(F("responded_at"), Value(at, output_field=models.DateTimeField())),
                response_path=_first("response_path", path),
                responded_by=_first("responded_by", actor),
            )
        )

    def mark_waiting(self, *, pk: int, at) -> bool:
        return bool(
            self.filter(pk=pk, state=TicketState.ARMED).update(state=TicketState.WAITING, waiting_since=at)
        )

    def mark_resumed(self, *, pk: int) -> bool:
        return bool(
            self.filter(pk=pk, state=TicketState.WAITING).update(state=TicketState.ARMED, waiting_since=None)
        )

    def mark_closed(self, *, pk: int, at, via: str, actor: str) -> bool:
        return bool(
            self.filter(pk=pk, state__in=[*LIVE_STATES, TicketState.RESPONDED]).update(
                state=TicketState.CLOSED, closed_at=at, closed_via=via, closed_by=actor, waiting_since=None
            )
        )

    def note_helpdesk_status(self, *, pk: int, was: str, now: str) -> bool:
        """The helpdesk reported a new status: True for the one call that saw it change."""
        return bool(self.filter(pk=pk, helpdesk_status=was).update(helpdesk_status=now))

    def mark_rearmed(self, *, pk: int) -> bool:
        """A next-response cycle starts: after a response, or reopened after a close."""
        return bool(
            self.filter(pk=pk, state__in=[TicketState.RESPONDED, TicketState.CLOSED]).update(
                state=TicketState.ARMED, closed_at=None, closed_via="", closed_by=""
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
    responded_at = models.DateTimeField(
        null=True, blank=True, help_text="The first response (a next-response cycle keeps its own)."
    )
    response_path = models.CharField(max_length=16, choices=ResponsePath.choices, blank=True)
    responded_by = models.CharField(max_length=200, blank=True)
    waiting_since = models.DateTimeField(
        null=True, blank=True, help_text="Waiting on the customer since then (its levels are paused)."
    )
    closed_at = models.DateTimeField(null=True, blank=True, help_text="Closed without a further reply then.")
    closed_via = models.CharField(max_length=16, choices=TicketVia.choices, blank=True)
    closed_by = models.CharField(max_length=200, blank=True)
    helpdesk_status = models.CharField(
        max_length=16, blank=True,
        help_text="The helpdesk's status as last reported (open, waiting, closed): its changes close, pause, "
        "resume or start a next-response cycle.",
    )
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
    PAUSED = "paused", "Waiting on customer"
    RESUMED = "resumed", "Resumed"
    CLOSED = "closed", "Closed"
    CYCLE_STARTED = "cycle_started", "Next-response cycle"
    DUPLICATE_DELETED = "duplicate_gone", "Duplicate message deleted"
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
