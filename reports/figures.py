"""The SLA report's figures: one implementation for the report page, its CSVs, ``sla_report`` and the
weekly digest.

Scope: the tickets OPENED in [since, until] (whole local days of each tier's time zone), filtered by
tier, priority and channel. Every figure of a ticket (its response, its levels, snoozes, pauses,
next-response cycles) is counted in the week the ticket opened, Monday-based in the tier's zone.

Definitions are the engine's (and ``/metrics``' and the admin's Breached filter):
- answered: the ticket's first response (``Ticket.responded_at``); met: it came at or before the
  ticket's breach time (``TicketSla.breach_at``): ``escalation.breach.on_time_q``, the definition the
  replay (``on_time``) and ``/metrics`` share; i.e. not breached by ``escalation.breach.breached_q``.
  Attainment = met / answered, over answered tickets that have a target. Tickets closed without a
  reply (their first cycle closed, no response) and tickets still open are counted apart.
- time to first response: wall time ``responded_at - opened_at`` over every answered ticket, and the
  same on the policy's clock (``escalation.planning.ticket_armed_clock``: the clock and hours the
  ticket was armed with, the code arming uses). Percentiles are ``percentile_cont`` (interpolated).
- next-response attainment: next-response cycles (``TicketCycle`` kind next) answered at or before
  their own breach time, over those answered with a target.
- levels fired / failed: ``Escalation`` rows in state fired / failed, per level, every cycle.
- snoozes: applied ``SnoozeRequest`` rows; pauses: ``TicketPause`` rows.
- pages per engineer: each engineer a fired level mentioned (``Escalation.notified``); outside
  business hours: the level fired when the tier's hours (``tickets.tier_hours``, ``clock.open_at``)
  were closed. A tier without business hours is always open, so none of its pages are outside.

Counting is done by the database (grouped COUNTs; ``percentile_cont`` on PostgreSQL). What SQL cannot
do is done in Python, on as few rows as possible: a business clock's open time between two moments
(only for groups that hold business-clock tickets), interpolated percentiles on SQLite (the
development database), and whether a page fell outside hours.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial

from django.db import DatabaseError, connection, transaction
from django.db.models import (
    Aggregate,
    BooleanField,
    Case,
    CharField,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncWeek

from escalation.breach import answered_with_target_q, breached_q, on_time_q, passed_before_q
from escalation.clock import BusinessClock, ClockKind, open_at
from escalation.models import CycleKind, Escalation, SnoozeRequest, TicketCycle, TicketPause, TicketSla
from escalation.planning import ticket_armed_clock
from escalation.transitions import EscalationState
from reports.open_time import OpenTimeIndex
from tickets.hours import OpenHours
from tickets.models import Ticket, Tier
from tickets.tier_hours import tier_open_hours

logger = logging.getLogger(__name__)

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Time to first response buckets (upper bounds, seconds) for its distribution chart.
TTFR_BUCKETS = (600, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600)


@dataclass(frozen=True)
class ReportFilters:
    since: date
    until: date  # inclusive
    tier: str = ""  # tier name; blank: every tier
    priority: str = ""
    channel: str = ""  # Slack channel id (C…) or name (#support-acme); blank: every channel

    def __post_init__(self):
        if self.until < self.since:
            raise ValueError("until is before since")


@dataclass
class Report:
    filters: dict
    generated_at: str
    totals: list[dict] = field(default_factory=list)  # one row per tier, the whole range
    weeks: list[dict] = field(default_factory=list)  # one row per tier and week
    levels: list[dict] = field(default_factory=list)  # tier, week, level: fired, failed
    engineers: list[dict] = field(default_factory=list)  # engineer: pages, outside hours
    heatmap: list[dict] = field(default_factory=list)  # tier, weekday, hour: tickets opened
    ttfr_distribution: list[dict] = field(default_factory=list)  # tier, bucket: tickets

    def as_dict(self) -> dict:
        return asdict(self)


SECTIONS = ("totals", "weeks", "levels", "engineers", "heatmap", "ttfr_distribution")
FIGURE_COLUMNS = (
    "opened",
    "answered",
    "met",
    "attainment",
    "closed_without_reply",
    "still_open",
    "breached",
    "ttfr_wall_p50_s",
    "ttfr_wall_p90_s",
    "ttfr_clock_p50_s",
    "ttfr_clock_p90_s",
    "next_cycles",
    "next_answered",
    "next_met",
    "next_attainment",
    "levels_fired",
    "levels_failed",
    "snoozes",
    "pauses",
)


# --- SQL pieces ----------------------------------------------------------------------------------


class Seconds(Func):
    """Seconds between two datetimes, as a float (NULL when either is NULL)."""

    output_field = FloatField()

    def __init__(self, end, start, **extra):
        super().__init__(end, start, **extra)

    def as_sql(self, compiler, conn, **extra):  # pragma: no cover - vendor dispatch below
        raise NotImplementedError(conn.vendor)

    def as_postgresql(self, compiler, conn, **extra):
        return self.as_sql_template(compiler, conn, "EXTRACT(EPOCH FROM (%(expressions)s))", " - ")

    def as_sqlite(self, compiler, conn, **extra):
        # julianday is a float of days: rounded to the millisecond so that 30 min is 1800.0, not 1799.99
        return self.as_sql_template(
            compiler, conn, "ROUND((julianday(%(expressions)s)) * 86400.0, 3)", ") - julianday("
        )

    def as_sql_template(self, compiler, conn, template, joiner):
        return Func.as_sql(self, compiler, conn, template=template, arg_joiner=joiner)


class Epoch(Func):
    """A datetime as seconds since 1970 (a float), so that many rows need no datetime each."""

    output_field = FloatField()

    def as_sql(self, compiler, conn, **extra):  # pragma: no cover - vendor dispatch below
        raise NotImplementedError(conn.vendor)

    def as_postgresql(self, compiler, conn, **extra):
        # date_part, not EXTRACT: EXTRACT is numeric since PostgreSQL 14 (slower per row, then cast);
        # date_part divides the microseconds by 10^6 in float, the same correctly rounded value
        return Func.as_sql(self, compiler, conn, template="date_part('epoch', %(expressions)s)")

    def as_sqlite(self, compiler, conn, **extra):
        return Func.as_sql(
            self, compiler, conn, template="ROUND((julianday(%(expressions)s) - 2440587.5) * 86400.0, 3)"
        )


class WeekInZone(Func):
    """The start of a moment's week (Monday) in a time zone read from a column (each row its tier's),
    as a local datetime: ``TruncWeek`` for rows of several tiers in one query."""

    output_field = DateTimeField()

    def __init__(self, moment, zone, **extra):
        super().__init__(moment, zone, **extra)

    def as_sql(self, compiler, conn, **extra):  # pragma: no cover - vendor dispatch below
        raise NotImplementedError(conn.vendor)

    def as_postgresql(self, compiler, conn, **extra):
        return Func.as_sql(
            self, compiler, conn, template="DATE_TRUNC('week', %(expressions)s)", arg_joiner=" AT TIME ZONE "
        )

    def as_sqlite(self, compiler, conn, **extra):  # Django's own function behind TruncWeek on SQLite
        template = "django_datetime_trunc('week', %(expressions)s, %%s)"
        sql, params = Func.as_sql(self, compiler, conn, template=template, arg_joiner=", ")
        return sql, (*params, conn.timezone_name)


class PartInZone(Func):
    """A part of a moment (``isodow``: ISO weekday 1-7, or ``hour``) in a time zone read from a column
    (each row its tier's): ``ExtractIsoWeekDay`` / ``ExtractHour`` for rows of several tiers."""

    output_field = IntegerField()
    _SQLITE = {"isodow": "iso_week_day", "hour": "hour"}  # Django's names behind Extract on SQLite

    def __init__(self, part: str, moment, zone, **extra):
        if part not in self._SQLITE:
            raise ValueError(part)
        self.part = part
        super().__init__(moment, zone, **extra)

    def as_sql(self, compiler, conn, **extra):  # pragma: no cover - vendor dispatch below
        raise NotImplementedError(conn.vendor)

    def as_postgresql(self, compiler, conn, **extra):
        # date_part: the float form of EXTRACT (numeric since PostgreSQL 14, slower per row); both
        # parts are whole numbers, so the same integers
        template = f"date_part('{self.part}', %(expressions)s)::integer"
        return Func.as_sql(self, compiler, conn, template=template, arg_joiner=" AT TIME ZONE ")

    def as_sqlite(self, compiler, conn, **extra):  # Django's own function behind Extract on SQLite
        template = f"django_datetime_extract('{self._SQLITE[self.part]}', %(expressions)s, %%s)"
        sql, params = Func.as_sql(self, compiler, conn, template=template, arg_joiner=", ")
        return sql, (*params, conn.timezone_name)


class PercentileCont(Aggregate):
    """PostgreSQL's interpolated percentile of an expression over the group (NULLs ignored)."""

    function = "percentile_cont"
    output_field = FloatField()
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, *, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def percentile(values: list[float], fraction: float) -> float | None:
    """Interpolated percentile of sorted values: the same as PostgreSQL's ``percentile_cont``."""
    if not values:
        return None
    k = (len(values) - 1) * fraction
    low, high = math.floor(k), math.ceil(k)
    return values[low] + (values[high] - values[low]) * (k - low)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


# --- scope ---------------------------------------------------------------------------------------


def report_tiers(filters: ReportFilters) -> list[Tier]:
    tiers = Tier.objects.order_by("name")
    return list(tiers.filter(name=filters.tier) if filters.tier else tiers)


def tier_range(tier: Tier, filters: ReportFilters) -> tuple[datetime, datetime]:
    """[start, end) of the filter's days in the tier's time zone, in UTC."""
    zone = tier.zone
    start = datetime.combine(filters.since, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(filters.until + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def tier_scope(tier: Tier, filters: ReportFilters, *, prefix: str = "") -> Q:
    """The report's tickets in one tier, as a condition on Ticket (``prefix`` "ticket__": on a row
    of the ticket, such as a level, so that it is one join and not a subquery)."""
    start, end = tier_range(tier, filters)
    p = prefix
    scope = Q(**{f"{p}channel__tier": tier, f"{p}opened_at__gte": start, f"{p}opened_at__lt": end})
    if filters.priority:
        scope &= Q(**{f"{p}priority": filters.priority})
    if filters.channel:
        name = filters.channel.lstrip("#")
        scope &= Q(**{f"{p}channel__slack_channel_id": filters.channel}) | Q(**{f"{p}channel__name": name})
    return scope


def tier_tickets(tier: Tier, filters: ReportFilters) -> QuerySet[Ticket]:
    """The tickets of the report in one tier."""
    return Ticket.objects.filter(tier_scope(tier, filters))


def _week(tier: Tier, field_name: str = "opened_at") -> TruncWeek:
    return TruncWeek(field_name, tzinfo=tier.zone)


def _week_key(value) -> str:
    if isinstance(value, float):  # ``_week_epoch``: the local week start as if it were UTC
        return datetime.fromtimestamp(value, UTC).date().isoformat()
    return value.date().isoformat() if isinstance(value, datetime) else str(value)


def _week_epoch(tier: Tier, field_name: str = "opened_at") -> Epoch:
    """The week of a row as a float (``_week_key`` reads it): for reading 10,000s of rows, where an
    aware datetime per row costs more than the rest of the row."""
    return Epoch(_week(tier, field_name))


# --- per tier (and week) figures -----------------------------------------------------------------


def _first_cycle_closed() -> Subquery:
    return Subquery(TicketCycle.objects.filter(ticket=OuterRef("pk"), number=1).values("closed_at")[:1])


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _first_cycle(tickets: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Join each ticket's first response cycle as ``first_cycle`` (a LEFT JOIN, not a subquery per row)."""
    return tickets.annotate(first_cycle=FilteredRelation("cycles", condition=Q(cycles__number=1)))


def breached_by_join(now: datetime) -> Q:
    """``escalation.breach.breached_q`` over a ``_first_cycle`` join: the breach time passed before the
    first response, the close without one, the wait on the customer it is in, or now. The same
    condition; over 100,000 tickets a join is many times cheaper than an EXISTS per ticket (the
    tests check that both count the same tickets)."""
    deadline = Coalesce(
        "responded_at", "first_cycle__closed_at", "waiting_since", Value(now, output_field=DateTimeField())
    )
    return passed_before_q(deadline)


def _ticket_counts(tiers: list[Tier], filters: ReportFilters, *, now: datetime) -> dict[int, dict[str, dict]]:
    """Per tier and week: opened, answered, met, closed without reply, still open, breached, the TTFR
    buckets (and on PostgreSQL the wall percentiles). One query for every tier (the snapshots and
    first cycles are joined once), each ticket's week in its own tier's zone."""
    if not tiers:
        return {}
    scope = Q()
    for tier in tiers:
        scope |= tier_scope(tier, filters)
    group = {"tier": F("channel__tier"), "week": WeekInZone("opened_at", _tier_zone(tiers, "channel__tier"))}
    found: dict[int, dict[str, dict]] = defaultdict(dict)
    for row in _counts_grouped(Ticket.objects.filter(scope), group, now=now):
        found[row["tier"]][_week_key(row["week"])] = row
    return found


def _counts_grouped(tickets: QuerySet[Ticket], group: dict, *, now: datetime) -> list[dict]:
    has_sla = Q(sla__isnull=False)
    unanswered = Q(responded_at__isnull=True) & has_sla
    rows = (
        _first_cycle(tickets)
        .annotate(waited=_waited(), **group)
        .values(*group)
        .annotate(
            **_ttfr_bucket_counts(),
            opened=Count("id"),
            answered=Count("id", filter=answered_with_target_q()),
            met=Count("id", filter=on_time_q()),
            closed_without_reply=Count("id", filter=unanswered & Q(first_cycle__closed_at__isnull=False)),
            still_open=Count("id", filter=unanswered & Q(first_cycle__closed_at__isnull=True)),
            breached=Count("id", filter=breached_by_join(now)),
            **(
                {
                    "wall_p50": PercentileCont(Seconds(F("responded_at"), F("opened_at")), fraction=0.5),
                    "wall_p90": PercentileCont(Seconds(F("responded_at"), F("opened_at")), fraction=0.9),
                }
                if _postgres()
                else {}
            ),
        )
        .order_by()
    )
    return list(rows)


def _answered_on_business_clock() -> Q:
    return Q(responded_at__isnull=False, sla__clock=ClockKind.BUSINESS, sla__hours__isnull=False)


def _waited():
    """Time to first response, for the TTFR buckets. On PostgreSQL an interval, compared with
    intervals: the same comparisons as on its seconds (exact, to the microsecond), without the
    numeric ``EXTRACT(EPOCH ...)`` of every bound of every bucket of 100,000 rows (a third of the
    weekly counts query, measured with EXPLAIN ANALYZE). On SQLite its seconds (``Seconds``)."""
    if _postgres():
        return ExpressionWrapper(F("responded_at") - F("opened_at"), output_field=DurationField())
    return Seconds(F("responded_at"), F("opened_at"))


def _ttfr_bucket_counts() -> dict[str, Count]:
    """Answered tickets per bucket of time to first response (``TTFR_BUCKETS``), over ``waited``
    (``_waited``)."""
    bound = (lambda seconds: timedelta(seconds=seconds)) if _postgres() else (lambda seconds: seconds)
    bounds = (0, *TTFR_BUCKETS, None)
    aggregates = {}
    for i in range(len(bounds) - 1):
        low, high = bounds[i], bounds[i + 1]
        condition = Q(waited__gte=bound(low)) if i else Q(waited__isnull=False)
        if high is not None:
            condition &= Q(waited__lt=bound(high))
        aggregates[f"b{i}"] = Count("id", filter=condition)
    return aggregates


_BUCKETS = tuple(f"b{i}" for i in range(len(TTFR_BUCKETS) + 1))


def _armed_business_hours(tiers: list[Tier], filters: ReportFilters) -> dict[int, list]:
    """Per tier, the distinct hours its answered business-clock tickets were armed with: one query for
    every tier (a tier without such tickets needs no business reads)."""
    if not tiers:
        return {}
    scope = Q()
    for tier in tiers:
        scope |= tier_scope(tier, filters)
    found: dict[int, list] = defaultdict(list)
    business = Ticket.objects.filter(scope).filter(_answered_on_business_clock())
    for tier_pk, hours in business.values_list("channel__tier", "sla__hours").distinct().order_by():
        found[tier_pk].append(hours)
    return found


def _business_seconds(answered: QuerySet[Ticket], group: dict, armed: list) -> dict[str, list[float]]:
    """Open seconds from opening to first response of the business-clock tickets, per group key.

    Tickets armed with the same hours (``armed``: each distinct value, ``_armed_business_hours``) share
    one clock (``ticket_armed_clock``) and one index of its open stretches over the span they need;
    the JSON of the hours is read once per distinct value, and the moments are read as epoch seconds
    (no datetime per row)."""
    business = answered.filter(_answered_on_business_clock())
    found: dict[str, list[float]] = defaultdict(list)
    for hours in armed:
        clock = ticket_armed_clock(TicketSla(clock=ClockKind.BUSINESS, hours=hours))
        rows = list(
            business.filter(sla__hours=hours)
            .annotate(opened=Epoch("opened_at"), responded=Epoch("responded_at"), **group)
            .values_list("week", "opened", "responded")
            .order_by()
        )
        if not rows:
            continue
        if not isinstance(clock, BusinessClock):  # hours that are always open: the calendar
            for week, opened, responded in rows:
                found[_week_key(week)].append(responded - opened)
            continue
        low = min(min(r[1] for r in rows), min(r[2] for r in rows))
        high = max(max(r[1] for r in rows), max(r[2] for r in rows))
        index = OpenTimeIndex(
            clock.hours, start=datetime.fromtimestamp(low, UTC), end=datetime.fromtimestamp(high, UTC)
        )
        keys: dict = {}
        for week, opened, responded in rows:
            key = keys.get(week) or keys.setdefault(week, _week_key(week))
            found[key].append(index.timestamps_between(opened, responded))
    return found


def _ttfr_per_tier(tiers: list[Tier], filters: ReportFilters) -> dict[int, dict[str, dict]]:
    """``_ttfr`` of each tier (the weeks read as epoch floats: cheaply)."""
    armed = _armed_business_hours(tiers, filters)
    return {
        tier.pk: _ttfr(tier_tickets(tier, filters), {"week": _week_epoch(tier)}, armed.get(tier.pk, []))
        for tier in tiers
    }


def _ttfr(tickets: QuerySet[Ticket], group: dict, armed: list) -> dict[str, dict]:
    """Time to first response p50/p90, on the wall and on the policy's clock, per week and for ``ALL``.

    On PostgreSQL the wall percentiles come with the counts, and a group without business-clock tickets
    (``armed``: their distinct hours) needs nothing more (its policy clock IS the wall clock).
    Elsewhere the seconds are read here."""
    answered = tickets.filter(responded_at__isnull=False)
    business = _business_seconds(answered, group, armed) if armed else {}
    postgres = _postgres()
    if not business and postgres:
        return {}
    walls: dict[str, list[float]] = defaultdict(list)
    calendars: dict[str, list[float]] = defaultdict(list)
    waited = Seconds(F("responded_at"), F("opened_at"))
    on_business = ExpressionWrapper(
        Q(sla__clock=ClockKind.BUSINESS, sla__hours__isnull=False), output_field=BooleanField()
    )
    if postgres:  # wall percentiles came with the counts: only the other tickets' seconds are needed
        others = [kind for kind in ClockKind if kind != ClockKind.BUSINESS]
        calendar = Q(sla__isnull=True) | Q(sla__hours__isnull=True) | Q(sla__clock__in=others)
        answered = answered.filter(calendar)
    rows = (
        answered.annotate(waited=waited, on_business=on_business, **group)
        .values_list("week", "waited", "on_business")
        .order_by()
    )
    keys: dict = {}
    for week, seconds, is_business in rows.iterator(chunk_size=5000):
        key = keys.get(week) or keys.setdefault(week, _week_key(week))
        if not postgres:
            walls[key].append(seconds)
        if not is_business:
            calendars[key].append(seconds)
    # Every week with an answered ticket (a business-clock one is answered too).
    weeks = {*walls, *calendars, *business}
    clocks = {key: calendars.get(key, []) + business.get(key, []) for key in weeks}
    walls[ALL] = [v for key in list(walls) for v in walls[key]]
    clocks[ALL] = [v for key in list(clocks) for v in clocks[key]]
    out: dict[str, dict] = {}
    for key in clocks:
        wall, on_clock = sorted(walls[key]), sorted(clocks[key])
        out[key] = {
            "wall_p50": percentile(wall, 0.5),
            "wall_p90": percentile(wall, 0.9),
            "clock_p50": percentile(on_clock, 0.5),
            "clock_p90": percentile(on_clock, 0.9),
        }
    return out


def _counts_per_tier(
    queryset: QuerySet, tiers: list[Tier], filters: ReportFilters, **aggregates
) -> dict[int, dict[str, dict]]:
    """Rows of a ticket's (cycles, snoozes, pauses) counted per tier and week the ticket opened: one
    query for every tier, each row's week in its own tier's zone."""
    if not tiers:
        return {}
    scope = Q()
    for tier in tiers:
        scope |= tier_scope(tier, filters, prefix="ticket__")
    week = WeekInZone("ticket__opened_at", _tier_zone(tiers, "ticket__channel__tier"))
    rows = (
        queryset.filter(scope)
        .annotate(tier=F("ticket__channel__tier"), week=week)
        .values("tier", "week")
        .annotate(**aggregates)
        .order_by()
    )
    found: dict[int, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        found[row["tier"]][_week_key(row["week"])] = row
    return found


def _nexts(tiers: list[Tier], filters: ReportFilters) -> dict[int, dict[str, dict]]:
    """Next-response cycles, those answered with a target and those met, per tier and week."""
    return _counts_per_tier(
        TicketCycle.objects.filter(kind=CycleKind.NEXT),
        tiers,
        filters,
        cycles=Count("id"),
        answered=Count("id", filter=answered_with_target_q(breach_at="breach_at")),
        met=Count("id", filter=on_time_q(breach_at="breach_at")),
    )


def _snoozes(tiers: list[Tier], filters: ReportFilters) -> dict[int, dict[str, dict]]:
    return _counts_per_tier(SnoozeRequest.objects.filter(applied=True), tiers, filters, n=Count("id"))


def _pauses(tiers: list[Tier], filters: ReportFilters) -> dict[int, dict[str, dict]]:
    return _counts_per_tier(TicketPause.objects.all(), tiers, filters, n=Count("id"))


def _range_percentiles(tiers: list[Tier], filters: ReportFilters) -> dict[int, dict[str, float | None]]:
    """Per tier, wall time to first response p50/p90 over its whole range: one query for every tier
    (PostgreSQL: the weekly ones come with the counts; elsewhere ``_ttfr`` computes both)."""
    if not tiers or not _postgres():
        return {}
    scope = Q()
    for tier in tiers:
        scope |= tier_scope(tier, filters)
    waited = Seconds(F("responded_at"), F("opened_at"))
    rows = (
        Ticket.objects.filter(scope)
        .values(tier=F("channel__tier"))
        .annotate(
            wall_p50=PercentileCont(waited, fraction=0.5), wall_p90=PercentileCont(waited, fraction=0.9)
        )
        .order_by()
    )
    return {row.pop("tier"): row for row in rows}


ALL = "all"
_SUMMED = ("opened", "answered", "met", "closed_without_reply", "still_open", "breached")


def _tier_figures(tier: Tier, *, results: dict) -> tuple[dict | None, list[dict], dict[str, int]]:
    """The tier's row for the whole range and its rows per week, from the sections' results
    (``_report_sections``). Each figure is one grouped query per week; the range's counts are their
    sums (only percentiles need the range's own query)."""
    counts = {k: c for k, c in results["weekly"].get(tier.pk, {}).items() if c["opened"]}
    if not counts:
        return None, [], {}  # a tier without tickets in the range has no rows
    counts[ALL] = {name: sum(c[name] for c in counts.values()) for name in (*_SUMMED, *_BUCKETS)}
    counts[ALL].update(results["range"].get(tier.pk, {}))
    ttfr = results["ttfr"].get(tier.pk, {})
    levels = results["levels"].get(tier.pk, [])
    nexts = dict(results["nexts"].get(tier.pk, {}))
    snoozes = dict(results["snoozes"].get(tier.pk, {}))
    pauses = dict(results["pauses"].get(tier.pk, {}))
    fired: dict[str, dict[str, int]] = defaultdict(lambda: {"fired": 0, "failed": 0})
    for row in levels:  # this tier's rows of _tier_levels
        for key in (row["week"], ALL):
            fired[key]["fired"] += row["fired"]
            fired[key]["failed"] += row["failed"]
    for table in (nexts, snoozes, pauses):
        table[ALL] = {
            name: sum(r[name] for r in table.values())
            for name in ("cycles", "answered", "met", "n")
            if any(name in r for r in table.values())
        }
    rows = []
    for key in sorted(counts):
        c = counts[key]
        t = ttfr.get(key) or {}
        wall_p50 = c.get("wall_p50") if _postgres() else t.get("wall_p50")
        wall_p90 = c.get("wall_p90") if _postgres() else t.get("wall_p90")
        n = nexts.get(key) or {}
        row = {"tier": tier.name}
        if key != ALL:
            row["week"] = key
        row.update(
            {
                "opened": c["opened"],
                "answered": c["answered"],
                "met": c["met"],
                "attainment": _ratio(c["met"], c["answered"]),
                "closed_without_reply": c["closed_without_reply"],
                "still_open": c["still_open"],
                "breached": c["breached"],
                "ttfr_wall_p50_s": _round(wall_p50),
                "ttfr_wall_p90_s": _round(wall_p90),
                "ttfr_clock_p50_s": _round(t["clock_p50"] if t else wall_p50),
                "ttfr_clock_p90_s": _round(t["clock_p90"] if t else wall_p90),
                "next_cycles": n.get("cycles", 0),
                "next_answered": n.get("answered", 0),
                "next_met": n.get("met", 0),
                "next_attainment": _ratio(n.get("met", 0), n.get("answered", 0)),
                "levels_fired": fired[key]["fired"],
                "levels_failed": fired[key]["failed"],
                "snoozes": (snoozes.get(key) or {}).get("n", 0),
                "pauses": (pauses.get(key) or {}).get("n", 0),
            }
        )
        rows.append(row)
    total = rows.pop(next(i for i, r in enumerate(rows) if "week" not in r))
    return total, rows, {name: counts[ALL][name] for name in _BUCKETS}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _tier_zone(tiers: list[Tier], tier_field: str) -> Case:
    """Each row's tier's zone name, as ``Tier.zone`` resolves it (UTC for a name it does not know)."""
    whens = [When(**{tier_field: tier.pk}, then=Value(tier.zone.key)) for tier in tiers]
    return Case(*whens, output_field=CharField())


# Levels per tier, week and level: the week is computed in the tickets' subquery, once per ticket,
# not once per level row (400,000 time zone conversions instead of 100,000: about a third of the
# query, measured with EXPLAIN ANALYZE). ``OFFSET 0`` keeps PostgreSQL from pulling the subquery up
# into the join (and the expression with it); SQLite does not pull it up.
_LEVELS_SQL = (
    "SELECT tk.tier, tk.week, esc.level, COUNT(CASE WHEN esc.state = %s THEN 1 END), "
    "COUNT(CASE WHEN esc.state = %s THEN 1 END) FROM {levels} esc "
    "JOIN ({tickets}{fence}) tk ON tk.id = esc.ticket_id GROUP BY 1, 2, 3"
)
_FENCE = {"postgresql": " OFFSET 0", "sqlite": ""}


def _levels(tiers: list[Tier], filters: ReportFilters) -> dict[int, list[dict]]:
    """Levels fired and failed per tier, week and level: one query for every tier (the levels table
    is read once, not once per tier), each row's week in its own tier's zone."""
    if not tiers:
        return {}
    scope = Q()
    for tier in tiers:
        scope |= tier_scope(tier, filters)
    tickets_sql, params = (
        Ticket.objects.filter(scope)
        .annotate(tier=F("channel__tier"), week=WeekInZone("opened_at", _tier_zone(tiers, "channel__tier")))
        .values("id", "tier", "week")
        .order_by()
    ).query.sql_with_params()
    sql = _LEVELS_SQL.format(
        levels=connection.ops.quote_name(Escalation._meta.db_table),
        tickets=tickets_sql,
        fence=_FENCE[connection.vendor],
    )
    with connection.cursor() as cursor:
        # no ORDER BY: sorted here (an ORDER BY makes PostgreSQL sort the 100,000s of rows to group them)
        cursor.execute(sql, (EscalationState.FIRED, EscalationState.FAILED, *params))
        rows = cursor.fetchall()
    names = {tier.pk: tier.name for tier in tiers}
    found: dict[int, list[dict]] = defaultdict(list)
    for tier_pk, week, level, fired, failed in rows:
        if isinstance(week, str):  # SQLite: the text of Django's own truncation
            week = datetime.fromisoformat(week)
        found[tier_pk].append(
            {
                "tier": names[tier_pk],
                "week": _week_key(week),
                "level": level,
                "fired": fired,
                "failed": failed,
            }
        )
    return {pk: sorted(rows, key=lambda r: (r["week"], r["level"])) for pk, rows in found.items()}


def _heatmap(tiers: list[Tier], filters: ReportFilters) -> dict[int, list[dict]]:
    """Tickets opened per tier, weekday and hour (in the tier's zone): one query for every tier."""
    if not tiers:
        return {}
    scope = Q()
    for tier in tiers:
        scope |= tier_scope(tier, filters)
    zone = _tier_zone(tiers, "channel__tier")
    rows = (
        Ticket.objects.filter(scope)
        .annotate(
            tier=F("channel__tier"),
            weekday=PartInZone("isodow", "opened_at", zone),
            hour=PartInZone("hour", "opened_at", zone),
        )
        .values("tier", "weekday", "hour")
        .annotate(n=Count("id"))
        .order_by()  # sorted here (as the levels): lets PostgreSQL group by hashing
    )
    names = {tier.pk: tier.name for tier in tiers}
    found: dict[int, list[dict]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r["weekday"], r["hour"])):
        found[r["tier"]].append(
            {
                "tier": names[r["tier"]],
                "weekday": WEEKDAYS[r["weekday"] - 1],
                "hour": r["hour"],
                "tickets": r["n"],
            }
        )
    return found


def ttfr_bucket_labels() -> list[str]:
    labels, low = [], 0
    for high in TTFR_BUCKETS:
        labels.append(f"{_span(low)}-{_span(high)}")
        low = high
    return [*labels, f">{_span(low)}"]


def _span(seconds: int) -> str:
    return f"{seconds // 3600}h" if seconds >= 3600 else f"{seconds // 60}m"


def _tier_ttfr_distribution(tier: Tier, counts: dict[str, int]) -> list[dict]:
    """The tier's TTFR distribution from its range's bucket counts (counted with its figures)."""
    labels = ttfr_bucket_labels()
    if not any(counts.values()):
        return []  # nobody answered in this tier: no distribution
    return [{"tier": tier.name, "bucket": labels[i], "tickets": counts[f"b{i}"]} for i in range(len(labels))]


# --- pages per engineer --------------------------------------------------------------------------

# Mentions of engineers in fired levels, counted by tier, engineer and the minute they fired (whether a
# minute is in business hours is the clock's ``open_at``, in Python, once per distinct minute; tiers
# open around the clock need no minute). One query for every tier: the levels table is read once.
_MENTIONS_SQL = {
    "postgresql": (
        "SELECT esc.tier, e.elem->>'slack_user_id', MAX(e.elem->>'name'), {minute}, COUNT(*) "
        "FROM ({fired}) esc CROSS JOIN LATERAL jsonb_array_elements(esc.notified) AS e(elem) "
        "WHERE e.elem->>'slack_user_id' IS NOT NULL GROUP BY 1, 2, 4"
    ),
    "sqlite": (
        "SELECT esc.tier, json_extract(j.value, '$.slack_user_id'), MAX(json_extract(j.value, '$.name')), "
        "{minute}, COUNT(*) FROM ({fired}) esc, json_each(esc.notified) j "
        "WHERE json_extract(j.value, '$.slack_user_id') IS NOT NULL GROUP BY 1, 2, 4"
    ),
}
_MINUTE_SQL = {  # the minute a level fired, as minutes since 1970 (an integer groups cheaply)
    "postgresql": "(floor(EXTRACT(EPOCH FROM esc.fired_at) / 60))::bigint",
    "sqlite": "(CAST(strftime('%%s', esc.fired_at) AS INTEGER) / 60)",  # %% : Django's placeholder escape
}


def _pages(tiers: list[Tier], filters: ReportFilters) -> dict[int, dict[tuple[str, str], list[int]]]:
    """Per tier: (slack id, name) -> [pages, pages outside business hours] of its fired levels."""
    if not tiers:
        return {}
    scope = Q()
    hours: dict[int, OpenHours] = {}
    for tier in tiers:
        scope |= tier_scope(tier, filters, prefix="ticket__")
        hours[tier.pk] = tier_open_hours(tier, around=tier_range(tier, filters)[0])
    fired = Escalation.objects.filter(scope, state=EscalationState.FIRED, fired_at__isnull=False)
    fired_sql, params = (
        fired.annotate(tier=F("ticket__channel__tier")).values("tier", "notified", "fired_at").order_by()
    ).query.sql_with_params()
    timed = [pk for pk, h in hours.items() if not h.around_the_clock]  # always open: no need to know when
    ids = ", ".join(str(int(pk)) for pk in timed)  # integers from our own rows
    minute = f"CASE WHEN esc.tier IN ({ids}) THEN {_MINUTE_SQL[connection.vendor]} END" if timed else "NULL"
    with connection.cursor() as cursor:
        cursor.execute(_MENTIONS_SQL[connection.vendor].format(fired=fired_sql, minute=minute), params)
        mentions = cursor.fetchall()
    found: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    is_open: dict[tuple[int, int], bool] = {}
    names: dict[int, dict[str, str]] = defaultdict(dict)
    for tier_pk, slack_id, name, at, n in mentions:
        named = names[tier_pk]
        named[slack_id] = name or named.get(slack_id) or slack_id
        counts = found[tier_pk][slack_id]
        counts[0] += n
        if at is not None:
            if (tier_pk, at) not in is_open:
                is_open[tier_pk, at] = open_at(hours[tier_pk], datetime.fromtimestamp(int(at) * 60, UTC))
            counts[1] += 0 if is_open[tier_pk, at] else n
    return {
        pk: {(slack_id, names[pk][slack_id]): counts for slack_id, counts in by_id.items()}
        for pk, by_id in found.items()
    }


# --- the report ----------------------------------------------------------------------------------

# Connections that run the report's sections at once on PostgreSQL: the caller's and one more. The
# sections are independent grouped queries (weekly counts, levels, mentions ~0.4-0.6 s each over
# 100,000 tickets); on the 2-core host two streams halve the wait, a third only adds contention.
REPORT_CONNECTIONS = 2
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]+")


def _report_settings() -> None:
    """This transaction's settings for the report's queries (each connection that runs sections)."""
    with connection.cursor() as cursor:
        # Grouping 100,000s of rows: let sorts and hashes stay in memory for this report only.
        # No JIT: unnesting the mentions is estimated at 100 rows per level, which sets off JIT
        # compilation that costs more (seconds, measured with EXPLAIN ANALYZE) than the query.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")


def _report_sections(tiers: list[Tier], filters: ReportFilters, *, now: datetime) -> dict[str, Callable]:
    """Every query of the report, as independent sections (each for every tier at once, its rows
    grouped per tier for ``_tier_figures``), costliest first so that concurrent connections finish
    together."""
    sections: dict[str, Callable] = {
        "weekly": partial(_ticket_counts, tiers, filters, now=now),
        "levels": partial(_levels, tiers, filters),
        "mentions": partial(_pages, tiers, filters),
    }
    sections.update(
        {
            "ttfr": partial(_ttfr_per_tier, tiers, filters),  # business-clock times indexed in Python
            "heatmap": partial(_heatmap, tiers, filters),
            "range": partial(_range_percentiles, tiers, filters),
            "nexts": partial(_nexts, tiers, filters),
            "snoozes": partial(_snoozes, tiers, filters),
            "pauses": partial(_pauses, tiers, filters),
        }
    )
    return sections


def _sections_run(sections: dict[str, Callable], *, concurrent: bool) -> dict:
    """Each section's result. One after another on this connection; or (``concurrent``: PostgreSQL,
    this transaction REPEATABLE READ and begun by ``report_build``) on ``REPORT_CONNECTIONS``
    connections that all read this transaction's snapshot, as parallel ``pg_dump`` does, so that the
    figures are those of one moment whichever connection counted them. A section's exception is
    raised here as it was raised; the other connections stop after their current section."""
    work = _SectionQueue(sections)
    if not concurrent:
        _sections_take(work)
        return work.results
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        (snapshot,) = cursor.fetchone()
    if not _SNAPSHOT_ID.fullmatch(snapshot):  # PostgreSQL's id (hex and dashes): the helpers inline it
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    # The caller's execute wrappers (instrumentation, such as the benchmark's timing) see every query.
    wrappers = list(connection.execute_wrappers)
    helpers = REPORT_CONNECTIONS - 1
    with ThreadPoolExecutor(max_workers=helpers, thread_name_prefix="report-section") as pool:
        futures = [pool.submit(_sections_helper, work, snapshot, wrappers) for _ in range(helpers)]
        _sections_take(work)  # if a section raises here, leaving the pool still waits for the helpers
        for future in futures:
            future.result()  # raises what a section raised in a helper
    return work.results


class _SectionQueue:
    """Sections not yet taken, the results of those done, and whether one failed (then no more are
    taken)."""

    def __init__(self, sections: dict[str, Callable]):
        self.pending = deque(sections.items())
        self.results: dict = {}
        self.failed = threading.Event()


def _sections_take(work: _SectionQueue) -> None:
    """Run sections on this thread's connection until none is left or one failed."""
    while not work.failed.is_set():
        try:
            name, run = work.pending.popleft()  # deque: atomic between threads
        except IndexError:
            return
        try:
            work.results[name] = run()
        except BaseException:
            work.failed.set()
            raise


class _NoHelper(Exception):
    """The helper's connection could not be opened or begun on the snapshot."""


def _sections_helper(work: _SectionQueue, snapshot: str, wrappers: list[Callable]) -> None:
    """A helper thread: its own connection, in a transaction on the coordinator's snapshot; the
    connection is closed however the sections end (a thread's connection outlives the thread). If
    the connection cannot be opened or begun (``max_connections`` reached, say), the caller runs
    every section itself: a report is not refused for want of its second connection."""
    try:
        with ExitStack() as stack:
            for wrapper in wrappers:
                stack.enter_context(connection.execute_wrapper(wrapper))
            try:
                connection.ensure_connection()
            except DatabaseError as exc:
                raise _NoHelper from exc
            with transaction.atomic():
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                    _report_settings()
                except DatabaseError as exc:
                    raise _NoHelper from exc
                _sections_take(work)
    except _NoHelper as exc:
        logger.warning("sla report: sections on one connection, the second failed: %s", exc.__cause__)
    except BaseException:
        work.failed.set()
        raise
    finally:
        connection.close()


def _report_tier(report: Report, tier: Tier, *, results: dict, pages: dict) -> None:
    total, weeks, buckets = _tier_figures(tier, results=results)
    if total is None:
        return
    report.totals.append(total)
    report.weeks += weeks
    report.levels += results["levels"].get(tier.pk, [])
    report.heatmap += results["heatmap"].get(tier.pk, [])
    report.ttfr_distribution += _tier_ttfr_distribution(tier, buckets)
    for who, (n, outside) in results["mentions"].get(tier.pk, {}).items():
        pages[who][0] += n
        pages[who][1] += outside


def report_build(*, filters: ReportFilters, now: datetime | None = None) -> Report:
    """Every figure of the report (all sections), for the page, the CSVs, the command and the digest.

    On PostgreSQL, outside a transaction, the sections run on ``REPORT_CONNECTIONS`` connections at
    once over one snapshot; inside the caller's transaction (whose rows other connections cannot see:
    tests, say) and on SQLite, one after another: the same queries either way."""
    now = now or datetime.now(UTC)
    report = Report(
        filters={
            "since": filters.since.isoformat(),
            "until": filters.until.isoformat(),
            "tier": filters.tier,
            "priority": filters.priority,
            "channel": filters.channel,
        },
        generated_at=now.isoformat(),
    )
    pages: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    concurrent = (
        _postgres()
        and REPORT_CONNECTIONS > 1
        and not connection.in_atomic_block
        and connection.get_autocommit()
    )
    with transaction.atomic():
        if concurrent:  # before any query: the snapshot the helpers import is this transaction's
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if _postgres():
            _report_settings()
        tiers = report_tiers(filters)
        results = _sections_run(_report_sections(tiers, filters, now=now), concurrent=concurrent)
        for tier in tiers:
            _report_tier(report, tier, results=results, pages=pages)
    report.engineers = [
        {"engineer": name, "slack_user_id": slack_id, "pages": n, "outside_business_hours": outside}
        for (slack_id, name), (n, outside) in sorted(
            pages.items(), key=lambda item: (-item[1][0], item[0][1])
        )
    ]
    return report


# --- per ticket ----------------------------------------------------------------------------------

TICKET_COLUMNS = (
    "ticket_id",
    "helpdesk_ticket_id",
    "channel",
    "tier",
    "priority",
    "opened_at",
    "breach_at",
    "first_response_at",
    "response_path",
    "closed_without_reply_at",
    "breached",
    "levels_fired",
    "cycles",
)


def _count_of(model, **where) -> Coalesce:
    counted = (
        model.objects.filter(ticket=OuterRef("pk"), **where)
        .order_by()
        .values("ticket")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def report_ticket_rows(*, filters: ReportFilters, now: datetime | None = None) -> Iterator[dict]:
    """One row per ticket of the report (streamed): the rows behind every ticket figure."""
    now = now or datetime.now(UTC)
    for tier in report_tiers(filters):
        rows = (
            tier_tickets(tier, filters)
            .annotate(
                first_closed=_first_cycle_closed(),
                is_breached=breached_q(now),
                fired=_count_of(Escalation, state=EscalationState.FIRED),
                cycle_count=_count_of(TicketCycle),
            )
            .order_by("opened_at", "pk")
            .values_list(
                "pk",
                "helpdesk_ticket_id",
                "channel__name",
                "priority",
                "opened_at",
                "sla__breach_at",
                "responded_at",
                "response_path",
                "first_closed",
                "is_breached",
                "fired",
                "cycle_count",
            )
        )
        for (
            pk,
            ref,
            channel,
            priority,
            opened,
            breach,
            responded,
            path,
            closed,
            breached,
            fired,
            cycles,
        ) in rows.iterator(chunk_size=2000):
            yield {
                "ticket_id": pk,
                "helpdesk_ticket_id": ref,
                "channel": channel,
                "tier": tier.name,
                "priority": priority,
                "opened_at": _iso(opened),
                "breach_at": _iso(breach),
                "first_response_at": _iso(responded),
                "response_path": path,
                "closed_without_reply_at": _iso(closed) if responded is None else "",
                "breached": bool(breached),
                "levels_fired": fired,
                "cycles": cycles,
            }


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def rows_for(report: Report, section: str) -> list[dict]:
    if section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}: one of {', '.join(SECTIONS)}")
    return getattr(report, section)


def columns_for(rows: Iterable[dict]) -> list[str]:
    for row in rows:
        return list(row)
    return []


# --- worst breaches (the weekly digest) ----------------------------------------------------------


def worst_breaches(*, filters: ReportFilters, now: datetime, limit: int = 5) -> list[dict]:
    """The breached tickets of the report (``breached_q``), latest first: by how long after its breach
    time the ticket was answered (or closed, or began waiting, or is still unanswered now)."""
    deadline = Coalesce(
        "responded_at", "first_closed", "waiting_since", Value(now, output_field=DateTimeField())
    )
    found: list[dict] = []
    for tier in report_tiers(filters):
        rows = (
            tier_tickets(tier, filters)
            .filter(breached_q(now))
            .annotate(first_closed=_first_cycle_closed())
            .annotate(late=ExpressionWrapper(deadline - F("sla__breach_at"), output_field=DurationField()))
            .order_by("-late", "pk")
            .values(
                "pk", "helpdesk_ticket_id", "channel__slack_channel_id", "slack_ts", "late", "responded_at"
            )[:limit]
        )
        found += [
            {
                "tier": tier.name,
                "ticket_id": row["pk"],
                "helpdesk_ticket_id": row["helpdesk_ticket_id"],
                "channel": row["channel__slack_channel_id"],
                "slack_ts": row["slack_ts"],
                "late_s": _late_seconds(row["late"]),
                "answered": row["responded_at"] is not None,
            }
            for row in rows
        ]
    return sorted(found, key=lambda r: (-r["late_s"], r["ticket_id"]))[:limit]


def _late_seconds(value) -> float:
    # SQLite returns microseconds as an int for a computed duration; PostgreSQL a timedelta.
    return value.total_seconds() if isinstance(value, timedelta) else float(value or 0) / 1e6
