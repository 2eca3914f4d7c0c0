"""Who an escalation level notifies: answered from the database, never the network.

``resolve_target`` is the one function the escalation engine calls. It reads:

- ``on_shift(at)``: support engineers whose shift interval (synced from the
  shift calendars by calendars/sync.py) covers ``at``. With no active shift
  calendar configured, every active support engineer counts as on shift.
- ``embedded(at)``: engineer id -> product team, from the embedded-support
  calendars.
- ``RosterOverride`` rows (the admin's roster and overrides) beat both: on or
  off shift, embedded in a product or not. When several cover ``at`` for one
  engineer, the one that started last wins.

A target that resolves to nobody falls through to the next wider audience,
and the resolution says so, so the message never silently pings no one.
When a calendar the answer depended on has not synced successfully for
CALENDAR_STALE_AFTER_MINUTES, ``Resolution.warnings`` says the roster may be
out of date (and ``.note`` carries it into the message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from calendars.models import (
    CalendarInterval,
    CalendarSource,
    Engineer,
    OverrideKind,
    Purpose,
    Role,
    RosterOverride,
)
from calendars.targets import LABELS, LADDER, TargetKind

# Which calendars each kind's answer depends on (for the stale-calendar guard).
CALENDARS_READ = {
    TargetKind.ON_SHIFT_NOT_EMBEDDED: (Purpose.SHIFTS, Purpose.EMBEDDED),
    TargetKind.ON_SHIFT: (Purpose.SHIFTS,),
}


@dataclass(frozen=True)
class Person:
    name: str
    slack_user_id: str


@dataclass
class Resolution:
    """Whom to mention, and why if it is not what the step asked for."""

    kind: str  # the kind that actually resolved to someone ("" if nobody at all)
    people: list[Person] = field(default_factory=list)
    user_group_id: str = ""
    fell_through_from: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def mentions(self) -> list[str]:
        if self.user_group_id:
            return [f"<!subteam^{self.user_group_id}>"]
        return [f"<@{p.slack_user_id}>" for p in self.people]

    @property
    def notified(self) -> list[dict[str, str]]:
        """What the escalation row stores as 'whom it notified'."""
        if self.user_group_id:
            return [{"user_group": self.user_group_id}]
        return [{"name": p.name, "slack_user_id": p.slack_user_id} for p in self.people]

    @property
    def note(self) -> str:
        """A sentence for the message when the step's own target was empty or the roster is stale."""
        parts = [f"Nobody resolved for {LABELS.get(k, k)}." for k in self.fell_through_from]
        if not self.mentions:
            parts.append("Nobody could be resolved at all: check the roster in the admin.")
        return " ".join(parts + self.warnings)


# --- The roster at a moment ---------------------------------------------------


@dataclass
class RosterLine:
    """One support engineer's state at a moment, with where it came from (for the admin)."""

    engineer: Engineer
    on_shift: bool
    shift_reason: str
    embedded_in: str = ""
    embedded_reason: str = ""

    @property
    def summary(self) -> str:
        text = f"on shift ({self.shift_reason})" if self.on_shift else f"off shift ({self.shift_reason})"
        if self.embedded_in:
            text += f", embedded in {self.embedded_in} ({self.embedded_reason})"
        return text


def _support_engineers():
    return Engineer.objects.filter(active=True, role=Role.SUPPORT_ENGINEER)


def _covering(queryset, at: datetime):
    return queryset.filter(starts_at__lte=at).filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at))


def _covers(row, at: datetime) -> bool:
    return row.starts_at <= at and (row.ends_at is None or row.ends_at > at)


def roster_lines(*, engineers, shift_calendars: bool, intervals, overrides, at: datetime) -> list[RosterLine]:
    """The roster at ``at`` from rows already read (pure): ``intervals`` and ``overrides`` may
    cover more than ``at`` (a replay reads a whole month at once); only those covering it count."""
    lines = {
        e.pk: RosterLine(
            e,
            on_shift=not shift_calendars,
            shift_reason="no shift calendar" if not shift_calendars else "shift calendar",
        )
        for e in engineers
    }
    for interval in sorted((i for i in intervals if _covers(i, at)), key=lambda i: (i.starts_at, i.pk)):
        line = lines.get(interval.engineer_id)
        if line is None:
            continue
        if interval.purpose == Purpose.SHIFTS:
            line.on_shift, line.shift_reason = True, interval.source.name
        elif interval.product and interval.product not in line.embedded_in.split(", "):
            line.embedded_in = ", ".join(filter(None, [line.embedded_in, interval.product]))
            line.embedded_reason = interval.source.name
    # Overrides last, oldest first, so the one that started last has the final word.
    for override in sorted((o for o in overrides if _covers(o, at)), key=lambda o: (o.starts_at, o.pk)):
        line = lines.get(override.engineer_id)
        if line is None:
            continue
        reason = f"override{': ' + override.note if override.note else ''}"
        if override.kind in (OverrideKind.ON_SHIFT, OverrideKind.OFF_SHIFT):
            line.on_shift, line.shift_reason = override.kind == OverrideKind.ON_SHIFT, reason
        else:
            line.embedded_in = override.product if override.kind == OverrideKind.EMBEDDED else ""
            line.embedded_reason = reason
    return list(lines.values())


def _intervals(engineer_ids):
    # A row's purpose must still be its source's (the source may have been edited since the sync).
    return CalendarInterval.objects.filter(
        source__active=True, purpose=F("source__purpose"), engineer__in=engineer_ids
    ).select_related("source")


def _shift_calendars() -> bool:
    return CalendarSource.objects.filter(active=True, purpose=Purpose.SHIFTS).exists()


def roster_at(at: datetime) -> list[RosterLine]:
    """Every active support engineer at ``at``: on shift or not, embedded or not, and why.

    Four queries whatever the team size; no network.
    """
    engineers = list(_support_engineers().order_by("name", "pk"))
    ids = [e.pk for e in engineers]
    return roster_lines(
        engineers=engineers, shift_calendars=_shift_calendars(),
        intervals=list(_covering(_intervals(ids), at)),
        overrides=list(_covering(RosterOverride.objects.filter(engineer__in=ids), at)), at=at,
    )


class RosterHistory:
    """The roster over a stretch of time, read once (a handful of queries) and answered in
    memory: who was on shift, embedded or overridden at each moment of it (replays). The
    calendar intervals and overrides are the stored history (kept for
    CALENDAR_HISTORY_RETENTION_DAYS); engineers, their roles and the sources' active flags are
    as they are now."""

    def __init__(self, *, since: datetime, until: datetime):
        self.engineers = list(_support_engineers().order_by("name", "pk"))
        ids = [e.pk for e in self.engineers]
        overlapping = Q(starts_at__lt=until) & (Q(ends_at__isnull=True) | Q(ends_at__gt=since))
        self.shift_calendars = _shift_calendars()
        self.intervals = list(_intervals(ids).filter(overlapping))
        self.overrides = list(RosterOverride.objects.filter(engineer__in=ids).filter(overlapping))
        self.heads = list(Engineer.objects.filter(active=True, role=Role.HEAD_OF_SUCCESS).order_by("name"))
        self.by_id = {e.pk: e for e in Engineer.objects.filter(active=True)}
        # Rows by the UTC days they touch, so a moment looks only at that day's rows (long or
        # open-ended ones are always looked at).
        self._days: dict = {}
        self._long: list = []
        for row in [*self.intervals, *self.overrides]:
            end = row.ends_at or until
            if end - row.starts_at > timedelta(days=7):
                self._long.append(row)
                continue
            day = row.starts_at.astimezone(UTC).date()
            while day <= end.astimezone(UTC).date():
                self._days.setdefault(day, []).append(row)
                day += timedelta(days=1)

    def lines(self, at: datetime) -> list[RosterLine]:
        near = [*self._days.get(at.astimezone(UTC).date(), ()), *self._long]
        return roster_lines(engineers=self.engineers, shift_calendars=self.shift_calendars,
                            intervals=[r for r in near if isinstance(r, CalendarInterval)],
                            overrides=[r for r in near if isinstance(r, RosterOverride)], at=at)


def roster_now(at: datetime | None = None) -> list[RosterLine]:
    """The roster for the admin's "on shift now / embedded now" display."""
    return roster_at(at or timezone.now())


def on_shift(at: datetime) -> list[Engineer]:
    """Support engineers on shift at ``at``."""
    return [line.engineer for line in roster_at(at) if line.on_shift]


def embedded(at: datetime) -> dict[int, str]:
    """Engineer id -> product team, for engineers embedded at ``at``."""
    return {line.engineer.pk: line.embedded_in for line in roster_at(at) if line.embedded_in}


# --- Stale-calendar guard -------------------------------------------------------


def stale_sources(*, now: datetime | None = None, purposes=None) -> list[CalendarSource]:
    """Active sources whose last good sync is older than CALENDAR_STALE_AFTER_MINUTES."""
    now = now or timezone.now()
    sources = CalendarSource.objects.filter(active=True)
    if purposes is not None:
        sources = sources.filter(purpose__in=list(purposes))
    return [s for s in sources if s.is_stale(now)]


def stale_warnings(*, now: datetime | None = None, purposes=None) -> list[str]:
    warnings = []
    for source in stale_sources(now=now, purposes=purposes):
        if source.last_success_at is None:
            since = "has never synced successfully"
        else:
            since = f"last synced successfully {source.last_success_at:%Y-%m-%d %H:%M} UTC"
        warnings.append(f"Warning: the roster may be out of date (calendar “{source.name}” {since}).")
    return warnings


# --- Resolution -----------------------------------------------------------------


def _people(engineers) -> list[Person]:
    return [Person(e.name, e.slack_user_id) for e in engineers if e.slack_user_id]


def _resolve_one(kind: str, ref: str, engineer_id: int | None, at: datetime,
                 history: RosterHistory | None) -> Resolution:
    lines = (lambda: history.lines(at)) if history is not None else (lambda: roster_at(at))
    if kind == TargetKind.ON_SHIFT_NOT_EMBEDDED:
        chosen = (line.engineer for line in lines() if line.on_shift and not line.embedded_in)
        return Resolution(kind, _people(chosen))
    if kind == TargetKind.ON_SHIFT:
        return Resolution(kind, _people(line.engineer for line in lines() if line.on_shift))
    if kind == TargetKind.USER_GROUP:
        group = ref or settings.SLACK_SUPPORT_USERGROUP_ID
        return Resolution(kind, user_group_id=group or "")
    if kind == TargetKind.HEAD_OF_SUCCESS:
        if history is not None:
            return Resolution(kind, _people(history.heads))
        heads = Engineer.objects.filter(active=True, role=Role.HEAD_OF_SUCCESS).order_by("name")
        return Resolution(kind, _people(heads))
    if kind == TargetKind.ENGINEER:
        if history is not None:
            chosen = [history.by_id[engineer_id]] if engineer_id in history.by_id else []
            return Resolution(kind, _people(chosen))
        return Resolution(kind, _people(Engineer.objects.filter(pk=engineer_id, active=True)))
    if kind == TargetKind.PAGE:
        return Resolution(kind)  # a pager, not a person in Slack: falls through like an empty target
    raise ValueError(f"unknown target kind {kind!r}")


def resolve_target(*, kind: str, ref: str = "", engineer_id: int | None = None, at: datetime,
                   history: RosterHistory | None = None) -> Resolution:
    """Resolve a step's target at ``at``, falling through to wider audiences. ``history``: answer
    from a roster read beforehand for a stretch of the past (a replay), without the stale-calendar
    warnings, which are about now."""
    tried: list[str] = []
    # A specific engineer falls through to the head of success; ladder kinds to the wider ones.
    chain = [kind] + (
        list(LADDER[LADDER.index(kind) + 1 :]) if kind in LADDER else [TargetKind.HEAD_OF_SUCCESS]
    )
    resolution = Resolution("")
    for candidate in chain:
        found = _resolve_one(candidate, ref if candidate == kind else "", engineer_id, at, history)
        if found.mentions:
            resolution = found
            break
        tried.append(candidate)
    resolution.fell_through_from = tried
    # Staleness is judged now (when the message goes out), for the calendars this answer read.
    purposes = {p for k in tried + [resolution.kind] for p in CALENDARS_READ.get(k, ())}
    if purposes and history is None:
        resolution.warnings = stale_warnings(purposes=purposes)
    return resolution
