"""Tickets on a business clock: due times and breach time at arming, the snapshot, snoozes,
and the breach in the escalation message."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from escalation.arming import ticket_arm
from escalation.models import TicketSla
from escalation.planning import ticket_armed_clock, ticket_clock
from escalation.snooze import ticket_snooze
from tests.support.engine import fire, rows
from tickets.factories import TicketFactory, WatchedChannelFactory
from tickets.models import TicketEvent, TicketEventKind, TierHoliday

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


FRIDAY_EVENING = berlin(2026, 11, 27, 17, 30)


def open_ticket(policy, opened_at=FRIDAY_EVENING):
    channel = WatchedChannelFactory(slack_channel_id="CTEAMS1", tier=policy.tier)
    return TicketFactory(channel=channel, opened_at=opened_at)


def due_times(ticket) -> list[datetime]:
    return [row.due_at.astimezone(BERLIN) for row in rows(ticket)]


def test_a_friday_evening_ticket_is_due_on_monday_and_keeps_its_breach_time(teams_business):
    ticket = open_ticket(teams_business)
    ticket_arm(ticket=ticket, now=FRIDAY_EVENING)
    assert due_times(ticket) == [berlin(2026, 11, 30, 9, 30), berlin(2026, 11, 30, 11, 30),
                                 berlin(2026, 11, 30, 14, 30), berlin(2026, 12, 1, 11, 30)]
    sla = TicketSla.objects.get(ticket=ticket)
    assert sla.clock == "business" and sla.first_response_target == timedelta(hours=1)  # level 1's delay
    assert sla.breach_at == berlin(2026, 11, 30, 9, 30)
    assert sla.hours["business_hours"] == {"mon-fri": ["09:00-18:00"]}
    armed = TicketEvent.objects.get(ticket=ticket, kind=TicketEventKind.ARMED)
    assert datetime.fromisoformat(armed.details["breach_at"]) == berlin(2026, 11, 30, 9, 30)


def test_a_holiday_moves_every_level_one_business_day(teams_business):
    TierHoliday.objects.create(tier=teams_business.tier, date=date(2026, 11, 30), name="Closed")
    ticket = open_ticket(teams_business)
    ticket_arm(ticket=ticket, now=FRIDAY_EVENING)
    assert due_times(ticket) == [berlin(2026, 12, 1, 9, 30), berlin(2026, 12, 1, 11, 30),
                                 berlin(2026, 12, 1, 14, 30), berlin(2026, 12, 2, 11, 30)]


def test_an_outside_hours_step_counts_calendar_time_and_the_target_can_differ(teams_business):
    teams_business.steps.filter(level=4).update(outside_hours=True)
    teams_business.first_response_target = timedelta(minutes=30)
    teams_business.save()
    ticket = open_ticket(teams_business)
    ticket_arm(ticket=ticket, now=FRIDAY_EVENING)
    assert due_times(ticket)[3] == FRIDAY_EVENING + timedelta(hours=12)  # Saturday 05:30: pages at night
    assert rows(ticket)[3].outside_hours
    # 30 open minutes from Friday 17:30 end at Friday's closing.
    assert TicketSla.objects.get(ticket=ticket).breach_at == berlin(2026, 11, 27, 18, 0)


def test_the_calendar_clock_ignores_the_tier_hours(teams_business):
    teams_business.clock = "calendar"
    teams_business.save()
    ticket = open_ticket(teams_business)
    ticket_arm(ticket=ticket, now=FRIDAY_EVENING)
    assert due_times(ticket)[0] == FRIDAY_EVENING + timedelta(hours=1)
    assert TicketSla.objects.get(ticket=ticket).hours is None


def test_hours_edited_after_arming_apply_to_new_tickets_and_to_later_snoozes(teams_business):
    armed_before = open_ticket(teams_business)
    ticket_arm(ticket=armed_before, now=FRIDAY_EVENING)
    tier = teams_business.tier
    tier.business_hours = {"mon-fri": ["10:00-18:00"]}
    tier.save()
    TierHoliday.objects.create(tier=tier, date=date(2026, 11, 30))
    # The ticket armed before keeps its due and breach times.
    assert due_times(armed_before)[0] == berlin(2026, 11, 30, 9, 30)
    assert TicketSla.objects.get(ticket=armed_before).breach_at == berlin(2026, 11, 30, 9, 30)
    newer = TicketFactory(channel=armed_before.channel, opened_at=FRIDAY_EVENING)
    ticket_arm(ticket=newer, now=FRIDAY_EVENING)
    assert due_times(newer)[0] == berlin(2026, 12, 1, 10, 30)
    # A snooze from now on counts on the edited hours: 30 open minutes after Monday 09:30 is
    # Tuesday 10:30 (Monday is a holiday now, and Tuesday opens at 10:00).
    result = ticket_snooze(ticket=armed_before, request_key="snooze:1", actor="UALICE",
                           now=FRIDAY_EVENING + timedelta(minutes=15))
    assert result.applied and result.due_times[1].astimezone(BERLIN) == berlin(2026, 12, 1, 10, 30)


def test_a_snooze_moves_levels_on_their_own_clocks_and_leaves_the_target(teams_business):
    teams_business.steps.filter(level=4).update(outside_hours=True)
    ticket = open_ticket(teams_business)
    ticket_arm(ticket=ticket, now=FRIDAY_EVENING)
    result = ticket_snooze(ticket=ticket, request_key="snooze:1", actor="UALICE",
                           now=FRIDAY_EVENING + timedelta(minutes=15))
    assert [at.astimezone(BERLIN) for at in result.due_times.values()] == [
        berlin(2026, 11, 30, 10, 0), berlin(2026, 11, 30, 12, 0), berlin(2026, 11, 30, 15, 0),
        FRIDAY_EVENING + timedelta(hours=12, minutes=30),  # outside_hours: calendar minutes
    ]
    assert result.breach_at == berlin(2026, 11, 30, 9, 30)  # snoozes do not extend the target by default
    assert TicketSla.objects.get(ticket=ticket).breach_at == berlin(2026, 11, 30, 9, 30)


def test_a_policy_can_let_snoozes_extend_the_target_until_it_has_passed(teams_business):
    teams_business.snoozes_extend_target = True
    teams_business.save()
    ticket = open_ticket(teams_business)
    ticket_arm(ticket=ticket, now=FRIDAY_EVENING)
    result = ticket_snooze(ticket=ticket, request_key="snooze:1", actor="UALICE", now=FRIDAY_EVENING)
    assert result.breach_at == berlin(2026, 11, 30, 10, 0)
    snoozed = TicketEvent.objects.get(ticket=ticket, kind=TicketEventKind.SNOOZED)
    assert datetime.fromisoformat(snoozed.details["breach_at"]) == berlin(2026, 11, 30, 10, 0)
    # Once breached, a snooze no longer moves the target.
    late = ticket_snooze(ticket=ticket, request_key="snooze:2", actor="UALICE",
                         now=berlin(2026, 11, 30, 10, 5))
    assert late.breach_at == berlin(2026, 11, 30, 10, 0)


def test_the_escalation_message_says_how_far_from_the_target(teams_business, fake_slack, thread_in):
    teams_business.first_response_target = timedelta(minutes=48)
    teams_business.save()
    ticket = thread_in(open_ticket(teams_business, opened_at=berlin(2026, 11, 30, 9, 0)))
    ticket_arm(ticket=ticket, now=ticket.opened_at)
    first, second = rows(ticket)[:2]
    assert fire(first, at=first.due_at) == "fired"  # 10:00; the target was 09:48
    assert fire(second, at=second.due_at) == "fired"  # 12:00
    texts = [post["text"] for post in fake_slack.posts(thread_ts=ticket.slack_ts)]
    assert "without a response and breached 12 min ago." in texts[0]
    assert "without a response and breached 2 h 12 min ago." in texts[1]


def test_a_level_before_the_target_says_when_it_breaches(teams_business, fake_slack, thread_in):
    teams_business.first_response_target = timedelta(hours=1, minutes=5)
    teams_business.save()
    ticket = thread_in(open_ticket(teams_business, opened_at=berlin(2026, 11, 30, 9, 0)))
    ticket_arm(ticket=ticket, now=ticket.opened_at)
    first = rows(ticket)[0]
    assert fire(first, at=first.due_at) == "fired"
    [post] = fake_slack.posts(thread_ts=ticket.slack_ts)
    assert "without a response and breaches in 5 min." in post["text"]


def test_seeded_tiers_stay_around_the_clock(db):
    from escalation.models import SlaPolicy

    seeded = SlaPolicy.objects.filter(tier__name__in=["Enterprise", "Teams"], priority="")
    assert {p.tier.name: (p.clock, p.tier.business_hours) for p in seeded} == {
        "Enterprise": ("calendar", None), "Teams": ("calendar", None)}
    teams = seeded.get(tier__name="Teams")
    ticket = open_ticket(teams)
    ticket_arm(ticket=ticket, now=FRIDAY_EVENING)
    assert [row.due_at - FRIDAY_EVENING for row in rows(ticket)] == [
        timedelta(hours=h) for h in (1, 3, 6, 12)]


def test_a_ticket_measures_its_open_time_on_the_hours_it_was_armed_with(teams_business):
    ticket = open_ticket(teams_business)
    ticket_arm(ticket=ticket, now=FRIDAY_EVENING)
    teams_business.tier.business_hours = {"mon-sun": ["00:00-24:00"]}
    teams_business.tier.save()
    sla = TicketSla.objects.get(ticket=ticket)
    armed = ticket_armed_clock(sla)
    # Friday 17:30 to Monday 10:00: 30 min on Friday and 1 h on Monday, whatever the tier says now.
    assert armed.between(FRIDAY_EVENING, berlin(2026, 11, 30, 10, 0)) == timedelta(hours=1, minutes=30)
    now = ticket_clock(sla, tier=teams_business.tier, now=FRIDAY_EVENING)
    assert now.between(FRIDAY_EVENING, berlin(2026, 11, 30, 10, 0)) == timedelta(hours=64, minutes=30)
