"""The engineer roster, calendar sources, synced calendar intervals and admin overrides.

Calendars are synced into ``CalendarInterval`` rows (calendars/sync.py) so that
resolving who to notify (calendars/resolve.py) never waits on the network.
All datetimes are aware and stored in UTC.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from calendars.feed_address import ical_url_problem
from calendars.patterns import DEFAULT_TITLE_PATTERNS, compile_patterns


class Role(models.TextChoices):
    SUPPORT_ENGINEER = "support_engineer", "Support engineer"
    HEAD_OF_SUCCESS = "head_of_success", "Head of success"
    OTHER = "other", "Other"


class Engineer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True, null=True, blank=True)
    slack_user_id = models.CharField(
        max_length=32, unique=True, null=True, blank=True, help_text="U… (mentioned as <@U…>)"
    )
    display_name = models.CharField(
        max_length=200, blank=True, help_text="Slack display name (read by /sla add-engineer)."
    )
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.SUPPORT_ENGINEER)
    active = models.BooleanField(default=True)
    is_admin = models.BooleanField(
        "admin",
        default=False,
        help_text="May change SLA Buddy's configuration from Slack (/sla setup, /sla add-engineer).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # Blank strings would collide on the unique constraints; store NULL.
        self.email = self.email or None
        self.slack_user_id = self.slack_user_id or None
        super().save(*args, **kwargs)


class Purpose(models.TextChoices):
    SHIFTS = "shifts", "Shifts (who is on shift)"
    EMBEDDED = "embedded", "Embedded support (who is with a product team)"
    HOLIDAYS = "holidays", "Holidays (days a tier is closed)"


class SourceKind(models.TextChoices):
    GOOGLE = "google", "Google Calendar (service account)"
    ICAL = "ical", "iCal feed URL"


class CalendarSource(models.Model):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    active = models.BooleanField(default=True, help_text="Inactive sources are neither synced nor used.")
    google_calendar_id = models.CharField(
        max_length=300,
        blank=True,
        help_text="Google Calendar: the calendar id (…@group.calendar.google.com).",
    )
    google_subject = models.EmailField(
        blank=True,
        help_text="Google Calendar, optional: the user the service account acts as (domain-wide delegation).",
    )
    ical_url = models.CharField(
        max_length=2000,
        blank=True,
        help_text=(
            "iCal feed: https:// or webcal:// address (for example Google's secret iCal address). "
            "http:// needs CALENDAR_ALLOW_HTTP, an address inside your network "
            "CALENDAR_ALLOW_PRIVATE_ADDRESSES."
        ),
    )
    title_patterns = models.TextField(
        blank=True,
        help_text=(
            "One pattern a line, tried in order, used when no attendee email matches an engineer. "
            "{name} is the engineer (name, first name or email user), {product} the product team. "
            "Empty: the defaults for the purpose ('Shift: {name}' / 'Embedded: {name} ({product})', ...)."
        ),
    )
    default_product = models.CharField(
        max_length=100,
        blank=True,
        help_text="Embedded sources: the product team when the title names none (e.g. a per-team calendar).",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        help_text="Time zone for all-day and floating events when the calendar does not say (IANA name).",
    )
    # Sync status, written by calendars/sync.py.
    last_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_event_count = models.PositiveIntegerField(default=0, editable=False)
    last_unmatched_count = models.PositiveIntegerField(default=0, editable=False)
    sync_warnings = models.TextField(
        blank=True,
        editable=False,
        help_text="What the last sync had to skip (a series it could not read keeps its last good data).",
    )

    class Meta:
        ordering = ["purpose", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = {}
        if self.kind == SourceKind.GOOGLE and not self.google_calendar_id.strip():
            errors["google_calendar_id"] = "A Google Calendar source needs its calendar id."
        if self.kind == SourceKind.ICAL:
            problem = ical_url_problem(self.ical_url.strip())
            if problem:
                errors["ical_url"] = problem[0].upper() + problem[1:] + "."
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = (
                f"Unknown time zone {self.time_zone!r} (use an IANA name like Europe/Berlin)."
            )
        try:
            compile_patterns(self.patterns())
        except ValueError as exc:
            errors["title_patterns"] = str(exc)
        if errors:
            raise ValidationError(errors)

    def patterns(self) -> list[str]:
        own = [line.strip() for line in self.title_patterns.splitlines() if line.strip()]
        return own or list(DEFAULT_TITLE_PATTERNS.get(str(self.purpose), ()))  # holidays: none

    def is_stale(self, now: datetime) -> bool:
        """True when the last good sync is older than CALENDAR_STALE_AFTER_MINUTES (or never happened)."""
        limit = now - timedelta(minutes=settings.CALENDAR_STALE_AFTER_MINUTES)
        return self.last_success_at is None or self.last_success_at < limit


class HolidayDate(models.Model):
    """A closed day read from a holiday calendar source (an all-day event; DTEND = DTSTART is one day)."""

    source = models.ForeignKey(CalendarSource, on_delete=models.CASCADE, related_name="holiday_dates")
    date = models.DateField()
    name = models.CharField(max_length=500, blank=True)
    synced_at = models.DateTimeField()

    class Meta:
        ordering = ["source", "date"]
        constraints = [models.UniqueConstraint(fields=["source", "date"], name="uniq_holiday_source_date")]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}".strip()


class MatchedBy(models.TextChoices):
    EMAIL = "email", "Attendee email"
    TITLE = "title", "Title pattern"
    NOBODY = "", "Nobody"


class CalendarInterval(models.Model):
    """One calendar event occurrence for one engineer (or for nobody: unmatched)."""

    source = models.ForeignKey(CalendarSource, on_delete=models.CASCADE, related_name="intervals")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)  # copied from the source at sync
    engineer = models.ForeignKey(
        Engineer, on_delete=models.SET_NULL, null=True, blank=True, related_name="calendar_intervals"
    )
    product = models.CharField(max_length=100, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    all_day = models.BooleanField(default=False)
    title = models.CharField(max_length=500, blank=True)
    event_id = models.CharField(max_length=500, blank=True)
    attendees = models.TextField(blank=True, help_text="Attendee emails, comma-separated.")
    matched_by = models.CharField(max_length=8, choices=MatchedBy.choices, blank=True)
    unmatched_name = models.CharField(
        max_length=200, blank=True, help_text="The name in the title that matched no engineer."
    )
    synced_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at", "source_id", "pk"]
        indexes = [
            models.Index(fields=["purpose", "starts_at", "ends_at"], name="cal_interval_lookup"),
            models.Index(fields=["source", "ends_at"], name="cal_interval_window"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="cal_interval_ends_after"
            )
        ]

    def __str__(self) -> str:
        return f"{self.title or '(no title)'} {self.starts_at:%Y-%m-%d %H:%M}"


class UnmatchedManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(engineer__isnull=True)


class UnmatchedEvent(CalendarInterval):
    """Admin view of synced events that matched no engineer, so someone can fix the roster."""

    objects = UnmatchedManager()

    class Meta:
        proxy = True
        verbose_name = "unmatched calendar event"


class OverrideKind(models.TextChoices):
    ON_SHIFT = "on_shift", "On shift"
    OFF_SHIFT = "off_shift", "Off shift"
    EMBEDDED = "embedded", "Embedded with a product team"
    NOT_EMBEDDED = "not_embedded", "Not embedded"


class RosterOverride(models.Model):
    """An admin decision that beats the calendars while it lasts.

    Also the embedded-support roster: an open-ended ``embedded`` entry says
    "Alice is with Storage until further notice".
    """

    engineer = models.ForeignKey(Engineer, on_delete=models.CASCADE, related_name="overrides")
    kind = models.CharField(max_length=16, choices=OverrideKind.choices)
    product = models.CharField(max_length=100, blank=True, help_text="The product team, for 'embedded'.")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until further notice.")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-pk"]
        verbose_name = "roster override"
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="roster_override_ends_after",
            )
        ]

    def __str__(self) -> str:
        what = (
            f"embedded in {self.product}" if self.kind == OverrideKind.EMBEDDED else self.get_kind_display()
        )
        return f"{self.engineer}: {what}"

    def clean(self):
        errors = {}
        if self.kind == OverrideKind.EMBEDDED and not self.product.strip():
            errors["product"] = "Name the product team the engineer is embedded with."
        if self.kind != OverrideKind.EMBEDDED and self.product:
            errors["product"] = "Only 'embedded' overrides name a product."
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The end must be after the start."
        if errors:
            raise ValidationError(errors)
