"""Prometheus metrics computed from the database at scrape time.

No in-process counters: several gunicorn workers and Celery processes would
each count their own share and disagree. The rows (tickets, escalations) are
the truth, so every scrape asks the database, through a custom collector on a
registry of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from calendars.models import CalendarSource
from escalation.breach import answered_with_target_q, breached_q, on_time_q
from escalation.models import CycleKind, Escalation, TicketCycle, TicketPause
from escalation.transitions import EscalationState
from ops.heartbeat import heartbeat_age
from slackbot.models import InboundState, SlackInbound
from tickets.models import Ticket

# Time to first response buckets, in seconds: 1 min ... 1 day.
RESPONSE_BUCKETS = (60, 300, 600, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _tier(name: str | None) -> str:
    return name or "none"


_ESCALATION_TIER = "ticket__channel__tier__name"


def _by_tier_and_level(family: CounterMetricFamily, escalations) -> CounterMetricFamily:
    """Count ``escalations`` into ``family`` with labels (tier, level)."""
    rows = (
        escalations.values(_ESCALATION_TIER, "level")
        .annotate(n=Count("id"))
        .order_by(_ESCALATION_TIER, "level")
    )
    for row in rows:
        family.add_metric([_tier(row[_ESCALATION_TIER]), str(row["level"])], row["n"])
    return family


class SlaBuddyCollector:
    def __init__(self, now: datetime | None = None):
        self._now = now

    def collect(self) -> Iterator[Metric]:
        now = self._now or datetime.now(UTC)
        tier = "channel__tier__name"

        opened = CounterMetricFamily("slabuddy_tickets_opened", "Tickets opened, by tier.", labels=["tier"])
        states = GaugeMetricFamily(
            "slabuddy_tickets", "Tickets by tier and current state.", labels=["tier", "state"]
        )
        totals: dict[str, int] = defaultdict(int)
        for row in Ticket.objects.values(tier, "state").annotate(n=Count("id")).order_by():
            totals[_tier(row[tier])] += row["n"]
            states.add_metric([_tier(row[tier]), row["state"]], row["n"])
        for name, n in sorted(totals.items()):
            opened.add_metric([name], n)
        yield opened
        yield states

        yield _by_tier_and_level(
            CounterMetricFamily(
                "slabuddy_levels_fired",
                "Escalation levels posted to Slack, by level and tier.",
                labels=["tier", "level"],
            ),
            Escalation.objects.filter(state=EscalationState.FIRED),
        )
        yield _by_tier_and_level(
            CounterMetricFamily(
                "slabuddy_sweeper_catches",
                "Levels fired by the sweeper because their Celery task did not (Escalation.fired_via).",
                labels=["tier", "level"],
            ),
            Escalation.objects.filter(fired_via="sweeper"),
        )

        errors = CounterMetricFamily(
            "slabuddy_slack_errors",
            "Escalation levels that met a Slack error: state=failed is permanent, others were retried.",
            labels=["tier", "state"],
        )
        for row in (
            Escalation.objects.filter(Q(state=EscalationState.FAILED) | ~Q(last_error=""))
            .values(_ESCALATION_TIER, "state")
            .annotate(n=Count("id"))
            .order_by(_ESCALATION_TIER, "state")
        ):
            errors.add_metric([_tier(row[_ESCALATION_TIER]), row["state"]], row["n"])
        yield errors

        pending = GaugeMetricFamily("slabuddy_levels_pending", "Levels waiting to fire.", labels=["due"])
        overdue_limit = now - timedelta(seconds=60)
        counts = Escalation.objects.filter(state=EscalationState.PENDING).aggregate(
            total=Count("id"), overdue=Count("id", filter=Q(due_at__lt=overdue_limit))
        )
        pending.add_metric(["overdue_60s"], counts["overdue"] or 0)
        pending.add_metric(["any"], counts["total"] or 0)
        yield pending

        yield from self._breaches(now)
        yield from self._lifecycle()
        yield self._time_to_first_response(Ticket)
        yield from self._heartbeat(now)
        yield from self._inbound(now)
        yield self._calendars(now)

    def _inbound(self, now: datetime) -> Iterator[Metric]:
        """Slack deliveries stored but not processed yet: under a flood they wait here."""
        waiting = SlackInbound.objects.filter(state=InboundState.PENDING)
        yield GaugeMetricFamily(
            "slabuddy_slack_deliveries_waiting", "Slack deliveries stored and not processed yet.",
            value=waiting.count(),
        )
        oldest = waiting.order_by("received_at").values_list("received_at", flat=True).first()
        yield GaugeMetricFamily(
            "slabuddy_slack_deliveries_oldest_waiting_seconds",
            "Age of the oldest Slack delivery not processed yet (0 when none waits).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )

    def _calendars(self, now: datetime) -> Metric:
        family = GaugeMetricFamily(
            "slabuddy_calendar_source_stale",
            "1 when an active calendar source has not synced successfully for CALENDAR_STALE_AFTER_MINUTES.",
            labels=["source", "purpose"],
        )
        for source in CalendarSource.objects.filter(active=True).order_by("name"):
            family.add_metric([source.name, source.purpose], 1.0 if source.is_stale(now) else 0.0)
        return family

    def _breaches(self, now: datetime) -> Iterator[Metric]:
        """Breached: the breach time (first-response target, set at arming) passed before the
        response, or before now while none came: the admin's Breached filter, by tier. And first
        responses on time (``escalation.breach.on_time_q``, the SLA report's and the replay's)."""
        tier = "channel__tier__name"
        breached = CounterMetricFamily(
            "slabuddy_tickets_breached",
            "Tickets whose first-response target passed before their response (or before now), by tier.",
            labels=["tier"],
        )
        in_breach = GaugeMetricFamily(
            "slabuddy_tickets_in_breach",
            "Tickets still without a response whose first-response target has passed, by tier.",
            labels=["tier"],
        )
        rows = (
            Ticket.objects.filter(breached_q(now))
            .values(tier)
            .annotate(n=Count("id"), open=Count("id", filter=Q(responded_at__isnull=True, state="armed")))
            .order_by(tier)
        )
        for row in rows:
            breached.add_metric([_tier(row[tier])], row["n"])
            in_breach.add_metric([_tier(row[tier])], row["open"])
        yield breached
        yield in_breach
        answered = CounterMetricFamily(
            "slabuddy_first_responses_answered",
            "Tickets answered that had a first-response target, by tier (the SLA report's answered).",
            labels=["tier"],
        )
        on_time = CounterMetricFamily(
            "slabuddy_first_responses_on_time",
            "Of those, answered at or before their breach time, by tier (the SLA report's met).",
            labels=["tier"],
        )
        rows = (
            Ticket.objects.filter(answered_with_target_q())
            .values(tier)
            .annotate(n=Count("id"), met=Count("id", filter=on_time_q()))
            .order_by(tier)
        )
        for row in rows:
            answered.add_metric([_tier(row[tier])], row["n"])
            on_time.add_metric([_tier(row[tier])], row["met"])
        yield answered
        yield on_time

    def _lifecycle(self) -> Iterator[Metric]:
        """Closes without a reply (nobody's response: counted apart), waits on the customer, and
        next-response cycles, from their rows."""
        tier = "ticket__channel__tier__name"
        closed = CounterMetricFamily(
            "slabuddy_closed_without_reply",
            "Response cycles closed without a reply (helpdesk solved, message deleted, reaction, button), "
            "by tier and cycle kind (first or next response).",
            labels=["tier", "kind"],
        )
        for row in (TicketCycle.objects.filter(closed_at__isnull=False).values(tier, "kind")
                    .annotate(n=Count("id")).order_by(tier, "kind")):
            closed.add_metric([_tier(row[tier]), row["kind"]], row["n"])
        yield closed
        cycles = CounterMetricFamily(
            "slabuddy_next_response_cycles",
            "Next-response cycles started (customers writing again), by tier.",
            labels=["tier"],
        )
        for row in (TicketCycle.objects.filter(kind=CycleKind.NEXT).values(tier).annotate(n=Count("id"))
                    .order_by(tier)):
            cycles.add_metric([_tier(row[tier])], row["n"])
        yield cycles
        pauses = CounterMetricFamily(
            "slabuddy_waits_on_customer", "Times a ticket was marked waiting on the customer, by tier.",
            labels=["tier"],
        )
        for row in TicketPause.objects.values(tier).annotate(n=Count("id")).order_by(tier):
            pauses.add_metric([_tier(row[tier])], row["n"])
        yield pauses

    def _time_to_first_response(self, Ticket) -> Metric:
        tier = "channel__tier__name"
        histogram = HistogramMetricFamily(
            "slabuddy_time_to_first_response_seconds",
            "Seconds from a ticket opening to its first response, by tier.",
            labels=["tier"],
        )
        responded = Ticket.objects.filter(responded_at__isnull=False)
        aggregates = {
            f"le_{b}": Count("id", filter=Q(responded_at__lte=F("opened_at") + timedelta(seconds=b)))
            for b in RESPONSE_BUCKETS
        }
        waited = ExpressionWrapper(F("responded_at") - F("opened_at"), output_field=DurationField())
        rows = responded.values(tier).annotate(n=Count("id"), total=Sum(waited), **aggregates).order_by(tier)
        for row in rows:
            buckets = [(str(float(b)), row[f"le_{b}"]) for b in RESPONSE_BUCKETS]
            buckets.append(("+Inf", row["n"]))
            total = row["total"]
            seconds = total.total_seconds() if isinstance(total, timedelta) else float(total or 0) / 1e6
            histogram.add_metric([_tier(row[tier])], buckets, seconds)
        return histogram

    def _heartbeat(self, now: datetime) -> Iterator[Metric]:

        age = heartbeat_age(now=now)
        if age is not None:
            yield GaugeMetricFamily(
                "slabuddy_beat_heartbeat_age_seconds",
                "Seconds since the beat heartbeat task last ran.",
                value=age.total_seconds(),
            )


def render_metrics(now: datetime | None = None) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SlaBuddyCollector(now))
    return generate_latest(registry), CONTENT_TYPE_LATEST
